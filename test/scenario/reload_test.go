package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
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
	path := b.configRoutes(t, routeSpec{Name: "moving", Topic: topic, Group: g1, URL: first.url()})
	p := startBridge(t, path)

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
	valid := b.configRoutes(t,
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

// reloadConfig writes cfg over path, sends SIGHUP and waits for the reload's
// outcome to be logged (one more "reload" line than before).
func reloadConfig(t *testing.T, p *testkit.Bridge, path, cfg string) {
	t.Helper()
	before := strings.Count(p.Log(), "reload")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the reload's outcome", func() bool { return strings.Count(p.Log(), "reload") > before })
}

// pluginConfig is a config with one plugin, enrich (the bridge's own demo
// plugin; sha256, when not empty, is its expected checksum), and routes.
func (b *broker) pluginConfig(plugin, routes string) string {
	brokers, _ := json.Marshal(b.Addrs)
	return fmt.Sprintf(`kafka: {brokers: %s, session_timeout: 6s}
admin: {listen: %s}
shutdown_timeout: 5s
plugins:
  enrich: {command: [%q, demo-plugin]%s}
routes:
%s`, brokers, anyPort, bridgeBin, plugin, routes)
}

// A reload whose new configuration cannot start a route (here: a plugin
// whose process exits at once) leaves the old configuration in force: the
// route that was running runs again as it was and delivers, a route the new
// configuration added is not left behind half-started, and /readyz is 200.
func TestReloadThatCannotStartKeepsTheOldConfiguration(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	rcv := newReceiver(t, nil)
	route := func(target string) string {
		return fmt.Sprintf("  - name: moving\n    topics: [%s]\n    group: %s\n    target: %s\n", topic, group, target)
	}
	webhook := fmt.Sprintf("{webhook: {url: %q}}", rcv.url())
	path := writeConfig(t, b.pluginConfig("", route(webhook)))
	p := startBridge(t, path)
	recs := keyed(20, 2)
	b.produce(t, topic, recs[:10])
	waitFor(t, 30*time.Second, "the first deliveries", func() bool { return rcv.uniqueAccepted() >= 10 })

	added := fmt.Sprintf("  - name: added\n    topics: [%s]\n    group: %s-added\n    target: %s\n", topic, group, webhook)
	// A plugin whose process exits at once: its first process, which the
	// route waits for (instances.min), never starts.
	broken := strings.Replace(b.pluginConfig(", instances: {min: 1}", route("{plugin: enrich}")+added),
		fmt.Sprintf("%q, demo-plugin", bridgeBin), "/bin/false", 1)
	reloadConfig(t, p, path, broken)
	if !strings.Contains(p.Log(), "the old one stays in force") {
		t.Fatalf("the reload did not fall back to the old configuration:\n%s", testkit.Tail(p.Log(), 10))
	}
	b.produce(t, topic, recs[10:])
	waitFor(t, 30*time.Second, "the old route to deliver again", func() bool { return rcv.uniqueAccepted() >= 20 })
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { return p.Ready() == nil })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
}

// A route restarted by a reload while its target's breaker is open starts
// paused, as the routes that were running on that target are: it does not
// fetch during the outage until the breaker's next transition.
func TestReloadedRouteStartsPausedWhileItsBreakerIsOpen(t *testing.T) {
	b := newBroker(t)
	ta, tb := topicName(t, "a"), topicName(t, "b")
	b.CreateTopic(t, ta, 2)
	b.CreateTopic(t, tb, 2)
	down := newReceiver(t, func(delivery, int) int { return 503 })
	breaker := "    breaker: {consecutive_failures: 2, open_timeout: 120s, min_requests: 1000}\n"
	specA := routeSpec{Name: "a", Topic: ta, Group: topicName(t, "ga"), URL: down.url(), MaxAttempts: 50, Extra: breaker}
	specB := routeSpec{Name: "b", Topic: tb, Group: topicName(t, "gb"), URL: down.url(), MaxAttempts: 50, Extra: breaker}
	path := b.configRoutes(t, specA, specB)
	p := startBridge(t, path)
	b.produce(t, ta, keyed(20, 4))
	b.produce(t, tb, keyed(20, 4))
	waitFor(t, 30*time.Second, "the breaker to open", func() bool { return metricSum(t, p.Admin(), "hookbridge_breaker_state") == 2 })
	pausedB := func() float64 { return testkit.MetricValue(p.Admin(), "hookbridge_partitions_paused", `route="b"`) }
	waitFor(t, 30*time.Second, "route b to pause", func() bool { return pausedB() == 2 })

	specB.Concurrency = 8
	data, err := os.ReadFile(b.configRoutes(t, specA, specB))
	if err != nil {
		t.Fatal(err)
	}
	reloadConfig(t, p, path, string(data))
	b.produce(t, tb, keyed(20, 4))
	waitFor(t, 30*time.Second, "restarted route b to be paused", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_breaker_state") == 2 && pausedB() == 2
	})
}

// A reload that leaves a plugin used by no route stops its processes and
// removes its series from /metrics, as a restart with that file would have
// none (a pool exists only for a plugin some route uses).
func TestReloadStopsAPluginNoRouteUses(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	rcv := newReceiver(t, nil)
	min2 := ", instances: {min: 2, max: 2}"
	path := writeConfig(t, b.pluginConfig(min2,
		fmt.Sprintf("  - name: enrich\n    topics: [%s]\n    group: %s\n    target: {plugin: enrich}\n", topic, group)))
	p := startBridge(t, path)
	waitFor(t, 30*time.Second, "two plugin processes", func() bool { return metricSum(t, p.Admin(), "hookbridge_plugin_instances") == 2 })

	reloadConfig(t, p, path, b.pluginConfig(min2,
		fmt.Sprintf("  - name: web\n    topics: [%s]\n    group: %s-web\n    target: {webhook: {url: %q}}\n", topic, group, rcv.url())))
	waitFor(t, 30*time.Second, "the plugin's series to go", func() bool {
		return !strings.Contains(testkit.Metrics(p.Admin()), `plugin="enrich"`)
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
