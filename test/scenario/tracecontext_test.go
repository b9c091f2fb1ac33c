package scenario

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// With no exporter configured (the default), the bridge's spans record
// nothing, but the trace context still flows: the receiver's traceparent
// continues the producer's trace under a span of the bridge's own, keeps the
// producer's sampling decision, and a record without trace context starts a
// sampled trace of its own.
func TestTraceContextReachesReceiverWithoutExporter(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	var mu sync.Mutex
	got := map[string]string{} // webhook-id -> traceparent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")] = r.Header.Get("traceparent")
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: srv.URL}))

	const (
		sampledTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		unsampledTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
		producerSpan   = "00f067aa0ba902b7"
	)
	tp := func(v string) []sarama.RecordHeader {
		return []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte(v)}}
	}
	produced := b.Produce(t, topic, []testkit.Message{
		{Value: []byte("sampled"), Headers: tp("00-" + sampledTrace + "-" + producerSpan + "-01")},
		{Value: []byte("unsampled"), Headers: tp("00-" + unsampledTrace + "-" + producerSpan + "-00")},
		{Value: []byte("no context")},
	})
	testkit.WaitFor(t, time.Minute, "three deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	parse := func(id string) (trace, span, flags string) {
		mu.Lock()
		defer mu.Unlock()
		parts := strings.Split(got[id], "-")
		if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
			t.Fatalf("%s: traceparent %q", id, got[id])
		}
		return parts[1], parts[2], parts[3]
	}
	for i, want := range []struct{ trace, flags string }{{sampledTrace, "01"}, {unsampledTrace, "00"}, {"", "01"}} {
		trace, span, flags := parse(produced[i].ID())
		if want.trace != "" && trace != want.trace {
			t.Errorf("record %d: trace %s, want the producer's %s", i, trace, want.trace)
		}
		if want.trace == "" && (trace == sampledTrace || trace == unsampledTrace || trace == strings.Repeat("0", 32)) {
			t.Errorf("record %d without trace context: trace %s, want a new one", i, trace)
		}
		if span == producerSpan || span == strings.Repeat("0", 16) {
			t.Errorf("record %d: parent span %s, want a span of the bridge", i, span)
		}
		if flags != want.flags {
			t.Errorf("record %d: flags %s, want %s", i, flags, want.flags)
		}
	}
}
