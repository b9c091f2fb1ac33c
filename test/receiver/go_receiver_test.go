package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/sdk/webhook"
	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// goReceiver is an sdk/webhook Handler behind an httptest server that keeps
// every Delivery it handled and counts every answer by status.
type goReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	handled  map[string]*webhook.Delivery
	order    []string // ids in the order they were handled
	statuses map[int]int
	dups     int
	failOnce map[string]bool // ids to fail on their first delivery
	failed   map[string]int
	// requests answered 500 in which every record handled failed on
	// purpose: the Handler answers a batch that handled nothing so
	// (sdk/webhook), and the bridge sends its records again
	allFailed int
}

// tally counts, per request, the records Func handled and failed on purpose.
type tally struct{ handled, failed int }

type tallyKey struct{}

func newGoReceiver(t *testing.T) *goReceiver {
	t.Helper()
	v, err := webhook.NewVerifier([]string{newSecret})
	if err != nil {
		t.Fatal(err)
	}
	r := &goReceiver{handled: map[string]*webhook.Delivery{}, statuses: map[int]int{},
		failOnce: map[string]bool{}, failed: map[string]int{}}
	h := &webhook.Handler{
		Verifier: v,
		Store:    webhook.NewMemoryStore(0, 0),
		Func: func(ctx context.Context, d *webhook.Delivery) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			tl, _ := ctx.Value(tallyKey{}).(*tally)
			if r.failOnce[d.ID] && r.failed[d.ID] == 0 {
				r.failed[d.ID]++
				if tl != nil {
					tl.failed++
				}
				return errors.New("failing once on purpose")
			}
			if tl != nil {
				tl.handled++
			}
			r.handled[d.ID] = d
			r.order = append(r.order, d.ID)
			return nil
		},
		Duplicate: func(ctx context.Context, d *webhook.Delivery) {
			r.mu.Lock()
			r.dups++
			r.mu.Unlock()
		},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		tl := &tally{}
		h.ServeHTTP(sw, req.WithContext(context.WithValue(req.Context(), tallyKey{}, tl)))
		r.mu.Lock()
		r.statuses[sw.status]++
		if sw.status == http.StatusInternalServerError && tl.handled == 0 && tl.failed > 0 {
			r.allFailed++
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// requests counts the answers, the caller holding r.mu.
func (r *goReceiver) requests() int {
	n := 0
	for _, c := range r.statuses {
		n += c
	}
	return n
}

func (r *goReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handled)
}

// goRecords makes n keyed JSON records over keys text keys, plus the
// special ones: a non-UTF-8 key, a null key, an empty key, a binary value
// with a binary header, a record that is a CloudEvent. Sequence numbers
// count per key.
func goRecords(n, keys int) []testkit.Message {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	hdr := func(kv ...string) []sarama.RecordHeader {
		var out []sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	seq := map[string]int{}
	val := func(key string) []byte {
		b, _ := json.Marshal(map[string]any{"key": key, "seq": seq[key]})
		seq[key]++
		return b
	}
	var out []testkit.Message
	for i := range n {
		k := "k" + strconv.Itoa(i%keys)
		out = append(out, testkit.Message{Key: []byte(k), Value: val(k), Timestamp: ts,
			Headers: hdr("content-type", "application/json", "tenant", "acme")})
		switch i % 50 {
		case 10:
			bin := string([]byte{0xff, 0xfe, 0x00, 'x'})
			out = append(out, testkit.Message{Key: []byte(bin), Value: val(bin), Timestamp: ts,
				Headers: hdr("content-type", "application/json")})
		case 20:
			out = append(out, testkit.Message{Key: nil, Value: val(""), Timestamp: ts,
				Headers: hdr("content-type", "application/json")})
		case 30:
			out = append(out, testkit.Message{Key: []byte{}, Value: []byte{0, 1, 0xfe, 0xff}, Timestamp: ts,
				Headers: []sarama.RecordHeader{{Key: []byte("blob"), Value: []byte{0xca, 0xfe, 0x00}}}})
		case 40:
			out = append(out, testkit.Message{Key: []byte("evt"), Value: []byte("event body"), Timestamp: ts,
				Headers: hdr("content-type", "text/plain", "ce_specversion", "1.0", "ce_id", "evt-"+strconv.Itoa(i),
					"ce_source", "/shop", "ce_type", "shop.order")})
		}
	}
	return out
}

// checkGoDeliveries asserts that every produced record was handled once
// with its coordinates, key, value and, in single-record mode, headers, and
// that records of one key were handled in offset order.
func checkGoDeliveries(t *testing.T, r *goReceiver, produced []testkit.Produced, batch bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.handled) != len(produced) {
		t.Fatalf("%d records handled, %d produced", len(r.handled), len(produced))
	}
	for _, p := range produced {
		d := r.handled[p.ID()]
		if d == nil {
			t.Fatalf("%s was never handled", p.ID())
		}
		if d.Topic != p.Topic || d.Partition != p.Partition || d.Offset != p.Offset {
			t.Fatalf("%s: decoded coordinates %s/%d/%d", p.ID(), d.Topic, d.Partition, d.Offset)
		}
		checkKey(t, p.ID(), d.Key, p.Key)
		ce, isEvent := "", false
		for _, h := range p.Headers {
			if string(h.Key) == "content-type" {
				ce = string(h.Value)
			}
			if string(h.Key) == "ce_id" {
				isEvent = true
				if d.CloudEvent.ID != string(h.Value) || d.CloudEvent.Source != "/shop" {
					t.Errorf("%s: CloudEvent %+v", p.ID(), d.CloudEvent)
				}
			}
		}
		if !isEvent && (d.CloudEvent.ID != p.ID() || !d.CloudEvent.Time.Equal(p.Timestamp)) {
			t.Errorf("%s: CloudEvent %+v, want id %s time %s", p.ID(), d.CloudEvent, p.ID(), p.Timestamp)
		}
		if batch {
			if d.BatchID == "" || d.ContentType != ce {
				t.Errorf("%s: batch id %q, content type %q", p.ID(), d.BatchID, d.ContentType)
			}
		} else {
			if ce == "" {
				ce = "application/octet-stream"
			}
			if d.ContentType != ce {
				t.Errorf("%s: content type %q, want %q", p.ID(), d.ContentType, ce)
			}
			for _, h := range p.Headers {
				k := string(h.Key)
				if k == "content-type" || len(k) > 3 && k[:3] == "ce_" {
					continue
				}
				if v, ok := d.Header(k); !ok || !bytes.Equal(v, h.Value) {
					t.Errorf("%s: header %s = %q, want %q", p.ID(), k, v, h.Value)
				}
			}
		}
		if !bytes.Equal(d.Body, p.Value) {
			t.Errorf("%s: body %q, want %q", p.ID(), d.Body, p.Value)
		}
	}
	// Per key (and partition), first handling in offset order.
	last := map[string]int64{}
	for _, id := range r.order {
		d := r.handled[id]
		lane := fmt.Sprintf("%d/%x/%v", d.Partition, d.Key, d.Key == nil)
		if prev, ok := last[lane]; ok && d.Offset <= prev {
			t.Fatalf("key %q partition %d: offset %d handled after %d", d.Key, d.Partition, d.Offset, prev)
		}
		last[lane] = d.Offset
	}
}

// The hookbridge binary delivers over Kafka to an sdk/webhook Handler, one
// record per request and in batches; everything verifies (the bridge signs
// with two secrets, the receiver holds one) and decodes to what was
// produced.
func TestGoReceiver(t *testing.T) {
	b := testkit.NewBroker(t)
	single, batched := testkit.TopicName(t, "single"), testkit.TopicName(t, "batch")
	b.CreateTopic(t, single, 3)
	b.CreateTopic(t, batched, 3)
	rs, rb := newGoReceiver(t), newGoReceiver(t)

	msgs := goRecords(300, 20)
	producedSingle := b.Produce(t, single, msgs)
	producedBatch := b.Produce(t, batched, msgs)
	// The batch receiver fails some records once: they are answered as
	// failed in the batch and delivered again.
	rb.mu.Lock()
	for i, p := range producedBatch {
		if i%9 == 4 {
			rb.failOnce[p.ID()] = true
		}
	}
	rb.mu.Unlock()

	route := func(name, topic, url, extra string) string {
		return fmt.Sprintf(`  - name: %s
    topics: [%s]
    group: %s
    ordering: key
    concurrency: 32
    target:
      webhook:
        url: %s
        timeout: 5s
        signing_secrets: [%q, %q]
%s    retry: {max_attempts: 20, initial_backoff: 10ms, max_backoff: 200ms}
`, name, topic, testkit.TopicName(t, "g-"+name), url, oldSecret, newSecret, extra)
	}
	cfg := b.Config(t, route("single", single, rs.srv.URL+"/hook", "")+
		route("batch", batched, rb.srv.URL+"/hook", "        batch: {max_messages: 20, max_wait: 20ms}\n"))
	p := testkit.StartBridge(t, bridgeBin, cfg)
	testkit.WaitFor(t, 2*time.Minute, "every record handled", func() bool {
		return rs.count() >= len(msgs) && rb.count() >= len(msgs)
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
	rs.srv.Close() // waits for every request's handler, and so its status count
	rb.srv.Close()

	t.Run("single", func(t *testing.T) {
		checkGoDeliveries(t, rs, producedSingle, false)
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.statuses[http.StatusNoContent] != len(msgs)+rs.dups || len(rs.statuses) != 1 {
			t.Fatalf("answers %v for %d records (%d duplicates): every request should verify", rs.statuses, len(msgs), rs.dups)
		}
	})
	t.Run("batch", func(t *testing.T) {
		checkGoDeliveries(t, rb, producedBatch, true)
		rb.mu.Lock()
		defer rb.mu.Unlock()
		// 200, or 500 for a batch whose every record failed on purpose
		// (one that handled nothing: a retried batch of failed records, say).
		ok, all := rb.statuses[http.StatusOK], rb.statuses[http.StatusOK]+rb.statuses[http.StatusInternalServerError]
		if ok == 0 || all != rb.requests() || rb.statuses[http.StatusInternalServerError] != rb.allFailed {
			t.Fatalf("answers %v (%d of the 500s for batches that failed on purpose): every batch should verify and be answered 200, "+
				"or 500 when it handled nothing", rb.statuses, rb.allFailed)
		}
		if len(rb.failed) != len(rb.failOnce) {
			t.Fatalf("%d records failed once, want %d", len(rb.failed), len(rb.failOnce))
		}
		if n := rb.statuses[http.StatusOK]; n >= len(msgs) {
			t.Fatalf("%d batch requests for %d records: not batching", n, len(msgs))
		}
		t.Logf("%d records in %d batch requests", len(msgs), rb.statuses[http.StatusOK])
	})
}
