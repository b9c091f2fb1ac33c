package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject the
// chart writes; decoding is strict, so a misspelt field fails.
type scaledObject struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32         `json:"pollingInterval"`
		CooldownPeriod  *int32         `json:"cooldownPeriod"`
		MinReplicaCount *int32         `json:"minReplicaCount"`
		MaxReplicaCount *int32         `json:"maxReplicaCount"`
		Advanced        map[string]any `json:"advanced"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart writes, decoded strictly.
type serviceMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port              string           `json:"port"`
			Path              string           `json:"path"`
			Interval          string           `json:"interval"`
			ScrapeTimeout     string           `json:"scrapeTimeout"`
			Relabelings       []map[string]any `json:"relabelings"`
			MetricRelabelings []map[string]any `json:"metricRelabelings"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type objects struct {
	deployment     *appsv1.Deployment
	statefulSet    *appsv1.StatefulSet
	configMap      *corev1.ConfigMap
	service        *corev1.Service // the admin Service (metrics)
	headless       *corev1.Service // the StatefulSet's governing Service
	serviceAccount *corev1.ServiceAccount
	pdb            *policyv1.PodDisruptionBudget
	scaledObject   *scaledObject
	serviceMonitor *serviceMonitor
	prometheusRule *prometheusRule
	dashboard      *corev1.ConfigMap // the Grafana dashboard (kind GrafanaDashboard)
}

// workload is what the checks read of the Deployment or the StatefulSet.
type workload struct {
	kind, name string
	replicas   *int32
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

// workload is the render's Deployment or StatefulSet; nil without either.
func (o *objects) workload() *workload {
	switch {
	case o.deployment != nil:
		d := o.deployment
		return &workload{"Deployment", d.Name, d.Spec.Replicas, d.Spec.Selector, d.Spec.Template}
	case o.statefulSet != nil:
		s := o.statefulSet
		return &workload{"StatefulSet", s.Name, s.Spec.Replicas, s.Spec.Selector, s.Spec.Template}
	}
	return nil
}

// headlessKind is what -kinds calls a headless Service (clusterIP None),
// counted apart from the admin Service.
const headlessKind = "HeadlessService"

var wantAPIVersion = map[string]string{
	"Deployment":          "apps/v1",
	"StatefulSet":         "apps/v1",
	"ConfigMap":           "v1",
	"Service":             "v1",
	"ServiceAccount":      "v1",
	"PodDisruptionBudget": "policy/v1",
	"ScaledObject":        "keda.sh/v1alpha1",
	"ServiceMonitor":      "monitoring.coreos.com/v1",
	"PrometheusRule":      "monitoring.coreos.com/v1",
}

// checkManifests checks a render that must hold exactly the given kinds;
// staticMembers asks that the config make each pod a static member; alerts
// (nil when not given) is what a PrometheusRule is checked against, and
// dashboard (nil when not given) what a Grafana dashboard's ConfigMap is.
func checkManifests(r *report, path string, kinds []string, configOut, envOut string, staticMembers bool, alerts *alertDocs, dashboard *dashboardDocs) {
	f, err := os.Open(path)
	if err != nil {
		r.fail(path, "%v", err)
		return
	}
	defer f.Close()
	var o objects
	seen := map[string]int{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.fail(path, "read: %v", err)
			return
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			r.fail(path, "document is not YAML: %v", err)
			continue
		}
		where := fmt.Sprintf("%s: %s/%s", path, meta.Kind, meta.Metadata.Name)
		if meta.Metadata.Name == "" {
			r.fail(where, "no metadata.name")
		}
		if want, ok := wantAPIVersion[meta.Kind]; !ok {
			r.fail(where, "unexpected kind %q", meta.Kind)
			continue
		} else if meta.APIVersion != want {
			r.fail(where, "apiVersion %q, want %q", meta.APIVersion, want)
		}
		kind := meta.Kind
		var target any
		var service *corev1.Service
		var configMap *corev1.ConfigMap
		switch meta.Kind {
		case "Deployment":
			o.deployment = &appsv1.Deployment{}
			target = o.deployment
		case "StatefulSet":
			o.statefulSet = &appsv1.StatefulSet{}
			target = o.statefulSet
		case "ConfigMap":
			configMap = &corev1.ConfigMap{}
			target = configMap
		case "Service":
			service = &corev1.Service{}
			target = service
		case "ServiceAccount":
			o.serviceAccount = &corev1.ServiceAccount{}
			target = o.serviceAccount
		case "PodDisruptionBudget":
			o.pdb = &policyv1.PodDisruptionBudget{}
			target = o.pdb
		case "ScaledObject":
			o.scaledObject = &scaledObject{}
			target = o.scaledObject
		case "ServiceMonitor":
			o.serviceMonitor = &serviceMonitor{}
			target = o.serviceMonitor
		case "PrometheusRule":
			o.prometheusRule = &prometheusRule{}
			target = o.prometheusRule
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			r.fail(where, "does not decode strictly into %s: %v", meta.Kind, err)
		}
		if configMap != nil {
			if _, ok := configMap.Data[dashboardKey]; ok {
				kind = dashboardKind
				o.dashboard = configMap
			} else {
				o.configMap = configMap
			}
		}
		if service != nil && service.Spec.ClusterIP == corev1.ClusterIPNone {
			kind = headlessKind
			o.headless = service
		} else if service != nil {
			o.service = service
		}
		seen[kind]++
	}

	var got []string
	for _, k := range sortedKeys(seen) {
		got = append(got, k)
		if seen[k] > 1 {
			r.fail(path, "%d objects of kind %s, want 1", seen[k], k)
		}
	}
	want := append([]string{}, kinds...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		r.fail(path, "kinds rendered: %s; want exactly: %s", strings.Join(got, ","), strings.Join(want, ","))
	} else {
		r.ok(fmt.Sprintf("%s: kinds %s, each strictly decoded", path, strings.Join(got, ",")))
	}
	if o.deployment != nil && o.statefulSet != nil {
		r.fail(path, "both a Deployment and a StatefulSet: two sets of pods would consume the same groups")
	}
	checkPrometheusRule(r, path, &o, alerts)
	checkDashboardConfigMap(r, path, &o, dashboard, alerts)
	w := o.workload()
	if w == nil || o.configMap == nil {
		return
	}
	cfg := checkConfigMap(r, path, &o, configOut)
	if cfg == nil {
		return
	}
	checkWorkload(r, path, &o, w, cfg, envOut)
	checkStatefulSet(r, path, &o, w)
	checkStaticMembership(r, path, w, cfg, staticMembers)
	checkMetricsService(r, path, &o, w)
	checkPDB(r, path, &o, w)
	checkServiceMonitor(r, path, &o)
	checkScaledObject(r, path, &o, w, cfg)
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(doc []byte) []byte { return commentLine.ReplaceAll(doc, nil) }

func checkConfigMap(r *report, path string, o *objects, configOut string) *hbConfig {
	where := path + ": ConfigMap/" + o.configMap.Name
	data, ok := o.configMap.Data["hookbridge.yaml"]
	if !ok {
		r.fail(where, "no data key hookbridge.yaml")
		return nil
	}
	cfg, err := parseHBConfig([]byte(data))
	if err != nil {
		r.fail(where, "hookbridge.yaml: %v", err)
		return nil
	}
	if host, _, err := listenPort(cfg.Admin.Listen); err != nil || host != "0.0.0.0" {
		r.fail(where, "admin.listen %q: want 0.0.0.0:<port> (probes and Prometheus come from outside the container)", cfg.Admin.Listen)
	}
	if len(cfg.Routes) == 0 {
		r.fail(where, "no routes")
	}
	if configOut != "" {
		if err := os.WriteFile(configOut, []byte(data), 0o600); err != nil {
			r.fail(configOut, "%v", err)
		}
	}
	return cfg
}

// checkWorkload checks the pods of the Deployment or the StatefulSet.
func checkWorkload(r *report, path string, o *objects, w *workload, cfg *hbConfig, envOut string) {
	where := path + ": " + w.kind + "/" + w.name
	pod := w.pod
	sel, err := selectorOf(w)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		r.fail(where, "spec.selector does not match the pod template labels")
	}
	if o.scaledObject != nil && w.replicas != nil {
		r.fail(where, "spec.replicas is set although KEDA owns the replica count: every helm upgrade would fight the HPA")
	}
	if o.scaledObject == nil && w.replicas == nil {
		r.fail(where, "spec.replicas missing")
	}
	if sum := pod.Annotations["checksum/config"]; !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		r.fail(where, "pod annotation checksum/config missing or not a sha256 (%q): config changes would not roll the pods", sum)
	}
	if len(pod.Spec.Containers) != 1 {
		r.fail(where, "want one container, got %d", len(pod.Spec.Containers))
		return
	}
	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"run", "-c", hookbridgeConfigPath}) {
		r.fail(where, "args %q: want run -c %s", c.Args, hookbridgeConfigPath)
	}

	// Probes on the admin port the config listens on.
	_, port, _ := listenPort(cfg.Admin.Listen)
	var adminPort int32
	for _, p := range c.Ports {
		if p.Name == "admin" {
			adminPort = p.ContainerPort
		}
	}
	if strconv.Itoa(int(adminPort)) != port {
		r.fail(where, "container port admin (%d) differs from the config's admin.listen %s", adminPort, cfg.Admin.Listen)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/livez"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			r.fail(where, "%s: want httpGet %s", pr.name, pr.path)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path || pr.probe.HTTPGet.Port.String() != "admin" {
			r.fail(where, "%s: httpGet %s on %s, want %s on admin", pr.name, pr.probe.HTTPGet.Path, pr.probe.HTTPGet.Port.String(), pr.path)
		}
	}

	// Hardening.
	sc := c.SecurityContext
	psc := pod.Spec.SecurityContext
	switch {
	case sc == nil:
		r.fail(where, "container securityContext missing")
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			r.fail(where, "securityContext.readOnlyRootFilesystem must be true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			r.fail(where, "securityContext.allowPrivilegeEscalation must be false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			r.fail(where, "securityContext.capabilities.drop must contain ALL")
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			r.fail(where, "runAsNonRoot must be true")
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m, ok := mounts["/tmp"]; !ok || m.ReadOnly {
		r.fail(where, "no writable /tmp mount: with a read-only root filesystem plugins cannot create their sockets")
	} else {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.VolumeSource == (corev1.VolumeSource{}) {
				r.fail(where, "the volume %s mounted at /tmp has no source (an emptyDir with nothing under it): the API server refuses it", v.Name)
			}
		}
	}
	if m, ok := mounts["/etc/hookbridge"]; !ok {
		r.fail(where, "the config is not mounted at /etc/hookbridge")
	} else {
		found := false
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == o.configMap.Name {
				found = true
			}
		}
		if !found {
			r.fail(where, "/etc/hookbridge is not the ConfigMap %s", o.configMap.Name)
		}
	}

	// Drain before SIGKILL.
	shutdown, err := cfg.shutdown()
	if err != nil {
		r.fail(where, "config shutdown_timeout: %v", err)
	} else if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || float64(*g) <= (shutdown+finishMargin).Seconds() {
		r.fail(where, "terminationGracePeriodSeconds %v must exceed shutdown_timeout %s by more than %s", derefInt64(g), shutdown, finishMargin)
	}

	// Every ${VAR} the config needs is injected.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if len(c.EnvFrom) == 0 {
		for _, v := range requiredVars(cfg.raw) {
			if _, ok := env[v]; !ok {
				r.fail(where, "the config references ${%s}, which the container's env does not set", v)
			}
		}
	}
	if o.serviceAccount != nil && pod.Spec.ServiceAccountName != o.serviceAccount.Name {
		r.fail(where, "serviceAccountName %q, but the chart renders ServiceAccount %q", pod.Spec.ServiceAccountName, o.serviceAccount.Name)
	}
	if envOut != "" {
		// A placeholder for each Secret-backed variable, in the shape of a
		// Standard Webhooks secret so `hookbridge validate` accepts it in
		// signing_secrets (the value never matters elsewhere).
		// The pod's name (a static member's id) as a StatefulSet's first pod
		// is named.
		out := map[string]string{}
		for name, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out[name] = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
			} else if fieldPath(e) == "metadata.name" {
				out[name] = w.name + "-0"
			} else if e.ValueFrom == nil && !strings.Contains(e.Value, "$(") {
				out[name] = e.Value
			}
		}
		if err := writeEnv(envOut, out); err != nil {
			r.fail(envOut, "%v", err)
		}
	}
	r.ok(w.kind + ": probes, hardening, grace period, config and env fit")
}

// fieldPath is the downward-API field an env var comes from, or "".
func fieldPath(e corev1.EnvVar) string {
	if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
		return ""
	}
	return e.ValueFrom.FieldRef.FieldPath
}

// checkStatefulSet checks what a StatefulSet needs besides its pods: a
// headless governing Service that selects them, pods managed in parallel
// (independent consumers), rolling updates.
func checkStatefulSet(r *report, path string, o *objects, w *workload) {
	s := o.statefulSet
	if s == nil {
		if o.headless != nil {
			r.fail(path+": Service/"+o.headless.Name, "a headless Service without a StatefulSet to govern")
		}
		return
	}
	where := path + ": StatefulSet/" + s.Name
	h := o.headless
	switch {
	case s.Spec.ServiceName == "":
		r.fail(where, "spec.serviceName is empty: the pods get no stable network identity")
	case h == nil || h.Name != s.Spec.ServiceName:
		r.fail(where, "spec.serviceName %q names no headless Service (clusterIP None) of the render", s.Spec.ServiceName)
	case len(h.Spec.Selector) == 0 || !labels.SelectorFromSet(h.Spec.Selector).Matches(labels.Set(w.pod.Labels)):
		r.fail(where, "the headless Service %s does not select the StatefulSet's pods", h.Name)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		r.fail(where, "podManagementPolicy %q, want Parallel: the pods are independent consumers, and need not start one by one", s.Spec.PodManagementPolicy)
	}
	if s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		r.fail(where, "updateStrategy.type %q, want RollingUpdate: with OnDelete a helm upgrade changes no pod", s.Spec.UpdateStrategy.Type)
	}
	r.ok("StatefulSet: governed by headless Service " + s.Spec.ServiceName + ", parallel, rolling updates")
}

var wholeVarRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// checkStaticMembership checks a config with kafka.group_instance_id: each
// pod must have an id of its own that survives its restarts (a StatefulSet
// pod's name), and a session timeout chosen for it. want asks for one.
func checkStaticMembership(r *report, path string, w *workload, cfg *hbConfig, want bool) {
	where := path + ": " + w.kind + "/" + w.name
	id := cfg.Kafka.GroupInstanceID
	if id == "" {
		if want {
			r.fail(where, "the config has no kafka.group_instance_id: the pods are not static members")
		}
		return
	}
	m := wholeVarRef.FindStringSubmatch(id)
	if m == nil {
		r.fail(where, "kafka.group_instance_id %q is one id for every replica: the coordinator fences all but one; want ${VAR}, VAR the pod's name", id)
		return
	}
	var c corev1.Container
	if len(w.pod.Spec.Containers) > 0 {
		c = w.pod.Spec.Containers[0]
	}
	from := ""
	for _, e := range c.Env {
		if e.Name == m[1] {
			from = fieldPath(e)
		}
	}
	if from != "metadata.name" {
		r.fail(where, "kafka.group_instance_id is %s, but env %s is not the pod's name (valueFrom.fieldRef metadata.name)", id, m[1])
	}
	if w.kind != "StatefulSet" {
		r.fail(where, "kafka.group_instance_id is the pod's name, which a Deployment changes at every rollout: each new pod joins as a new member, and the old one's partitions wait session_timeout")
	}
	if d, err := cfg.sessionTimeout(); err != nil || d == 0 {
		r.fail(where, "kafka.session_timeout is not set (%v): the default, 10s, is shorter than a pod restart, and every restart would rebalance", err)
	}
	r.ok("static membership: kafka.group_instance_id from the pod's name")
}

func derefInt64(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func selectorOf(w *workload) (labels.Selector, error) {
	if w.selector == nil || len(w.selector.MatchLabels) == 0 {
		return nil, errors.New("no selector")
	}
	return labels.SelectorFromSet(w.selector.MatchLabels), nil
}

func checkMetricsService(r *report, path string, o *objects, w *workload) {
	s := o.service
	if s == nil {
		return
	}
	where := path + ": Service/" + s.Name
	if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.pod.Labels)) || len(s.Spec.Selector) == 0 {
		r.fail(where, "selector does not select the %s's pods", w.kind)
	}
	ok := false
	for _, p := range s.Spec.Ports {
		if p.Name == "metrics" && p.TargetPort.String() == "admin" {
			ok = true
		}
	}
	if !ok {
		r.fail(where, "no port named metrics targeting the container port admin")
	}
	if !s.Spec.PublishNotReadyAddresses {
		r.fail(where, "publishNotReadyAddresses is off: a replica that is not ready (a stuck partition) would not be scraped")
	}
}

func checkPDB(r *report, path string, o *objects, w *workload) {
	p := o.pdb
	if p == nil {
		return
	}
	where := path + ": PodDisruptionBudget/" + p.Name
	if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
		r.fail(where, "want exactly one of minAvailable, maxUnavailable")
	}
	if p.Spec.Selector == nil || !labels.SelectorFromSet(p.Spec.Selector.MatchLabels).Matches(labels.Set(w.pod.Labels)) {
		r.fail(where, "selector does not select the %s's pods", w.kind)
	}
}

func checkServiceMonitor(r *report, path string, o *objects) {
	m := o.serviceMonitor
	if m == nil {
		return
	}
	where := path + ": ServiceMonitor"
	if o.service == nil {
		r.fail(where, "no Service to scrape")
		return
	}
	if !labels.SelectorFromSet(m.Spec.Selector.MatchLabels).Matches(labels.Set(o.service.Labels)) || len(m.Spec.Selector.MatchLabels) == 0 {
		r.fail(where, "selector does not select the Service")
	}
	if len(m.Spec.Endpoints) == 0 || m.Spec.Endpoints[0].Port != "metrics" || m.Spec.Endpoints[0].Path != "/metrics" {
		r.fail(where, "want an endpoint on port metrics, path /metrics")
	}
	if h := o.headless; h != nil && labels.SelectorFromSet(m.Spec.Selector.MatchLabels).Matches(labels.Set(h.Labels)) {
		for _, p := range h.Spec.Ports {
			if p.Name == "metrics" {
				r.fail(where, "selects the headless Service %s too, which has a metrics port: every pod would be scraped twice", h.Name)
			}
		}
	}
	r.ok("ServiceMonitor scrapes the metrics port")
}

func checkScaledObject(r *report, path string, o *objects, w *workload, cfg *hbConfig) {
	so := o.scaledObject
	if so == nil {
		return
	}
	where := path + ": ScaledObject"
	if ref := so.Spec.ScaleTargetRef; ref.Name != w.name || ref.Kind != w.kind || ref.APIVersion != wantAPIVersion[w.kind] {
		r.fail(where, "scaleTargetRef %s %s/%s is not the %s %s", ref.APIVersion, ref.Kind, ref.Name, w.kind, w.name)
	}
	minR, maxR := int32(1), int32(100)
	if so.Spec.MinReplicaCount != nil {
		minR = *so.Spec.MinReplicaCount
	}
	if so.Spec.MaxReplicaCount != nil {
		maxR = *so.Spec.MaxReplicaCount
	} else {
		r.fail(where, "maxReplicaCount unset (KEDA's default 100 is far above any partition count)")
	}
	if maxR < minR || maxR < 1 {
		r.fail(where, "maxReplicaCount %d < minReplicaCount %d", maxR, minR)
	}
	type key struct{ group, topic string }
	want := map[key]bool{}
	for _, rt := range cfg.Routes {
		for _, t := range rt.Topics {
			want[key{rt.group(), t}] = true
		}
	}
	got := map[key]bool{}
	names := map[string]int{}
	brokers := strings.Join(cfg.Kafka.Brokers, ",")
	secured := cfg.secured()
	for i, t := range so.Spec.Triggers {
		tw := fmt.Sprintf("%s: triggers[%d]", where, i)
		if j, dup := names[t.Name]; dup && t.Name != "" {
			r.fail(tw, "name %q is the name of triggers[%d] too: KEDA refuses the ScaledObject", t.Name, j)
		}
		names[t.Name] = i
		if t.Type != "kafka" {
			r.fail(tw, "type %q, want kafka", t.Type)
			continue
		}
		if secured && t.AuthenticationRef == nil {
			r.fail(tw, "no authenticationRef, but the brokers need TLS or SASL: KEDA cannot read the lag, and nothing scales")
		}
		md := t.Metadata
		for _, k := range []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} {
			if md[k] == "" {
				r.fail(tw, "metadata.%s missing", k)
			}
		}
		for _, k := range []string{"bootstrapServers", "consumerGroup", "topic"} {
			if strings.Contains(md[k], "${") {
				r.fail(tw, "metadata.%s %q: KEDA does not expand ${VAR}, so it reads the lag of a group or topic that does not exist, and nothing scales", k, md[k])
			}
		}
		if md["bootstrapServers"] != brokers {
			r.fail(tw, "bootstrapServers %q, config has %q", md["bootstrapServers"], brokers)
		}
		if n, err := strconv.ParseFloat(md["lagThreshold"], 64); err != nil || n <= 0 {
			r.fail(tw, "lagThreshold %q is not a positive number", md["lagThreshold"])
		}
		k := key{md["consumerGroup"], md["topic"]}
		if !want[k] {
			r.fail(tw, "group %s topic %s is not a route of the config", k.group, k.topic)
		}
		got[k] = true
	}
	for k := range want {
		if !got[k] {
			r.fail(where, "no trigger for group %s topic %s", k.group, k.topic)
		}
	}
	r.ok(fmt.Sprintf("ScaledObject: %d kafka trigger(s), one per route and topic, max %d replicas", len(so.Spec.Triggers), maxR))
}
