package main

import (
	"strings"
	"testing"
)

// dlq replay of a configuration whose broker is the embedded one of
// hookbridge run, on a random port: a usage error, before anything starts.
// Before, the replay started an empty broker of its own, read nothing and
// exited 0 with "0 read".
func TestDLQReplayOfEmbeddedWithoutBrokersIsAUsageError(t *testing.T) {
	cfg := `
kafka: {embedded: true}
admin: {listen: "off"}
routes:
  - name: orders
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/h"}}
    dead_letter: {topic: t.dlq}
`
	dir := configDir(t, map[string]string{"hookbridge.yaml": cfg})
	code, stdout, stderr := runCLI(t, dir, "dlq", "replay", "--route", "orders", "--dry-run")
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitUsage, stdout, stderr)
	}
	if want := "kafka.embedded without kafka.brokers"; !strings.Contains(stderr, want) {
		t.Fatalf("stderr = %q, want it to say %q", stderr, want)
	}
}
