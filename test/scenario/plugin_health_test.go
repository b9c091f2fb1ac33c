package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A plugin that cannot start turns /readyz to 503 with the reason, and its
// breaker opens before the record has spent its attempts: nothing is
// dead-lettered, the record waits.
func TestReadyzReportsAPluginThatCannotStart(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.CreateTopic(t, dlq, 1)
	notAPlugin := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(notAPlugin, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	brokers, _ := json.Marshal(b.Addrs)
	cfg := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `kafka: {brokers: %s, session_timeout: 6s}
admin: {listen: %s}
plugins:
  broken: {command: [%q], instances: {min: 0, max: 1}}
routes:
  - name: scenario
    topics: [%s]
    group: %s
    target: {plugin: broken}
    retry: {max_attempts: 10, initial_backoff: 10ms, max_backoff: 200ms}
    dead_letter: {topic: %s}
`, brokers, anyPort, notAPlugin, topic, group, dlq), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBridge(t, cfg) // ready: a plugin scaled to zero has not failed yet
	b.produce(t, topic, keyed(1, 1))
	waitFor(t, 30*time.Second, "/readyz to report the plugin", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), "route scenario: cannot start: plugin broken")
	})
	// The breaker opens (five failed starts in a row, fewer than the ten
	// attempts a record has): from then on the record waits.
	waitFor(t, 30*time.Second, "the plugin's breaker to open", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_breaker_state") == 2
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered while the plugin could not start, want 0", n)
	}
}
