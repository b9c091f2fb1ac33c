package bridge

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A record left in place (here over --limit) stops the commit of its
// partition, also when another route's dead letters follow it: the replay
// group moves past those only while nothing before them was left, so the
// next replay still finds the record.
func TestReplayLeftRecordHoldsTheCommitPastAnotherRoutesDeadLetter(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "billing-1", "billing-2")
	rig.deadLetterOf(t, "orders-shipping", "shipping-1")

	rep := rig.replayWith(t, ReplayOptions{Route: "orders-billing", Limit: 1, Partition: -1, FromOffset: -1, ToOffset: -1})
	if rep.Replayed != 1 || rep.Skipped != 1 || rep.OtherRoute != 1 || rep.Committed[0] != 1 {
		t.Fatalf("report %+v, want 1 replayed, 1 left in place, 1 of another route, committed 1 (before billing-2)", rep)
	}
	rig.replayRoute(t, "orders-billing")
	if got := rig.received(); !slices.Equal(got, []string{"billing-1", "billing-2", "late"}) {
		t.Fatalf("receiver got %q, want billing-1, then billing-2 and late from the second replay", got)
	}
}

// A partition whose last offset holds no record (a transaction's commit
// marker) is committed to its end only when no record was left in place:
// with one left, the commit stays before it and the next replay delivers it.
func TestReplayLeftRecordHoldsTheCommitBeforeATransactionMarker(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterInTransaction(t, &kgo.Record{Key: []byte("x"), Value: []byte("a")}, &kgo.Record{Key: []byte("y"), Value: []byte("b")})
	if end := rig.endOffset(t); end != 3 {
		t.Fatalf("the dead-letter topic ends at %d, want 3 (two records and the commit marker)", end)
	}

	key := "x"
	rep := rig.replayWith(t, ReplayOptions{Route: "orders-billing", Key: &key, Partition: -1, FromOffset: -1, ToOffset: -1})
	if rep.Replayed != 1 || rep.Skipped != 1 || rep.Committed[0] != 1 {
		t.Fatalf("report %+v, want 1 replayed, 1 left in place, committed 1 (before b)", rep)
	}
	rig.replay(t)
	if got := rig.received(); !slices.Equal(got, []string{"a", "b", "late"}) {
		t.Fatalf("receiver got %q, want a, then b and late from the second replay", got)
	}
}

// A dry run lists a route's dead letters among another route's, and the
// records after them, commits nothing, and leaves every record for the
// replay that follows.
func TestDryRunAmongAnotherRoutesDeadLettersCommitsNothing(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "billing-1")
	rig.deadLetterOf(t, "orders-shipping", "shipping-1")
	rig.deadLetterOf(t, "orders-billing", "billing-2")

	var out strings.Builder
	rep := rig.replayWith(t, ReplayOptions{Route: "orders-billing", DryRun: true, Out: &out, Partition: -1, FromOffset: -1, ToOffset: -1})
	if rep.Replayed != 2 || rep.OtherRoute != 1 || len(rep.Committed) != 0 || len(rig.received()) != 0 {
		t.Fatalf("dry run: report %+v, receiver got %q; want 2 listed, 1 of another route, nothing committed or delivered", rep, rig.received())
	}
	rig.replayRoute(t, "orders-billing")
	if got := rig.received(); !slices.Equal(got, []string{"billing-1", "billing-2", "late"}) {
		t.Fatalf("receiver got %q, want billing-1, billing-2 and late from the replay after the dry run", got)
	}
}
