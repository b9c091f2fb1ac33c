package bridge

// dlq replay of a configuration with kafka.embedded: the dead letters are in
// the embedded broker of hookbridge run, not in a broker of the replay's own.

import (
	"slices"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// With kafka.embedded and kafka.brokers, the embedded broker of hookbridge
// run listens on the first broker's port (here the rig's broker stands in
// for it). The replay must read the dead letters there. Before, it started
// an embedded broker of its own on that port, and failed with "address
// already in use" while run ran.
func TestReplayOfEmbeddedReadsTheBrokerOfRun(t *testing.T) {
	rig := newReplayRig(t, 200, "oldest")
	rig.bridge.cfg.Kafka.Embedded = true
	rig.deadLetterOf(t, "orders-billing", "a", "b")

	rep := rig.replay(t)
	if got := rig.received(); rep.Delivered != 2 || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("receiver got %q, report %+v; want a and b delivered from the broker of run", got, rep)
	}
}

// Without kafka.brokers the embedded broker of run is on a random port the
// replay cannot know. Before, the replay started an empty broker of its own,
// read nothing and reported success.
func TestReplayOfEmbeddedWithoutBrokersIsRefused(t *testing.T) {
	cfg := &config.Config{
		Kafka: config.Kafka{Embedded: true},
		Routes: []config.Route{{Name: "orders-billing", Topics: []string{replaySource},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: "http://127.0.0.1/h"}},
			DeadLetter: config.DeadLetter{Topic: replayDLQ}}},
	}
	cfg.ApplyDefaults()
	_, err := ReplayRoute(cfg, "orders-billing")
	if err == nil || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Fatalf("ReplayRoute = %v; want an error that asks for kafka.brokers", err)
	}
}
