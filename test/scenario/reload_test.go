package scenario

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP re-reads the config: a changed route is drained and restarted with
// its new target, an added route starts, an unchanged one keeps running; an
// invalid file is rejected and the running config stays.
func TestSighupReload(t *testing.T) {
	b := newBroker(t)
	topic := topicName(t, "in")
	b.CreateTopic(t, topic, 6)
	first, second, added := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	g1, g2 := topicName(t, "g1"), topicName(t, "g2")
	admin := freePort(t)
	path := b.configRoutes(t, admin, routeSpec{Name: "moving", Topic: topic, Group: g1, URL: first.url()})
	p := startBridge(t, path, admin)

	recs := keyed(2000, 50)
	b.produce(t, topic, recs[:1000])
	waitFor(t, time.Minute, "the first target's deliveries", func() bool { return first.uniqueAccepted() >= 1000 })

	// An invalid file is rejected; the bridge keeps running as it was.
	if err := os.WriteFile(path, []byte("routes:\n  - name: moving\n    concurrency: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the rejection to be logged", func() bool {
		return strings.Contains(p.Log(), "reload rejected")
	})
	if err := p.Ready(); err != nil {
		t.Fatalf("not ready after a rejected reload: %v", err)
	}

	// A valid file: "moving" now posts to the second receiver, "added" is new.
	valid := b.configRoutes(t, admin,
		routeSpec{Name: "moving", Topic: topic, Group: g1, URL: second.url()},
		routeSpec{Name: "added", Topic: topic, Group: g2, URL: added.url()})
	data, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the reload", func() bool {
		return strings.Contains(p.Log(), "configuration reloaded")
	})
	b.produce(t, topic, recs[1000:])
	waitFor(t, time.Minute, "the moved route's deliveries", func() bool { return second.uniqueAccepted() >= 1000 })
	waitFor(t, time.Minute, "the added route's deliveries", func() bool { return added.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := first.uniqueAccepted(); n != 1000 {
		t.Fatalf("the old target got %d records; it should have stopped at the reload (1000)", n)
	}
	checkDelivered(t, second, recs[1000:])
	checkDelivered(t, added, recs)
}
