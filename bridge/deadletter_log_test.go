package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// loggedEvents returns the events of a route that logs JSON at info level
// into the buffer returned.
func loggedEvents(t *testing.T) (*routeEvents, *syncBuffer) {
	t.Helper()
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Shutdown(context.WithoutCancel(t.Context())) })
	logs := &syncBuffer{}
	return &routeEvents{log: telemetry.NewLogger(logs, "json", "info"), metrics: metrics.Route("orders-billing", "hookbridge.orders-billing", nil)}, logs
}

// A receiver that refuses every record (400 or 422 from a schema it no
// longer accepts) gets each one dead-lettered: at the
// receiver's pace, thousands a second. The route used to log a warning for
// each; it now logs the first at once and the others as one line a window,
// the last of them with how many it stands for. The metric and the span
// events still count every record.
func TestDeadLetteredLinesAreThrottled(t *testing.T) {
	t.Parallel()
	ev, logs := loggedEvents(t)
	ev.deadLetters.Every = time.Hour // no window ends during the test

	const n = 1000
	var last *target.Record
	for i := range n {
		rec, _ := producedRecord(int64(i))
		last = rec
		ev.DeadLettered(t.Context(), rec, &dispatch.Failure{Err: target.NewPermanent(fmt.Errorf("webhook: POST https://billing.example/hook: 422 Unprocessable Entity (%d)", i)), Attempts: 1})
	}
	if got := logs.lines(t, "dead-lettered"); len(got) != 1 {
		t.Fatalf("%d records dead-lettered logged %d lines; want 1 until the window ends", n, len(got))
	}
	ev.close() // the route stopped: what was counted is logged
	got := logs.lines(t, "dead-lettered")
	if len(got) != 2 {
		t.Fatalf("after close: %d lines, want 2", len(got))
	}
	if got[0]["record"] != "orders-2-0" || got[0]["repeated"] != nil {
		t.Errorf("first line = %v, want record orders-2-0 without repeated", got[0])
	}
	if got[1]["record"] != last.ID() || got[1]["repeated"] != float64(n-1) || got[1]["within"] != "1h0m0s" {
		t.Errorf("summary line = %v, want the last record, repeated %d", got[1], n-1)
	}

	// Once the route stopped, a late dead letter (a replay's last) is logged at once.
	rec, _ := producedRecord(n)
	ev.DeadLettered(t.Context(), rec, &dispatch.Failure{Err: target.NewPermanent(errors.New("refused")), Attempts: 1})
	if got := logs.lines(t, "dead-lettered"); len(got) != 3 || got[2]["record"] != rec.ID() {
		t.Errorf("after close, a dead letter logged %v", got)
	}
}

// The line of the dead letters counted in a window comes at its end, without
// waiting for the next dead letter or the route's end.
func TestDeadLetteredSummaryComesAtWindowEnd(t *testing.T) {
	t.Parallel()
	ev, logs := loggedEvents(t)
	ev.deadLetters.Every = 20 * time.Millisecond
	defer ev.close()
	for i := range 3 {
		rec, _ := producedRecord(int64(i))
		ev.DeadLettered(t.Context(), rec, &dispatch.Failure{Err: target.NewPermanent(errors.New("refused")), Attempts: 1})
	}
	for deadline := time.Now().Add(10 * time.Second); len(logs.lines(t, "dead-lettered")) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no summary line by the window's end: %v", logs.lines(t, "dead-lettered"))
		}
	}
	// Under -race (slow) a window may end between the three calls: what
	// matters is that every dead letter is logged or counted.
	total := 0
	for _, l := range logs.lines(t, "dead-lettered") {
		if r, ok := l["repeated"].(float64); ok {
			total += int(r)
		} else {
			total++
		}
	}
	if total > 3 {
		t.Errorf("lines stand for %d dead letters, want at most 3", total)
	}
}
