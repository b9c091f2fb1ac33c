package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRequiredVars(t *testing.T) {
	got := requiredVars(`a: ${A}
b: ["${B}", "${A}"]
c: ${C:-default}
d: $${D}
e: ${E-x}`)
	if want := []string{"A", "B"}; !slices.Equal(got, want) {
		t.Fatalf("requiredVars = %q, want %q", got, want)
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"HOST": "receiver", "EMPTY": ""}
	for in, want := range map[string]string{
		"http://${HOST}:8000":    "http://receiver:8000",
		"${MISSING:-http://x}":   "http://x",
		"${EMPTY:-fallback}":     "fallback",
		"${EMPTY-fallback}":      "",
		"${MISSING}":             "${MISSING}",
		"$${HOST} stays literal": "${HOST} stays literal",
	} {
		if got := expandVars(in, env); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

// write creates files under a temp dir and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func wantProblem(t *testing.T, r *report, substr string) {
	t.Helper()
	for _, p := range r.problems {
		if strings.Contains(p, substr) {
			return
		}
	}
	t.Errorf("no problem mentions %q; problems:\n  %s", substr, strings.Join(r.problems, "\n  "))
}

// The receiver contract bites: root user, shell-form CMD, latest tag,
// a lint finding, a source .dockerignore drops.
func TestDockerfileProblems(t *testing.T) {
	dir := write(t, map[string]string{
		".dockerignore": "*\n",
		"examples/receiver-fastapi/requirements.txt": "fastapi\nuvicorn\n",
		"examples/receiver-fastapi/app.py":           "",
		"Dockerfile": `from python:latest as Base
COPY examples/receiver-fastapi/requirements.txt examples/receiver-fastapi/app.py ./
USER root
CMD uvicorn app:app
`,
	})
	r := &report{}
	checkDockerfile(r, filepath.Join(dir, "Dockerfile"), dir, "receiver")
	wantProblem(t, r, "pin a tag")
	wantProblem(t, r, "lint StageNameCasing")
	wantProblem(t, r, "excluded by")
	wantProblem(t, r, "run the receiver as non-root")
	wantProblem(t, r, "want python:3.11-slim")
}

func TestDockerfileSyntaxError(t *testing.T) {
	dir := write(t, map[string]string{"Dockerfile": "FROM alpine:3\nCOPY\n"})
	r := &report{}
	checkDockerfile(r, filepath.Join(dir, "Dockerfile"), dir, "")
	if len(r.problems) == 0 {
		t.Fatal("a COPY without arguments passed")
	}
}

// The repository's own files pass: the checks and the files agree.
func TestRepositoryFiles(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	r := &report{}
	checkDockerfile(r, filepath.Join(root, "deploy/docker/Dockerfile"), root, "hookbridge")
	checkDockerfile(r, filepath.Join(root, "deploy/compose/receiver.Dockerfile"), root, "receiver")
	checkCompose(r, filepath.Join(root, "deploy/compose/compose.yaml"), "", "")
	if len(r.problems) > 0 {
		t.Fatalf("problems:\n  %s", strings.Join(r.problems, "\n  "))
	}
}

func TestComposeProblems(t *testing.T) {
	dir := write(t, map[string]string{
		"hookbridge.yaml": `kafka: {brokers: ["kafka:9092"]}
admin: {listen: 127.0.0.1:9464}
telemetry: {otlp_endpoint: http://collector:4317}
shutdown_timeout: 30s
routes:
  - name: r
    topics: [orders]
    target: {webhook: {url: http://receiver:8000/webhook, signing_secrets: ["${SECRET}"]}}
    dead_letter: {topic: orders.dlq}
`,
		"compose.yaml": `services:
  kafka:
    image: apache/kafka:4.4.0
  kafka-init:
    image: apache/kafka:4.4.0
    command: ["kafka-topics.sh", "--create", "--topic", "orders"]
    restart: always
  jaeger:
    image: jaegertracing/jaeger:latest
  receiver:
    image: python:3.11-slim
    environment: {WEBHOOK_SECRETS: whsec_other}
  producer:
    image: apache/kafka:4.4.0
  hookbridge:
    image: hookbridge:dev
    volumes: ["./hookbridge.yaml:/etc/hookbridge/hookbridge.yaml:ro"]
    environment: {SECRET: whsec_mine}
    depends_on:
      kafka: {condition: service_healthy}
      kafka-init: {condition: service_completed_successfully}
`,
	})
	r := &report{}
	checkCompose(r, filepath.Join(dir, "compose.yaml"), "", "")
	wantProblem(t, r, "kafka has no healthcheck")
	wantProblem(t, r, "kafka-init restarts")
	wantProblem(t, r, "pin a tag")
	wantProblem(t, r, "in a container it must listen on 0.0.0.0")
	wantProblem(t, r, "want http://jaeger:4317")
	wantProblem(t, r, "not given to the receiver")
	wantProblem(t, r, `does not create topic "orders.dlq"`)
	wantProblem(t, r, "stop_grace_period")
}

func TestManifestProblems(t *testing.T) {
	dir := write(t, map[string]string{"rendered.yaml": `---
apiVersion: v1
kind: ConfigMap
metadata: {name: hb}
data:
  hookbridge.yaml: |
    kafka: {brokers: ["k:9092"]}
    admin: {listen: 127.0.0.1:9464}
    routes:
      - name: r
        topics: [t]
        target: {webhook: {url: http://x:1/, signing_secrets: ["${S}"]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hb}
spec:
  replicas: 1
  selector: {matchLabels: {app: hb}}
  template:
    metadata: {labels: {app: hb}}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: hookbridge
          image: hookbridge:dev
          args: ["run", "-c", "/etc/hookbridge/hookbridge.yaml"]
          livenessProbe: {httpGet: {path: /readyz, port: admin}}
          securityContext: {readOnlyRootFilesystem: true}
          resourcez: {}
`})
	r := &report{}
	checkManifests(r, filepath.Join(dir, "rendered.yaml"), []string{"ConfigMap", "Deployment", "Service"}, "", "", false, nil, nil)
	wantProblem(t, r, "want exactly: ConfigMap,Deployment,Service")
	wantProblem(t, r, `unknown field "resourcez"`)
	wantProblem(t, r, "admin.listen")
}
