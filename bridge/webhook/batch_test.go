package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/signing"
	"github.com/hookbridge/hookbridge/bridge/target"
)

type batchEventIn struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
	Topic           string          `json:"topic"`
	Partition       int32           `json:"partition"`
	Offset          int64           `json:"offset"`
	Key             *string         `json:"key"`
	KeyEncoding     string          `json:"keyencoding"`
	Tenant          string          `json:"tenant"`
}

func batchTarget(t *testing.T, url string, max int, secret string) *Target {
	t.Helper()
	return newTarget(t, url, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: max, MaxWait: config.Duration(50 * time.Millisecond)}
		if secret != "" {
			o.Config.SigningSecrets = []string{secret}
		}
	})
}

// deliverBatch delivers recs concurrently through tg, fails the test if one
// is not delivered, and returns the events of the next request reqs saw.
func deliverBatch(t *testing.T, tg *Target, reqs <-chan request, recs []*target.Record) []batchEventIn {
	t.Helper()
	for i, err := range deliverAll(t, tg, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	var evs []batchEventIn
	if err := json.Unmarshal(next(t, reqs).body, &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// deliverAll delivers recs concurrently and returns each outcome.
func deliverAll(t *testing.T, tg *Target, recs []*target.Record) []error {
	t.Helper()
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Go(func() { _, errs[i] = deliver(t, t.Context(), tg, r) })
	}
	wg.Wait()
	return errs
}

func TestBatchBodyAndSignature(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	srv, reqs := receiver(t, nil)
	tg := batchTarget(t, srv.URL, 3, secret)
	recs := []*target.Record{
		{Topic: "orders", Partition: 1, Offset: 7, Key: []byte("k1"), Value: []byte(`{"a":1}`),
			Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}},
		{Topic: "orders", Partition: 2, Offset: 9, Key: []byte{0xff, 0x00}, Value: []byte{0x01, 0x02}},
		{Topic: "orders", Partition: 2, Offset: 10, Value: []byte("plain"),
			Headers: []target.Header{{Key: "ce_tenant", Value: []byte("acme")}, {Key: "ce_id", Value: []byte("evt-1")}}},
	}
	for i, err := range deliverAll(t, tg, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	req := next(t, reqs)
	if ct := req.header.Get("Content-Type"); ct != BatchContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	key, _ := signing.ParseSecret(secret)
	if err := signing.Verify([][]byte{key}, req.header.Get(HeaderWebhookID), req.header.Get(HeaderWebhookTimestamp),
		req.header.Get(HeaderWebhookSignature), req.body, fixedNow, time.Minute); err != nil {
		t.Fatalf("batch signature: %v", err)
	}
	if req.header.Get(HeaderBatchSize) != "3" {
		t.Fatalf("batch size header %q", req.header.Get(HeaderBatchSize))
	}
	var evs []batchEventIn
	if err := json.Unmarshal(req.body, &evs); err != nil {
		t.Fatalf("body is not a JSON array: %v\n%s", err, req.body)
	}
	byOffset := map[int64]batchEventIn{}
	for _, e := range evs {
		byOffset[e.Offset] = e
	}
	e := byOffset[7]
	if e.ID != "orders-1-7" || string(e.Data) != `{"a":1}` || e.Key == nil || *e.Key != "k1" || e.Partition != 1 ||
		e.SpecVersion != "1.0" || e.Source != "/kafka/orders" || e.Type != CEType || e.Topic != "orders" {
		t.Fatalf("event 7: %+v", e)
	}
	e = byOffset[9]
	if e.DataBase64 != base64.StdEncoding.EncodeToString([]byte{1, 2}) || e.KeyEncoding != "base64" ||
		*e.Key != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) {
		t.Fatalf("event 9: %+v", e)
	}
	e = byOffset[10]
	if e.ID != "evt-1" || e.Tenant != "acme" || e.Key != nil || e.DataBase64 != base64.StdEncoding.EncodeToString([]byte("plain")) {
		t.Fatalf("event 10: %+v", e)
	}
}

// A 2xx answer naming failed ids fails only those records.
func TestBatchPartialFailure(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"failed":["orders-0-1","orders-0-3"]}`)
	})
	tg := batchTarget(t, srv.URL, 4, "")
	var recs []*target.Record
	for i := range 4 {
		recs = append(recs, &target.Record{Topic: "orders", Offset: int64(i), Value: []byte(strconv.Itoa(i))})
	}
	errs := deliverAll(t, tg, recs)
	for i, err := range errs {
		if i == 1 || i == 3 {
			wantKind(t, err, target.Retryable, 200)
		} else if err != nil {
			t.Fatalf("record %d failed: %v", i, err)
		}
	}
}

// A non-2xx answer applies to every record of the batch, by its class (a
// permanent one once each record was refused alone too).
func TestBatchWholeFailure(t *testing.T) {
	for status, kind := range map[int]target.Kind{503: target.Retryable, 400: target.Permanent, 410: target.Gone} {
		srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
		tg := batchTarget(t, srv.URL, 2, "")
		errs := deliverAll(t, tg, []*target.Record{record(), {Topic: "orders", Offset: 43}})
		for _, err := range errs {
			wantKind(t, err, kind, status)
		}
	}
}

// max_wait flushes a batch that never fills.
func TestBatchFlushesAfterMaxWait(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := batchTarget(t, srv.URL, 100, "")
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get(HeaderBatchSize); got != "1" {
		t.Fatalf("batch of %s, want 1", got)
	}
}

// max_bytes bounds the request body: two records whose events fill it
// exactly go together, the next one waits for another batch, and a record
// whose event alone is over the limit goes by itself.
func TestBatchMaxBytes(t *testing.T) {
	big := make([]byte, 900) // 1,200 bytes as base64
	rec := func(i int) *target.Record { return &target.Record{Topic: "orders", Offset: int64(i), Value: big} }
	size := len(appendEvent(nil, toBatchEvent(rec(0)))) + 1
	if size < len(big)*4/3 {
		t.Fatalf("an event of %d bytes for a value of %d", size, len(big))
	}
	srv, reqs := receiver(t, nil)
	limit := 1 + 2*size
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 100, MaxBytes: config.ByteSize(limit), MaxWait: config.Duration(100 * time.Millisecond)}
	})
	errs := make(chan error, 5)
	for i := range 4 {
		go func() { _, err := deliver(t, t.Context(), tg, rec(i)); errs <- err }()
	}
	for range 2 {
		req := next(t, reqs)
		if n := req.header.Get(HeaderBatchSize); n != "2" || len(req.body) != limit {
			t.Fatalf("batch of %s records, %d bytes; want 2 records, %d bytes", n, len(req.body), limit)
		}
	}
	huge := &target.Record{Topic: "orders", Offset: 9, Value: make([]byte, limit)}
	go func() { _, err := deliver(t, t.Context(), tg, huge); errs <- err }()
	if req := next(t, reqs); req.header.Get(HeaderBatchSize) != "1" || len(req.body) <= limit {
		t.Fatalf("a record over max_bytes went in a batch of %s, %d bytes", req.header.Get(HeaderBatchSize), len(req.body))
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Binary values that grow by a third as base64 do not push a request past
// max_bytes (an estimate from the raw value sizes did: three 300 KiB
// records made a 1.2 MB request under the default 1 MiB).
func TestBatchMaxBytesCountsBase64(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 100, MaxWait: config.Duration(50 * time.Millisecond)}
	})
	var recs []*target.Record
	for i := range 3 {
		recs = append(recs, &target.Record{Topic: "orders", Offset: int64(i), Value: make([]byte, 300<<10)})
	}
	for i, err := range deliverAll(t, tg, recs) {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	for got := 0; got < len(recs); {
		req := next(t, reqs)
		if len(req.body) > 1<<20 {
			t.Fatalf("a request of %d bytes, max_bytes is 1 MiB", len(req.body))
		}
		n, _ := strconv.Atoi(req.header.Get(HeaderBatchSize))
		got += n
	}
}

func TestBatchRefusesReplyCapture(t *testing.T) {
	_, err := New(Options{Route: "r", CaptureReply: true,
		Config: config.Webhook{URL: "http://h/", Batch: config.Batch{MaxMessages: 5}}})
	if err == nil {
		t.Fatal("batch mode with a reply topic was accepted")
	}
}

// A receiver may name a record that carried its own ce_id by that id, as
// it read it from the body: the attribute's header name in any case, and a
// value that was not UTF-8 after its bytes became U+FFFD in the JSON.
func TestBatchFailedByCloudEventID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var evs []batchEventIn
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &evs); err != nil {
			t.Errorf("batch body: %v", err)
		}
		var failed []string
		for _, ev := range evs {
			if ev.Offset != 4 {
				failed = append(failed, ev.ID)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string][]string{"failed": failed})
	}))
	t.Cleanup(srv.Close)
	tg := batchTarget(t, srv.URL, 4, "")
	errs := deliverAll(t, tg, []*target.Record{
		{Topic: "orders", Offset: 1, Value: []byte("a"), Headers: []target.Header{{Key: "ce_id", Value: []byte("evt-7")}}},
		{Topic: "orders", Offset: 2, Value: []byte("b"), Headers: []target.Header{{Key: "CE_ID", Value: []byte("evt-8")}}},
		{Topic: "orders", Offset: 3, Value: []byte("c"), Headers: []target.Header{{Key: "ce_id", Value: []byte("evt-\xff\xfe9")}}},
		{Topic: "orders", Offset: 4, Value: []byte("d")},
	})
	for i, err := range errs[:3] {
		if err == nil {
			t.Errorf("record %d: named as failed by its event id, but acknowledged", i)
			continue
		}
		wantKind(t, err, target.Retryable, 200)
	}
	if errs[3] != nil {
		t.Fatalf("the record not named failed: %v", errs[3])
	}
}

// A value with a JSON content type that holds invalid UTF-8 goes as
// data_base64: the body stays valid UTF-8 JSON, the bytes arrive intact.
func TestBatchBodyStaysUTF8(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := batchTarget(t, srv.URL, 2, "")
	bad := []byte("{\"a\":\"\xff\"}")
	errs := deliverAll(t, tg, []*target.Record{
		{Topic: "orders", Offset: 1, Value: bad, Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}},
		{Topic: "orders", Offset: 2, Value: []byte(`{"a":"é"}`), Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}},
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	req := next(t, reqs)
	if !utf8.Valid(req.body) {
		t.Fatalf("batch body is not UTF-8: %q", req.body)
	}
	var evs []batchEventIn
	if err := json.Unmarshal(req.body, &evs); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		switch ev.Offset {
		case 1:
			if got, _ := base64.StdEncoding.DecodeString(ev.DataBase64); len(ev.Data) != 0 || string(got) != string(bad) {
				t.Errorf("invalid UTF-8 value: data %s, data_base64 %q", ev.Data, ev.DataBase64)
			}
		case 2:
			if string(ev.Data) != `{"a":"é"}` {
				t.Errorf("valid JSON value: data %s", ev.Data)
			}
		}
	}
}

// A JSON value nested deeper than maxDataDepth goes as data_base64: a
// receiver's parser could refuse it, and with it the whole batch.
func TestBatchDeepJSONGoesAsBase64(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := batchTarget(t, srv.URL, 2, "")
	nested := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":[`, n/2) + `"[{ \" ]"` + strings.Repeat(`]}`, n/2))
	}
	ct := []target.Header{{Key: "content-type", Value: []byte("application/json")}}
	evs := deliverBatch(t, tg, reqs, []*target.Record{
		{Topic: "orders", Offset: 1, Value: nested(maxDataDepth), Headers: ct},
		{Topic: "orders", Offset: 2, Value: nested(maxDataDepth + 2), Headers: ct},
	})
	for _, ev := range evs {
		switch ev.Offset {
		case 1:
			if string(ev.Data) != string(nested(maxDataDepth)) || ev.DataBase64 != "" {
				t.Errorf("value %d levels deep: data %.40s..., data_base64 %.40q, want it as data", maxDataDepth, ev.Data, ev.DataBase64)
			}
		case 2:
			if got, _ := base64.StdEncoding.DecodeString(ev.DataBase64); len(ev.Data) != 0 || string(got) != string(nested(maxDataDepth+2)) {
				t.Errorf("value %d levels deep: data %.40s..., want it as data_base64", maxDataDepth+2, ev.Data)
			}
		}
	}
}

// The breaker counts requests: a failed batch of ten records is one failure
// (with consecutive_failures 5, one transient 502 does not open it), and
// five failed batches in a row open it.
func TestBatchBreakerCountsRequests(t *testing.T) {
	var calls atomic.Int32
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	})
	// Batches of exactly ten: the wait never ends one first.
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 10, MaxWait: config.Duration(time.Hour)}
	})
	br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: srv.URL, FailureRatio: 0.5, MinRequests: 20,
		ConsecutiveFailures: 5, OpenTimeout: time.Hour})
	chain := dispatch.BreakerLayer(br)(tg)
	for round := 1; round <= 5; round++ {
		var wg sync.WaitGroup
		for i := range 10 {
			rec := &target.Record{Topic: "orders", Partition: int32(i), Offset: int64(round), Value: []byte("x")}
			wg.Go(func() {
				if _, err := chain.Deliver(t.Context(), &target.Delivery{Route: "orders", Record: rec, Attempt: 1}); !target.TargetDown(err) {
					t.Errorf("round %d, %s: %v, want the 502", round, rec.ID(), err)
				}
			})
		}
		wg.Wait()
		if n := calls.Load(); n != int32(round) {
			t.Fatalf("after round %d: %d requests, want one per round", round, n)
		}
		want := dispatch.BreakerClosed
		if round == 5 {
			want = dispatch.BreakerOpen
		}
		if st := br.State(); st != want {
			t.Fatalf("after %d failed batch requests of ten records: breaker %s, want %s", round, st, want)
		}
	}
}

// A batch request's client span is a child of one record's span and links
// the others' spans, and every record's span names the request: each
// record's trace leads to the request that carried it.
func TestBatchTraceLinks(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 3, MaxWait: config.Duration(time.Hour)}
	})
	spans := map[trace.SpanID]trace.Span{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 3 {
		ctx, span := tp.Tracer("test").Start(t.Context(), "deliver orders") // a trace of its own each
		mu.Lock()
		spans[span.SpanContext().SpanID()] = span
		mu.Unlock()
		wg.Go(func() {
			defer span.End()
			if _, err := deliver(t, ctx, tg, &target.Record{Topic: "orders", Partition: int32(i), Offset: 1, Value: []byte("x")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	batchID := next(t, reqs).header.Get(HeaderWebhookID)
	var client sdktrace.ReadOnlySpan
	records := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		} else {
			records[s.SpanContext().SpanID()] = s
		}
	}
	if client == nil || len(records) != 3 {
		t.Fatalf("recorded a client span: %v, and %d record spans, want 3", client != nil, len(records))
	}
	reached := map[trace.SpanID]bool{client.Parent().SpanID(): true}
	for _, l := range client.Links() {
		reached[l.SpanContext.SpanID()] = true
	}
	for id, s := range records {
		if !reached[id] {
			t.Errorf("record span %s is neither the client span's parent nor linked from it", id)
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
		}
		if attrs["hookbridge.batch.id"].AsString() != batchID || attrs["hookbridge.batch.size"].AsInt64() != 3 {
			t.Errorf("record span %s: attributes %v, want hookbridge.batch.id %s and hookbridge.batch.size 3", id, s.Attributes(), batchID)
		}
	}
	if len(client.Links()) != 2 {
		t.Errorf("client span links %d spans, want the other 2 records'", len(client.Links()))
	}
}

// When the route shuts down, a batch waiting for max_wait is sent at once,
// and so is every record after it: the drain does not wait out batches.
func TestBatchSentAtOnceOnShutdown(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 10, MaxWait: config.Duration(time.Hour)}
	})
	stop := make(chan struct{})
	ctx, cancel := context.WithTimeout(dispatch.WithStop(t.Context(), stop), time.Minute) // a hang guard only
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := deliver(t, ctx, tg, &target.Record{Topic: "orders", Offset: 1, Value: []byte("a")})
		done <- err
	}()
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the waiting record: %v", err)
	}
	if _, err := deliver(t, ctx, tg, &target.Record{Topic: "orders", Offset: 2, Value: []byte("b")}); err != nil {
		t.Fatalf("a record after the stop: %v", err)
	}
	for _, want := range []string{"1", "1"} {
		if got := next(t, reqs).header.Get(HeaderBatchSize); got != want {
			t.Errorf("batch of %s records, want %s", got, want)
		}
	}
}

// A batch refused as a whole with a permanent status does not say which
// record was the cause: its records go again one by one, and only the one
// the receiver refuses alone fails permanently. A batch too large for the
// receiver (413) is delivered record by record.
func TestBatchRefusedAsAWholeGoesAgainOneByOne(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(body []byte) int
		want   []bool // per record: fails permanently
	}{
		{"one poison record", func(body []byte) int {
			if strings.Contains(string(body), "cG9pc29u") { // "poison" in data_base64
				return http.StatusBadRequest
			}
			return http.StatusOK
		}, []bool{false, true, false}},
		{"too large together", func(body []byte) int {
			if strings.Count(string(body), `"specversion"`) > 1 {
				return http.StatusRequestEntityTooLarge
			}
			return http.StatusOK
		}, []bool{false, false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				body, _ := io.ReadAll(r.Body)
				w.WriteHeader(c.answer(body))
			}))
			t.Cleanup(srv.Close)
			tg := newTarget(t, srv.URL, func(o *Options) {
				o.Config.Batch = config.Batch{MaxMessages: 3, MaxWait: config.Duration(time.Hour)}
			})
			errs := deliverAll(t, tg, []*target.Record{
				{Topic: "orders", Partition: 0, Offset: 1, Value: []byte("fine")},
				{Topic: "orders", Partition: 1, Offset: 1, Value: []byte("poison")},
				{Topic: "orders", Partition: 2, Offset: 1, Value: []byte("good")},
			})
			for i, err := range errs {
				switch {
				case c.want[i] && target.KindOf(err) != target.Permanent:
					t.Errorf("record %d: %v, want it refused permanently", i, err)
				case !c.want[i] && err != nil:
					t.Errorf("record %d: %v, want it delivered on its own", i, err)
				}
			}
			if n := requests.Load(); n != 4 {
				t.Errorf("%d requests, want the batch and then one per record", n)
			}
		})
	}
}

// A record that gave up while its batch was out (its context ended) is not
// sent again alone when the batch is refused as a whole: nothing waits for
// its outcome, and it is delivered again anyway.
func TestBatchRefusedAsAWholeSkipsARecordThatGaveUp(t *testing.T) {
	ctx, giveUp := context.WithCancel(t.Context())
	gaveUp := make(chan struct{})
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			giveUp()
			<-gaveUp // its Deliver returned
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 3, MaxWait: config.Duration(time.Hour)}
	})
	var wg sync.WaitGroup
	for i := range 3 {
		rec := &target.Record{Topic: "orders", Partition: int32(i), Offset: 1, Value: []byte("x")}
		wg.Go(func() {
			if i == 1 {
				_, err := deliver(t, ctx, tg, rec)
				close(gaveUp)
				if target.KindOf(err) != target.Canceled {
					t.Errorf("the record that gave up: %v, want canceled", err)
				}
				return
			}
			if _, err := deliver(t, t.Context(), tg, rec); err != nil {
				t.Errorf("%s: %v, want it delivered on its own", rec.ID(), err)
			}
		})
	}
	wg.Wait()
	if n := requests.Load(); n != 3 {
		t.Errorf("%d requests, want the batch and one for each of the two records still waiting", n)
	}
}

func TestJSONNestedWithin(t *testing.T) {
	for _, c := range []struct {
		json string
		max  int
		want bool
	}{
		{`1`, 0, true},
		{`[]`, 0, false},
		{`[[1],{"a":2}]`, 2, true},
		{`[[1],{"a":[2]}]`, 2, false},
		{`"[[[[["`, 1, true},
		{`["\"[["]`, 1, true},
		{`["\\",[[]]]`, 2, false},
	} {
		if got := jsonNestedWithin([]byte(c.json), c.max); got != c.want {
			t.Errorf("jsonNestedWithin(%s, %d) = %v, want %v", c.json, c.max, got, c.want)
		}
	}
}

// sendTimes is a transport that records when each request left.
type sendTimes struct {
	next http.RoundTripper
	mu   sync.Mutex
	at   []time.Time
}

func (s *sendTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.next.RoundTrip(r)
}

// With rate_limit, no one-second window of send times holds more than the
// rate plus its 10% burst (plus one for a goroutine that wakes late and
// lands next to an on-time one).
func TestRateLimitWindow(t *testing.T) {
	const limit = 40
	srv, _ := receiver(t, nil)
	st := &sendTimes{next: http.DefaultTransport}
	burst := max(1, limit/10)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Transport = st
		o.Limiter = rate.NewLimiter(rate.Limit(limit), burst)
	})
	var recs []*target.Record
	for i := range 100 {
		recs = append(recs, &target.Record{Topic: "orders", Offset: int64(i), Value: []byte("x")})
	}
	for _, err := range deliverAll(t, tg, recs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	slices.SortFunc(st.at, func(a, b time.Time) int { return a.Compare(b) })
	worst := 0
	for i := range st.at {
		n := 0
		for j := i; j < len(st.at) && st.at[j].Sub(st.at[i]) < time.Second; j++ {
			n++
		}
		worst = max(worst, n)
	}
	if worst > limit+burst+1 {
		t.Fatalf("a one-second window held %d requests; rate_limit %d + burst %d", worst, limit, burst)
	}
}

// time is the Kafka timestamp for a plain record, left out when the record
// has none (-1) or one past year 9999 (microseconds taken for milliseconds:
// RFC 3339 has four-digit years); a record that is a CloudEvent already
// keeps its own attributes and has no time unless it carries ce_time, in a
// batch as in single-record mode (ce-time).
func TestBatchTimeAsInSingleMode(t *testing.T) {
	ts := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	recs := []*target.Record{
		{Topic: "orders", Offset: 1, Value: []byte("a"), Timestamp: ts},
		{Topic: "orders", Offset: 2, Value: []byte("b"), Timestamp: ts,
			Headers: []target.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("e2")}}},
		{Topic: "orders", Offset: 3, Value: []byte("c"), Timestamp: ts,
			Headers: []target.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_time", Value: []byte("2020-01-01T00:00:00Z")}}},
		{Topic: "orders", Offset: 4, Value: []byte("d"), Timestamp: time.UnixMilli(-1)},
		{Topic: "orders", Offset: 5, Value: []byte("e"), Timestamp: time.UnixMilli(ts.UnixMicro())},
		{Topic: "orders", Offset: 6, Value: []byte("f"), Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
	}
	want := map[int64]string{1: "2026-11-26T08:00:00Z", 2: "", 3: "2020-01-01T00:00:00Z", 4: "", 5: "", 6: "9999-12-31T23:59:59Z"}

	srv, reqs := receiver(t, nil)
	single := newTarget(t, srv.URL, nil)
	for _, rec := range recs {
		if _, err := deliver(t, t.Context(), single, rec); err != nil {
			t.Fatal(err)
		}
		if got := next(t, reqs).header.Get(HeaderCETime); got != want[rec.Offset] {
			t.Errorf("single-record mode, offset %d: ce-time %q, want %q", rec.Offset, got, want[rec.Offset])
		}
	}
	for _, ev := range deliverBatch(t, batchTarget(t, srv.URL, len(recs), ""), reqs, recs) {
		if ev.Time != want[ev.Offset] {
			t.Errorf("batch, offset %d: time %q, want %q", ev.Offset, ev.Time, want[ev.Offset])
		}
	}
}

// A 2xx batch answer is read up to 1 MiB: the "failed" lists of a JSON
// object count if the object ends within the limit. When which records
// failed cannot be told (a JSON object cut or malformed, also after a
// "failed" list, whose rest may hold another, one followed by more than
// spaces, or a "failed" that is not a list of strings) the whole batch fails as retryable (the receiver is up),
// rather than taking records as accepted. An answer that is not a JSON
// object accepts all.
func TestBatchAnswerFailedList(t *testing.T) {
	pad := strings.Repeat("x", MaxResponseBody)
	for _, c := range []struct {
		name, answer string
		want         []bool // per record: failed
		unknown      bool   // every record failed: which ones failed is unknown
	}{
		// Cut after a list: the rest may hold another "failed" member.
		{"failed list first, then cut", `{"failed":["orders-0-1"],"detail":"` + pad + `"}`, nil, true},
		{"second failed list cut", `{"failed":["orders-0-1"],"failed":["orders-0-2","` + pad + `"]}`, nil, true},
		{"failed list after 1 MiB", `{"detail":"` + pad + `","failed":["orders-0-1"]}`, nil, true},
		{"cut between members", `{"a":1,` + strings.Repeat(" ", MaxResponseBody) + `"failed":["orders-0-1"]}`, nil, true},
		{"not JSON", "<html>" + pad + "</html>", []bool{false, false}, false},
		{"within the limit", `{"detail":"` + pad[:1000] + `","failed":["orders-0-2"]}`, []bool{false, true}, false},
		{"an id and a number", `{"failed":["orders-0-1",7]}`, nil, true},
		{"a string, not a list", `{"failed":"orders-0-1"}`, nil, true},
		{"objects, not ids", `{"failed":[{"id":"orders-0-1"}]}`, nil, true},
		{"malformed, no list read", `{"status":"ok"`, nil, true},
		{"malformed after the list", `{"failed":["orders-0-2"], oops`, nil, true},
		{"a second object after it", `{"failed":[]}{"failed":["orders-0-1"]}`, nil, true},
		{"anything after it", `{"failed":["orders-0-2"]} ok`, nil, true},
		{"spaces after it", "{\"failed\":[\"orders-0-2\"]}\r\n  ", []bool{false, true}, false},
		{"byte order mark", "\ufeff" + `{"failed":["orders-0-1"]}`, []bool{true, false}, false},
		{"byte order mark and spaces", "\ufeff \n" + `{"failed":["orders-0-2"]}`, []bool{false, true}, false},
		{"another case", `{"Failed":["orders-0-1"]}`, []bool{true, false}, false},
		{"two lists", `{"failed":["orders-0-1"],"failed":["orders-0-2"]}`, []bool{true, true}, false},
		{"null", `{"failed":null}`, []bool{false, false}, false},
		{"a JSON array", `["orders-0-1"]`, []bool{false, false}, false},
		{"empty", "", []bool{false, false}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(c.answer))
			})
			errs := deliverAll(t, batchTarget(t, srv.URL, 2, ""), []*target.Record{
				{Topic: "orders", Partition: 0, Offset: 1, Value: []byte("a")},
				{Topic: "orders", Partition: 0, Offset: 2, Value: []byte("b")},
			})
			for i, err := range errs {
				switch {
				case c.unknown:
					if err == nil || target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "which records it accepted is unknown") {
						t.Errorf("record %d: %v, want a retryable failure: the answer could not be read", i, err)
					}
				case c.want[i] && err == nil:
					t.Errorf("record %d: accepted, but the answer lists it as failed", i)
				case !c.want[i] && err != nil:
					t.Errorf("record %d: %v, want accepted", i, err)
				}
			}
		})
	}
}
