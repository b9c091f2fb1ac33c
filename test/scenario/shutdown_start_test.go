package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// slowStartPlugin is the plugin setting under which a process of the test
// plugin completes its handshake and never answers the health check: its
// start lasts until the start timeout (30 s), far past the signal.
const slowStartPlugin = "    env: {TESTPLUGIN_HEALTH_HANG: \"1\"}\n"

// SIGTERM while the bridge starts a route's plugin (its instances.min
// processes, before the route consumes): the shutdown the operator asked
// for is no failure, so the process exits 0, as a SIGTERM while it connects
// to Kafka does, and the process being started is stopped.
func TestSigtermWhileAPluginStartsExitsZero(t *testing.T) {
	sc := newPluginScenario(t, 1, 1, slowStartPlugin+"    instances: {min: 1, max: 1}\n", "")
	before := len(processesOf(sc.bin))
	p := testkit.LaunchBridge(t, bridgeBin, sc.cfg)
	waitFor(t, time.Minute, "the plugin process to start", func() bool {
		return len(processesOf(sc.bin)) > before && strings.Contains(p.Log(), "connecting to Kafka")
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM while a plugin started, want 0", code)
	}
	if !strings.Contains(p.Log(), "stopped cleanly") {
		t.Fatalf("the log does not say the bridge stopped cleanly:\n%s", testkit.Tail(p.Log(), 20))
	}
	if n := len(processesOf(sc.bin)); n != before {
		t.Fatalf("%d plugin processes run after the bridge exited, want %d", n, before)
	}
}

// SIGTERM while a call waits for a plugin process to start (a cold start
// from instances.min 0): the call was not sent, the drain ends at once, and
// the start is cut short, so the shutdown neither waits for the start
// timeout nor ends past its bound with exit 1: exit 0, nothing committed,
// and no plugin process left behind.
func TestSigtermDuringAPluginColdStartExitsZero(t *testing.T) {
	sc := newPluginScenario(t, 1, 1, slowStartPlugin+"    instances: {min: 0, max: 1}\n", "")
	before := len(processesOf(sc.bin))
	p := startBridge(t, sc.cfg)
	produceWithBehaviour(t, sc.b, sc.topic, keyed(1, 1), nil)
	waitFor(t, time.Minute, "the plugin process to start", func() bool { return len(processesOf(sc.bin)) > before })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM during a plugin's cold start, want 0:\n%s", code, testkit.Tail(p.Log(), 20))
	}
	if got := sc.b.Committed(t, sc.group, sc.topic, 1); got[0] > 0 {
		t.Fatalf("committed %v, though the record was never handled", got)
	}
	if n := len(processesOf(sc.bin)); n != before {
		t.Fatalf("%d plugin processes run after the bridge exited, want %d", n, before)
	}
}
