package bridge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordLines returns every log line that is about a record: one that names
// a record under "record", or by an "offset" or "id" of its own.
func (b *syncBuffer) recordLines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		_, rec := m["record"]
		_, off := m["offset"]
		_, id := m["id"]
		if rec || off && m["topic"] == "orders" || id {
			out = append(out, m)
		}
	}
	return out
}

// A support engineer with nothing but a webhook-id greps the log for it. A
// record that was retried, could not be dead-lettered for a while (its
// partition stuck) and was then dead-lettered must show its whole story
// under one key, "record", with one trace_id. The stuck and unstuck lines
// named it by topic, partition and offset only, so a search for
// record=orders-3-1234 missed the very lines that say why its partition
// stopped.
func TestEveryLogLineOfARecordNamesItTheSameWay(t *testing.T) {
	var refuse atomic.Int32
	refuse.Store(1)
	rig := newAccountingRig(t, countingReceiver(func(w http.ResponseWriter, body string, n int) {
		switch {
		case body != "bad-1":
			w.WriteHeader(http.StatusNoContent)
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // retried
		default:
			w.WriteHeader(http.StatusUnprocessableEntity) // dead-lettered
		}
	}), refuseDeadLetters(&refuse), nil)
	recordSpans()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	rec := &kgo.Record{Topic: "orders", Key: []byte("ka"), Value: []byte("bad-1"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-00f067aa0ba902b7-01")}}}
	rig.produce(t, rec)
	id := fmt.Sprintf("orders-%d-%d", rec.Partition, rec.Offset)
	waitUntil(t, "the partition to be stuck", func() bool { return rig.sum(t, "hookbridge_partitions_stuck") == 1 })
	refuse.Store(0)
	waitUntil(t, "the record dead-lettered", func() bool {
		return rig.sum(t, "hookbridge_records_dead_lettered_total") == 1 && rig.sum(t, "hookbridge_partitions_stuck") == 0
	})
	waitUntil(t, "the unstuck line", func() bool { return len(rig.logs.lines(t, "stuck record moved on")) == 1 })

	lines := rig.logs.recordLines(t)
	seen := map[string]bool{}
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		seen[msg] = true
		if l["record"] != id {
			t.Errorf("line %q names the record as %v, want record=%s: %v", msg, l["record"], id, l)
		}
		if l["trace_id"] != traceID {
			t.Errorf("line %q has trace_id %v, want the record's %s: %v", msg, l["trace_id"], traceID, l)
		}
	}
	for _, want := range []string{"retrying", "record cannot reach a terminal outcome; its partition will not commit past it",
		"stuck record moved on", "dead-lettered"} {
		if !seen[want] {
			t.Errorf("no %q line about the record; lines: %v", want, lines)
		}
	}
}
