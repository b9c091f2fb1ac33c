package bridge

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// yieldingWriter is a terminal: each write is whole, and other goroutines
// may run between two writes.
type yieldingWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *yieldingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, err := w.buf.Write(p)
	w.mu.Unlock()
	goruntime.Gosched()
	return n, err
}

// The dry run lists the partitions of the dead-letter topic at once; each
// record's header lines follow its own line. They were written line by
// line from every partition at once, so a record's error headers could be
// listed under another record.
func TestDryRunListsEachRecordWithItsOwnHeaders(t *testing.T) {
	const parts, each = 3, 60
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, replaySource, replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for p := range int32(parts) {
		var recs []*kgo.Record
		for i := range each {
			off := strconv.Itoa(i)
			recs = append(recs, &kgo.Record{Topic: replayDLQ, Partition: p, Key: fmt.Appendf(nil, "p%d-o%d", p, i), Value: []byte("v"),
				Headers: []kgo.RecordHeader{
					{Key: dispatch.HeaderErrorRoute, Value: []byte("orders-billing")},
					{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
					{Key: dispatch.HeaderErrorPartition, Value: []byte(strconv.Itoa(int(p)))},
					{Key: dispatch.HeaderErrorOffset, Value: []byte(off)},
				}})
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: addrs},
		Routes: []config.Route{{Name: "orders-billing", Topics: []string{replaySource},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: "http://127.0.0.1:1/never"}},
			DeadLetter: config.DeadLetter{Topic: replayDLQ}}},
	}
	cfg.ApplyDefaults()
	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(io.Discard, "json", "info")})

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hang guard only
	defer cancel()
	var out yieldingWriter
	rep, err := b.Replay(ctx, ReplayOptions{Route: "orders-billing", DryRun: true, Out: &out, Partition: -1, FromOffset: -1, ToOffset: -1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != parts*each {
		t.Fatalf("report %+v, want %d listed", rep, parts*each)
	}
	// Each block: the record's line, then its four headers, sorted.
	lines := strings.Split(strings.TrimSuffix(out.buf.String(), "\n"), "\n")
	if len(lines) != parts*each*5 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), parts*each*5, out.buf.String())
	}
	for i := 0; i < len(lines); i += 5 {
		var dp, p, o int
		if _, err := fmt.Sscanf(lines[i], replayDLQ+"/%d@", &dp); err != nil {
			t.Fatalf("line %d %q: not a record's line", i, lines[i])
		}
		if _, err := fmt.Sscanf(lines[i][strings.Index(lines[i], "key="):], `key="p%d-o%d"`, &p, &o); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		want := []string{
			fmt.Sprintf("    %s: %d", dispatch.HeaderErrorOffset, o),
			fmt.Sprintf("    %s: %d", dispatch.HeaderErrorPartition, p),
			"    " + dispatch.HeaderErrorRoute + ": orders-billing",
			"    " + dispatch.HeaderErrorTopic + ": " + replaySource,
		}
		if got := lines[i+1 : i+5]; dp != p || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("record %q is listed with\n%s\nwant\n%s", lines[i], strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
