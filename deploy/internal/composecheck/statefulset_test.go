package main

// Checks of a StatefulSet render with static membership (the chart's
// workload: StatefulSet, staticMembership.enabled): a baseline the checker
// accepts, and one change each.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stsManifest is baseManifest with the Deployment made a StatefulSet.
var stsManifest = strings.Replace(baseManifest, "kind: Deployment\n", "kind: StatefulSet\n", 1)

const headlessDoc = `---
apiVersion: v1
kind: Service
metadata: {name: hb-headless, labels: {app: hb}}
spec:
  clusterIP: None
  selector: {#HEADLESS_SELECTOR#}
#HEADLESS_PORTS#
`

// stsDefaults fill stsManifest's placeholders as the chart renders them.
var stsDefaults = map[string]string{
	"#REPLICAS#": `replicas: 2
  serviceName: hb-headless
  podManagementPolicy: Parallel
  updateStrategy: {type: RollingUpdate}`,
	"#KAFKA#": `group_instance_id: "${POD_NAME}"
      session_timeout: 2m`,
	"#ENV#": "env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]",
	"#EXTRA#": strings.NewReplacer("#HEADLESS_SELECTOR#", "app: hb", "#HEADLESS_PORTS#", "").
		Replace(headlessDoc),
}

// stsCheck runs the manifests check on the StatefulSet baseline, with
// static members wanted.
func stsCheck(t *testing.T, set map[string]string) *report {
	t.Helper()
	return manifestCheck(t, stsManifest, stsDefaults, set, true)
}

func TestStatefulSetBaselinePasses(t *testing.T) {
	r := stsCheck(t, nil)
	baseNoProblems(t, r)
	if !strings.Contains(strings.Join(r.checked, "; "), "static membership") {
		t.Errorf("the static membership check did not run: %q", r.checked)
	}
	// KEDA scaling the StatefulSet.
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("r-t", "t"), 1)
	so = strings.Replace(so, "kind: Deployment,", "kind: StatefulSet,", 1)
	baseNoProblems(t, stsCheck(t, map[string]string{
		"#REPLICAS#": strings.Replace(stsDefaults["#REPLICAS#"], "replicas: 2\n  ", "", 1),
		"#EXTRA#":    stsDefaults["#EXTRA#"] + so,
	}))
	// A StatefulSet without static membership is a valid render too.
	baseNoProblems(t, manifestCheck(t, stsManifest, stsDefaults, map[string]string{"#KAFKA#": ""}, false))
}

func TestStatefulSetNeedsItsHeadlessService(t *testing.T) {
	wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": ""}), "names no headless Service")
	// A Service of that name with a cluster IP is not one.
	notHeadless := strings.Replace(stsDefaults["#EXTRA#"], "clusterIP: None", "type: ClusterIP", 1)
	wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": notHeadless}), "names no headless Service")
	wantProblem(t, stsCheck(t, map[string]string{"#REPLICAS#": "replicas: 2"}), "spec.serviceName is empty")
}

func TestStatefulSetHeadlessServiceSelectsThePods(t *testing.T) {
	for _, sel := range []string{"", "app: other"} {
		extra := strings.NewReplacer("#HEADLESS_SELECTOR#", sel, "#HEADLESS_PORTS#", "").Replace(headlessDoc)
		wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": extra}), "does not select the StatefulSet's pods")
	}
}

func TestStatefulSetPolicies(t *testing.T) {
	ordered := strings.Replace(stsDefaults["#REPLICAS#"], "Parallel", "OrderedReady", 1)
	wantProblem(t, stsCheck(t, map[string]string{"#REPLICAS#": ordered}), "podManagementPolicy")
	onDelete := strings.Replace(stsDefaults["#REPLICAS#"], "type: RollingUpdate", "type: OnDelete", 1)
	wantProblem(t, stsCheck(t, map[string]string{"#REPLICAS#": onDelete}), "updateStrategy")
}

func TestStaticMemberIDIsThePodName(t *testing.T) {
	for env, want := range map[string]string{
		"": "env POD_NAME is not the pod's name",
		"env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}]": "env POD_NAME is not the pod's name",
		"env: [{name: POD_NAME, value: hb-0}]":                                            "env POD_NAME is not the pod's name",
	} {
		wantProblem(t, stsCheck(t, map[string]string{"#ENV#": env}), want)
	}
	fixed := strings.Replace(stsDefaults["#KAFKA#"], `"${POD_NAME}"`, "hb-static", 1)
	wantProblem(t, stsCheck(t, map[string]string{"#KAFKA#": fixed}), "one id for every replica")
	prefixed := strings.Replace(stsDefaults["#KAFKA#"], `"${POD_NAME}"`, `"x-${POD_NAME}"`, 1)
	wantProblem(t, stsCheck(t, map[string]string{"#KAFKA#": prefixed}), "one id for every replica")
}

func TestStaticMembershipNeedsASessionTimeout(t *testing.T) {
	for _, session := range []string{"", "session_timeout: 0s", "session_timeout: soon"} {
		kafka := strings.Replace(stsDefaults["#KAFKA#"], "session_timeout: 2m", session, 1)
		wantProblem(t, stsCheck(t, map[string]string{"#KAFKA#": kafka}), "kafka.session_timeout")
	}
}

func TestStaticMembersWantedButAbsent(t *testing.T) {
	wantProblem(t, stsCheck(t, map[string]string{"#KAFKA#": "session_timeout: 2m"}), "not static members")
}

// A Deployment's pod names change at every rollout.
func TestStaticMembershipInADeployment(t *testing.T) {
	r := manifestCheck(t, baseManifest, nil, map[string]string{
		"#KAFKA#": stsDefaults["#KAFKA#"], "#ENV#": stsDefaults["#ENV#"],
	}, false)
	wantProblem(t, r, "which a Deployment changes at every rollout")
}

func TestDeploymentAndStatefulSetTogether(t *testing.T) {
	deployment := strings.SplitN(strings.SplitN(baseManifest, "kind: Deployment\n", 2)[1], "#EXTRA#", 2)[0]
	both := stsDefaults["#EXTRA#"] + "---\napiVersion: apps/v1\nkind: Deployment\n" + deployment
	wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": both}), "both a Deployment and a StatefulSet")
}

func TestKedaScalesTheStatefulSet(t *testing.T) {
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("r-t", "t"), 1)
	r := stsCheck(t, map[string]string{
		"#REPLICAS#": strings.Replace(stsDefaults["#REPLICAS#"], "replicas: 2\n  ", "", 1),
		"#EXTRA#":    stsDefaults["#EXTRA#"] + so,
	})
	wantProblem(t, r, "is not the StatefulSet hb")
}

// A ServiceMonitor that selects the headless Service as well as the admin
// one would scrape each pod twice, if the headless one had a metrics port.
func TestServiceMonitorAndTheHeadlessService(t *testing.T) {
	const admin = `---
apiVersion: v1
kind: Service
metadata: {name: hb, labels: {app: hb}}
spec:
  selector: {app: hb}
  publishNotReadyAddresses: true
  ports: [{name: metrics, port: 9464, targetPort: admin}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: hb}
spec:
  selector: {matchLabels: {app: hb}}
  endpoints: [{port: metrics, path: /metrics}]
`
	baseNoProblems(t, stsCheck(t, map[string]string{"#EXTRA#": stsDefaults["#EXTRA#"] + admin}))
	ported := strings.NewReplacer("#HEADLESS_SELECTOR#", "app: hb",
		"#HEADLESS_PORTS#", "  ports: [{name: metrics, port: 9464, targetPort: admin}]").Replace(headlessDoc)
	wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": ported + admin}), "scraped twice")
	// A replica that is not ready is the one whose metrics matter.
	hidden := strings.Replace(admin, "  publishNotReadyAddresses: true\n", "", 1)
	wantProblem(t, stsCheck(t, map[string]string{"#EXTRA#": stsDefaults["#EXTRA#"] + hidden}), "publishNotReadyAddresses is off")
}

// The env file `hookbridge validate` runs with has the pod's name, as the
// StatefulSet names its first pod.
func TestEnvOutHasThePodName(t *testing.T) {
	doc := stsManifest
	for k, v := range stsDefaults {
		doc = strings.ReplaceAll(doc, k, v)
	}
	for k, v := range map[string]string{"#SHUTDOWN#": "25s", "#TOPICS#": "t", "#GRACE#": "45", "#EMPTYDIR#": "{}"} {
		doc = strings.ReplaceAll(doc, k, v)
	}
	dir := write(t, map[string]string{"rendered.yaml": doc})
	envOut := filepath.Join(dir, "env")
	r := &report{}
	checkManifests(r, filepath.Join(dir, "rendered.yaml"), []string{"ConfigMap", "StatefulSet", headlessKind}, "", envOut, true, nil, nil)
	baseNoProblems(t, r)
	got, err := os.ReadFile(envOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "POD_NAME=hb-0\n") {
		t.Errorf("env file:\n%s\nwant POD_NAME=hb-0", got)
	}
}
