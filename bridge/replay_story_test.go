package bridge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A record dead-lettered by a running bridge and later replayed: with only
// its webhook-id, a support engineer finds the dead letter with a dry run,
// the trace it belongs to, and the replayed delivery, which the receiver
// gets under the same webhook-id and in the same trace.
func TestADeadLetteredRecordCanBeFollowedThroughItsReplay(t *testing.T) {
	recordSpans()
	var refuse atomic.Bool
	refuse.Store(true)
	type request struct{ id, traceparent, replay string }
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, request{r.Header.Get("webhook-id"), r.Header.Get("traceparent"), r.Header.Get("kafka-header-hookbridge-replay")})
		mu.Unlock()
		if refuse.Load() {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders", "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: cluster.ListenAddrs()},
		Admin: config.Admin{Listen: config.AdminOff},
		Routes: []config.Route{{Name: "orders-billing", Topics: []string{"orders"},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}},
			Retry:      config.Retry{MaxAttempts: 1},
			DeadLetter: config.DeadLetter{Topic: "orders.dlq"}}},
	}
	cfg.ApplyDefaults()
	logs := &syncBuffer{}
	run := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(logs, "json", "debug")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	for range 5 { // the record of the story is at offset 5
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Partition: 3, Value: []byte("before")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rec := &kgo.Record{Topic: "orders", Partition: 3, Key: []byte("order-1234"), Value: []byte("the order"),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-b7ad6b7169203331-01")}}}
	if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const id = "orders-3-5"
	// The dry run, filtered by the coordinates of the webhook-id, lists the
	// dead letter with its webhook-id and the trace it belongs to.
	var out strings.Builder
	replayer := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(logs, "json", "debug")})
	rctx, rcancel := context.WithTimeout(t.Context(), time.Minute) // a hang guard only
	defer rcancel()
	waitUntil(t, "6 dead letters", func() bool {
		out.Reset()
		rep, err := replayer.Replay(rctx, ReplayOptions{Route: "orders-billing", DryRun: true, Out: &out, Partition: -1, FromOffset: -1, ToOffset: -1})
		return err == nil && rep.Replayed == 6
	})
	out.Reset()
	if _, err := replayer.Replay(rctx, ReplayOptions{Route: "orders-billing", DryRun: true, Out: &out,
		Topic: "orders", Partition: 3, FromOffset: 5, ToOffset: 5}); err != nil {
		t.Fatal(err)
	}
	listing := out.String()
	for _, want := range []string{"webhook-id=" + id, "    " + dispatch.HeaderErrorOffset + ": 5", "    traceparent: 00-" + traceID + "-"} {
		if !strings.Contains(listing, want) {
			t.Errorf("dry-run listing has no %q:\n%s", want, listing)
		}
	}

	refuse.Store(false)
	rep, err := replayer.Replay(rctx, ReplayOptions{Route: "orders-billing", Topic: "orders", Partition: 3, FromOffset: 5, ToOffset: 5})
	if err != nil || rep.Delivered != 1 {
		t.Fatalf("replay: %+v, %v; want the record delivered", rep, err)
	}
	mu.Lock()
	var mine []request
	for _, r := range got {
		if r.id == id {
			mine = append(mine, r)
		}
	}
	mu.Unlock()
	if len(mine) != 2 || mine[1].replay != "1" {
		t.Fatalf("the receiver got %+v under %s, want the first delivery and the replay (hookbridge-replay 1)", mine, id)
	}
	for _, r := range mine {
		if !strings.HasPrefix(r.traceparent, "00-"+traceID+"-") {
			t.Errorf("delivery %+v is not in the record's trace %s", r, traceID)
		}
	}
	// Both process spans of the record, the first and the replay's, carry
	// its webhook-id.
	tid, _ := trace.TraceIDFromHex(traceID)
	processes := 0
	for _, s := range spansOf(tid) {
		if s.Name() != "process orders" {
			continue
		}
		for _, a := range s.Attributes() {
			if a.Key == telemetry.KeyMessagingMessageID && a.Value.AsString() == id {
				processes++
			}
		}
	}
	if processes != 2 {
		t.Errorf("%d process spans with %s=%s, want 2 (the delivery and its replay)", processes, telemetry.KeyMessagingMessageID, id)
	}
}

// The warning that a dead letter's coordinates are unusable names the
// record it is replayed as, record=<webhook-id>, as the replay's other lines
// about it (retrying, dead-lettered) do.
func TestReplayUnusableCoordinatesLineNamesTheRecord(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	logs := &syncBuffer{}
	rig.bridge = New(rig.bridge.cfg, Options{Version: "test", Logger: telemetry.NewLogger(logs, "json", "info")})
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Topic: replayDLQ, Value: []byte("no offset"), Headers: []kgo.RecordHeader{
		{Key: dispatch.HeaderErrorRoute, Value: []byte("orders-billing")},
		{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
		{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
	}}
	if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if rep := rig.replay(t); rep.Delivered != 1 {
		t.Fatalf("report %+v, want the record delivered", rep)
	}
	lines := logs.lines(t, "dlq replay: the record's original coordinates are unusable; it is replayed under its own")
	if want := fmt.Sprintf("%s-%d-%d", replayDLQ, r.Partition, r.Offset); len(lines) != 1 || lines[0]["record"] != want {
		t.Errorf("lines %v, want one with record=%s", lines, want)
	}
}
