package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Route names may hold dots, so the replay group of route orders
// (hookbridge.orders.replay) can be the consumer group of a route named
// orders.replay. dlq replay refuses such a route as a usage error, before it
// connects: it would join the other route's group and rebalance it (before,
// it did, and committed its progress there).
func TestDLQReplayRefusesAReplayGroupThatIsAnotherRoutesGroup(t *testing.T) {
	// A broker the command would use if it did not refuse (never a real
	// one on a fixed port).
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t", "t.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := fmt.Sprintf(`
kafka: {brokers: [%q]}
admin: {listen: "off"}
routes:
  - name: orders
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/h"}}
    dead_letter: {topic: t.dlq}
  - name: orders.replay
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/r"}}
`, cluster.ListenAddrs()[0])
	dir := configDir(t, map[string]string{"hookbridge.yaml": cfg})
	code, stdout, stderr := runCLI(t, dir, "dlq", "replay", "--route", "orders")
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitUsage, stdout, stderr)
	}
	want := "route orders: its replay group hookbridge.orders.replay is the consumer group of route orders.replay"
	if !strings.Contains(stderr, want) {
		t.Fatalf("stderr = %q, want it to say %q", stderr, want)
	}
}
