package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A receiver that refuses every batch (400: a schema it no longer accepts) used to
// get a warning per batch, for as long as it did. The first is logged at
// once, the others as one line a window, and what is counted when the route
// stops is logged then.
func TestRefusedBatchLinesAreThrottled(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	var logs bytes.Buffer
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 3, MaxWait: config.Duration(time.Hour)}
		o.Logger = telemetry.NewLogger(&logs, "json", "info")
	})
	tg.refused.Every = time.Hour // no window ends during the test
	const batches = 20
	for b := range batches {
		recs := make([]*target.Record, 3)
		for i := range recs {
			recs[i] = &target.Record{Topic: "orders", Partition: int32(i), Offset: int64(b), Value: []byte("v")}
		}
		for i, err := range deliverAll(t, tg, recs) {
			if target.KindOf(err) != target.Permanent {
				t.Fatalf("batch %d, record %d: %v, want refused permanently", b, i, err)
			}
		}
	}
	refused := func() []map[string]any {
		var out []map[string]any
		for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			if strings.HasPrefix(m["msg"].(string), "webhook: a batch was refused as a whole") {
				out = append(out, m)
			}
		}
		return out
	}
	if got := refused(); len(got) != 1 {
		t.Fatalf("%d batches refused logged %d lines; want 1 until the window ends", batches, len(got))
	}
	if err := tg.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := refused()
	if len(got) != 2 || got[1]["repeated"] != float64(batches-1) || got[1]["route"] != "orders-billing" {
		t.Errorf("after Close: %v; want a second line with repeated %d", got, batches-1)
	}
}
