package main

// Checks of the rendered manifests and the compose file on hand-written
// input: a baseline the checker accepts, and one change each.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// baseManifest is a render the checker accepts as it stands (see
// TestBaselinePasses); the tests change one thing in it.
const baseManifest = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: hb}
data:
  hookbridge.yaml: |
    kafka:
      brokers: ["k:9092"]
      #KAFKA#
    admin: {listen: 0.0.0.0:9464}
    shutdown_timeout: #SHUTDOWN#
    routes:
      - name: r
        topics: [#TOPICS#]
        target: {webhook: {url: "http://x:1/"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hb}
spec:
  #REPLICAS#
  selector: {matchLabels: {app: hb}}
  template:
    metadata:
      labels: {app: hb}
      annotations: {checksum/config: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}
    spec:
      terminationGracePeriodSeconds: #GRACE#
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
        - name: hookbridge
          image: hookbridge:dev
          args: ["run", "-c", "/etc/hookbridge/hookbridge.yaml"]
          #ENV#
          ports: [{name: admin, containerPort: 9464}]
          livenessProbe: {httpGet: {path: /livez, port: admin}}
          readinessProbe: {httpGet: {path: /readyz, port: admin}}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          resources: {limits: {memory: 512Mi}}
          volumeMounts:
            - {name: config, mountPath: /etc/hookbridge, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: config, configMap: {name: hb}}
        - name: tmp
          emptyDir: #EMPTYDIR#
#EXTRA#`

const baseScaledObjectDoc = `---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: hb}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hb}
  minReplicaCount: 1
  maxReplicaCount: 6
  triggers:
#TRIGGERS#`

func baseTrigger(name, topic string) string {
	return fmt.Sprintf(`    - type: kafka
      name: %q
      metadata: {bootstrapServers: "k:9092", consumerGroup: "hookbridge.r", topic: %q, lagThreshold: "100", offsetResetPolicy: earliest}
`, name, topic)
}

// baseCheck runs the manifests check on the baseline with the
// placeholders replaced (defaults for those not given).
func baseCheck(t *testing.T, set map[string]string) *report {
	t.Helper()
	return manifestCheck(t, baseManifest, nil, set, false)
}

// fillPlaceholders replaces the placeholders of doc: from set, else from
// defaults, else the baseline's.
func fillPlaceholders(doc string, defaults, set map[string]string) string {
	vals := map[string]string{
		"#KAFKA#": "", "#SHUTDOWN#": "25s", "#TOPICS#": "t", "#REPLICAS#": "replicas: 2",
		"#GRACE#": "45", "#EMPTYDIR#": "{sizeLimit: 64Mi}", "#EXTRA#": "", "#ENV#": "",
	}
	for _, m := range []map[string]string{defaults, set} {
		for k, v := range m {
			vals[k] = v
		}
	}
	for k, v := range vals {
		doc = strings.ReplaceAll(doc, k, v)
	}
	return doc
}

// manifestCheck runs the manifests check on doc with its placeholders
// replaced: from set, else from defaults, else the baseline's. The kinds
// wanted are the kinds in it.
func manifestCheck(t *testing.T, doc string, defaults, set map[string]string, staticMembers bool) *report {
	t.Helper()
	doc = fillPlaceholders(doc, defaults, set)
	var kinds []string
	for _, k := range []string{"ConfigMap", "Deployment", "StatefulSet", "ScaledObject", "ServiceMonitor"} {
		if strings.Contains(doc, "kind: "+k+"\n") {
			kinds = append(kinds, k)
		}
	}
	if strings.Contains(doc, "clusterIP: None") {
		kinds = append(kinds, headlessKind)
	}
	if strings.Count(doc, "kind: Service\n") > strings.Count(doc, "clusterIP: None") {
		kinds = append(kinds, "Service")
	}
	dir := write(t, map[string]string{"rendered.yaml": doc})
	r := &report{}
	checkManifests(r, filepath.Join(dir, "rendered.yaml"), kinds, "", "", staticMembers, nil, nil)
	return r
}

func baseNoProblems(t *testing.T, r *report) {
	t.Helper()
	if len(r.problems) > 0 {
		t.Fatalf("baseline has problems:\n  %s", strings.Join(r.problems, "\n  "))
	}
}

func TestBaselinePasses(t *testing.T) {
	baseNoProblems(t, baseCheck(t, nil))
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("r-t", "t"), 1)
	baseNoProblems(t, baseCheck(t, map[string]string{"#REPLICAS#": "", "#EXTRA#": so}))
}

// shutdown_timeout 0 (or 0s) is the default, 25s, in the bridge
// (bridge/config defaults) and in the chart: a grace period or
// stop_grace_period below that drain is a problem. A bare 0, a YAML number,
// decodes too.

func TestComposeZeroShutdownTimeoutIsTheDefault(t *testing.T) {
	for _, shutdown := range []string{"0s", "0", `"0"`} {
		t.Run(shutdown, func(t *testing.T) {
			dir := write(t, map[string]string{
				"hookbridge.yaml": `kafka: {brokers: ["kafka:9092"]}
admin: {listen: 0.0.0.0:9464}
telemetry: {otlp_endpoint: http://jaeger:4317}
shutdown_timeout: ` + shutdown + `
routes:
  - name: r
    topics: [orders]
    target: {webhook: {url: http://receiver:8000/webhook, signing_secrets: ["${SECRET}"]}}
`,
				// No stop_grace_period: compose's default, 10s, is far below the
				// 25s drain the bridge actually takes with shutdown_timeout 0.
				"compose.yaml": `services:
  kafka:
    image: apache/kafka:4.4.0
  kafka-init:
    image: apache/kafka:4.4.0
    command: ["kafka-topics.sh", "--create", "--topic", "orders"]
  jaeger:
    image: jaegertracing/jaeger:2.13.0
  receiver:
    image: python:3.11-slim
    environment: {WEBHOOK_SECRETS: whsec_x}
  producer:
    image: apache/kafka:4.4.0
  hookbridge:
    image: hookbridge:dev
    volumes: ["./hookbridge.yaml:/etc/hookbridge/hookbridge.yaml:ro"]
    environment: {SECRET: whsec_x}
    ports: ["127.0.0.1:9464:9464"]
    depends_on:
      kafka-init: {condition: service_completed_successfully}
`,
			})
			r := &report{}
			checkCompose(r, filepath.Join(dir, "compose.yaml"), "", "")
			for _, p := range r.problems {
				if strings.Contains(p, "cannot unmarshal") {
					t.Errorf("the checker cannot read a shutdown_timeout the bridge accepts: %s", p)
				}
			}
			wantProblem(t, r, "stop_grace_period")
		})
	}
}

// A grace period that covers the drain but not the 10 s after it (commits,
// group leaves, spans) is a problem too.
func TestManifestsGraceWithinTheFinish(t *testing.T) {
	wantProblem(t, baseCheck(t, map[string]string{"#SHUTDOWN#": "25s", "#GRACE#": "35"}), "terminationGracePeriodSeconds")
	baseNoProblems(t, baseCheck(t, map[string]string{"#SHUTDOWN#": "25s", "#GRACE#": "36"}))
}

func TestManifestsZeroShutdownTimeoutIsTheDefault(t *testing.T) {
	// shutdown_timeout 0s = 25s in the bridge; a 10s grace period kills it mid-drain.
	r := baseCheck(t, map[string]string{"#SHUTDOWN#": "0s", "#GRACE#": "10"})
	wantProblem(t, r, "terminationGracePeriodSeconds")
}

func TestManifestsTmpVolumeNeedsASource(t *testing.T) {
	r := baseCheck(t, map[string]string{"#EMPTYDIR#": ""})
	wantProblem(t, r, "/tmp")
}

func TestManifestsDuplicateKedaTriggerNames(t *testing.T) {
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("same", "t1")+baseTrigger("same", "t2"), 1)
	r := baseCheck(t, map[string]string{"#REPLICAS#": "", "#TOPICS#": "t1, t2", "#EXTRA#": so})
	wantProblem(t, r, "same")
}

func TestManifestsKedaNeedsAuthForTLSOrSASL(t *testing.T) {
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("r-t", "t"), 1)
	r := baseCheck(t, map[string]string{
		"#REPLICAS#": "", "#EXTRA#": so,
		"#KAFKA#": "tls: {enabled: true}\n      sasl: {mechanism: SCRAM-SHA-512, username: hb, password: x}",
	})
	wantProblem(t, r, "authenticationRef")
}

// The bridge expands a ${VAR} in a route's topics and group; KEDA reads the
// trigger's as written.
func TestManifestsKedaTriggerWithAVariable(t *testing.T) {
	so := strings.Replace(baseScaledObjectDoc, "#TRIGGERS#", baseTrigger("r-t", "${TOPIC}"), 1)
	r := baseCheck(t, map[string]string{"#REPLICAS#": "", "#TOPICS#": `"${TOPIC}"`, "#EXTRA#": so})
	wantProblem(t, r, "metadata.topic")
}

// The bridge takes ${VAR} anywhere in its config, kafka.tls.enabled
// included: the checker reads such a config, and counts the brokers as
// secured (the variable may enable TLS), as the chart does.
func TestTLSEnabledFromAVariable(t *testing.T) {
	for _, tt := range []struct {
		enabled string
		secured bool
	}{{`"${KAFKA_TLS}"`, true}, {"true", true}, {"false", false}, {`""`, false}} {
		cfg, err := parseHBConfig([]byte("kafka:\n  brokers: [\"kafka:9092\"]\n  tls: {enabled: " + tt.enabled + "}\nroutes: []\n"))
		if err != nil {
			t.Fatalf("tls.enabled %s: %v", tt.enabled, err)
		}
		if cfg.secured() != tt.secured {
			t.Errorf("tls.enabled %s: secured %v, want %v", tt.enabled, cfg.secured(), tt.secured)
		}
	}
}
