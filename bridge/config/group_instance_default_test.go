package config

import (
	"strings"
	"testing"
)

// A group_instance_id built of several references, one of them with a
// default ("${PREFIX:-}${POD_NAME}"), that comes out empty because POD_NAME
// is set to the empty string is refused as ${POD_NAME} alone is: only
// POD_NAME's default was asked for, and it has none. With every reference
// written with a default, an empty id still means dynamic membership.
func TestGroupInstanceIDEmptyWithOneReferenceDefaulted(t *testing.T) {
	src := strings.Replace(withRoute(hook), `kafka: {brokers: ["127.0.0.1:9092"]}`,
		`kafka: {brokers: ["127.0.0.1:9092"], group_instance_id: "${PREFIX:-}${POD_NAME}"}`, 1)
	errs := problemsOf(t, src, map[string]string{"POD_NAME": ""})
	wantProblem(t, errs, "kafka.group_instance_id", "is empty")

	optional := strings.Replace(src, "${POD_NAME}", "${POD_NAME:-}", 1)
	cfg, err := Parse("test.yaml", []byte(optional), envOf(map[string]string{"POD_NAME": ""}))
	if err != nil {
		t.Fatalf("${PREFIX:-}${POD_NAME:-} with POD_NAME empty: %v", err)
	}
	if cfg.Kafka.GroupInstanceID != "" {
		t.Errorf("GroupInstanceID = %q, want none", cfg.Kafka.GroupInstanceID)
	}
}
