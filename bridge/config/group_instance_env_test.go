package config

import (
	"strings"
	"testing"
)

// group_instance_id: ${POD_NAME} with POD_NAME set to the empty string (a
// Compose file's "POD_NAME=", a pod env entry with value "") gave no id at
// all: validate said ok and the replica ran as a dynamic member, its static
// membership silently off. Kafka takes no empty group instance id either.
// validate says so, naming the variable; with it set, the id is taken.
func TestGroupInstanceIDEmptyFromTheEnvironmentIsAProblem(t *testing.T) {
	src := withRoute(hook)
	src = strings.Replace(src, `kafka: {brokers: ["127.0.0.1:9092"]}`,
		`kafka: {brokers: ["127.0.0.1:9092"], group_instance_id: "${POD_NAME}"}`, 1)
	errs := problemsOf(t, src, map[string]string{"POD_NAME": ""})
	p := wantProblem(t, errs, "kafka.group_instance_id", "(from ${POD_NAME}) is empty")
	if p.Line != 1 {
		t.Errorf("problem on line %d, want 1", p.Line)
	}
	if len(errs) != 1 {
		t.Errorf("%d problems, want only the empty id:\n%v", len(errs), errs)
	}

	cfg, err := Parse("test.yaml", []byte(src), envOf(map[string]string{"POD_NAME": "hookbridge-0"}))
	if err != nil {
		t.Fatalf("with POD_NAME set: %v", err)
	}
	if cfg.Kafka.GroupInstanceID != "hookbridge-0" {
		t.Errorf("GroupInstanceID = %q, want hookbridge-0", cfg.Kafka.GroupInstanceID)
	}
	// Left out, the replica is a dynamic member, as before.
	if _, err := Parse("test.yaml", []byte(withRoute(hook)), envOf(nil)); err != nil {
		t.Errorf("without group_instance_id: %v", err)
	}
	// ${POD_NAME:-} asks for dynamic membership where the variable is
	// unset or empty (one file for replicas with and without ids).
	optional := strings.Replace(src, "${POD_NAME}", "${POD_NAME:-}", 1)
	for _, env := range []map[string]string{nil, {"POD_NAME": ""}} {
		cfg, err := Parse("test.yaml", []byte(optional), envOf(env))
		if err != nil {
			t.Errorf("${POD_NAME:-} with %v: %v", env, err)
		} else if cfg.Kafka.GroupInstanceID != "" {
			t.Errorf("${POD_NAME:-} with %v: GroupInstanceID = %q, want none", env, cfg.Kafka.GroupInstanceID)
		}
	}
}

// client_rack: ${ZONE} with ZONE set empty (the init container that reads
// the node's zone found none) fetched from the leaders, across zones,
// without a word. validate says so; ${ZONE:-} keeps the leaders on purpose.
func TestClientRackEmptyFromTheEnvironmentIsAProblem(t *testing.T) {
	src := strings.Replace(withRoute(hook), `kafka: {brokers: ["127.0.0.1:9092"]}`,
		`kafka: {brokers: ["127.0.0.1:9092"], client_rack: "${ZONE}"}`, 1)
	errs := problemsOf(t, src, map[string]string{"ZONE": ""})
	wantProblem(t, errs, "kafka.client_rack", "(from ${ZONE}) is empty")
	if len(errs) != 1 {
		t.Errorf("%d problems, want only the empty rack:\n%v", len(errs), errs)
	}
	cfg, err := Parse("test.yaml", []byte(src), envOf(map[string]string{"ZONE": "eu-west-1a"}))
	if err != nil {
		t.Fatalf("with ZONE set: %v", err)
	}
	if cfg.Kafka.ClientRack != "eu-west-1a" {
		t.Errorf("ClientRack = %q, want eu-west-1a", cfg.Kafka.ClientRack)
	}
	optional := strings.Replace(src, "${ZONE}", "${ZONE:-}", 1)
	if cfg, err := Parse("test.yaml", []byte(optional), envOf(map[string]string{"ZONE": ""})); err != nil {
		t.Errorf("${ZONE:-} with ZONE empty: %v", err)
	} else if cfg.Kafka.ClientRack != "" {
		t.Errorf("${ZONE:-}: ClientRack = %q, want none", cfg.Kafka.ClientRack)
	}
}
