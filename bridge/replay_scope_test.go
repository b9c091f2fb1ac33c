package bridge

// `hookbridge dlq replay` (Bridge.Replay) against kfake over TCP: where it
// stops when a transaction is open on the dead-letter topic, the dead
// letters of a route renamed with its group kept, and the topics it needs.
// Each of these tests failed before its fix.

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
)

// replayAll runs Bridge.Replay of route orders-billing, every record, and
// fails the test on an error.
func (rig *replayRig) replayAll(t *testing.T) *ReplayReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard only
	defer cancel()
	rep, err := rig.bridge.Replay(ctx, ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return rep
}

// A producer other than Hookbridge writes to the dead-letter topic in a
// transaction that is still open when a replay starts. The replay reads
// committed records only, so it cannot see that transaction's records yet:
// it stops before them and leaves them for the next replay, which delivers
// them once the transaction committed. Before, the replay ended at the end
// of the log, found no record it could read before it, and committed past
// the open transaction: its records were never replayed.
func TestReplayStopsBeforeAnOpenTransaction(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "before")
	txn, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...), kgo.TransactionalID("dlq-writer"),
		kgo.DefaultProduceTopic(replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(t.Context(), kgo.StringRecord("in-txn")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rep := rig.replayAll(t)
	if got := rig.received(); !slices.Equal(got, []string{"before"}) || rep.Committed[0] != 1 {
		t.Fatalf("with the transaction open the receiver got %q, report %+v; want [before], committed 1 "+
			"(the transaction's record is not readable yet)", got, rep)
	}

	if err := txn.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	rep = rig.replayAll(t)
	// The record, then the commit marker: the log ends at 3.
	if got := rig.received(); !slices.Equal(got, []string{"before", "in-txn"}) || rep.Delivered != 1 || rep.Committed[0] != 3 {
		t.Fatalf("after the commit the receiver got %q, report %+v; want [before in-txn], the second replay "+
			"delivering in-txn and committing 3", got, rep)
	}
}

// A route renamed with its group kept (docs/operations.md: "Keep the group
// when renaming a route") replays the dead letters it wrote under its old
// name: their hookbridge-error-group is its group. Before, they counted as
// another route's and the replay group committed past them; and as that
// replay group is the one a route of the old name with the same group would
// use, no replay could ever deliver them. A dead letter of another group
// stays another route's.
func TestReplayTakesTheDeadLettersOfARouteRenamedWithItsGroup(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...), kgo.DefaultProduceTopic(replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, dl := range []struct{ value, route, group string }{
		{"renamed", "billing-old", "hookbridge.orders-billing"},
		{"other", "shipping-old", "hookbridge.orders-shipping"},
		{"own", "orders-billing", "hookbridge.orders-billing"},
	} {
		r := &kgo.Record{Value: []byte(dl.value), Headers: []kgo.RecordHeader{
			{Key: dispatch.HeaderErrorRoute, Value: []byte(dl.route)},
			{Key: dispatch.HeaderErrorGroup, Value: []byte(dl.group)},
			{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
			{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
			{Key: dispatch.HeaderErrorOffset, Value: []byte{byte('0' + i)}},
		}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	rep := rig.replayAll(t)
	if got := rig.received(); !slices.Equal(got, []string{"renamed", "own"}) {
		t.Fatalf("the receiver got %q, report %+v; want [renamed own]", got, rep)
	}
	if rep.Replayed != 2 || rep.Delivered != 2 || rep.OtherRoute != 1 || rep.Committed[0] != 3 {
		t.Fatalf("report %+v, want 2 replayed and delivered, 1 of another route, committed 3", rep)
	}
}

// A replay needs the topics of its own route, not those of every route of
// the configuration: another route's reply topic that does not exist does
// not stop it (before, it exited with "topic(s) [...] do not exist").
func TestReplayNeedsOnlyItsOwnRoutesTopics(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.bridge.cfg.Routes[1].Reply.Topic = "shipping.replies" // orders-shipping's; never created
	rig.deadLetterOf(t, "orders-billing", "a")

	rep := rig.replayAll(t)
	if got := rig.received(); !slices.Equal(got, []string{"a"}) || rep.Delivered != 1 {
		t.Fatalf("the receiver got %q, report %+v; want [a] delivered", got, rep)
	}
}
