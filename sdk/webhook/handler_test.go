package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

var testNow = time.Unix(1_700_000_000, 0)

func testVerifier(t *testing.T) *Verifier {
	return mustVerifier(t, []string{newSecret}, WithClock(func() time.Time { return testNow }))
}

// single is a signed single-record request as the bridge sends it.
func single(t *testing.T, topic string, partition int32, offset int64, key string, body string) *http.Request {
	t.Helper()
	id := recordID(topic, partition, offset)
	r := request(id, strconv.FormatInt(testNow.Unix(), 10), mustSign(t, newSecret, id, testNow.Unix(), []byte(body)), []byte(body))
	r.Header.Set(HeaderKafkaTopic, topic)
	r.Header.Set(HeaderKafkaPartition, strconv.Itoa(int(partition)))
	r.Header.Set(HeaderKafkaOffset, strconv.FormatInt(offset, 10))
	r.Header.Set(HeaderKafkaKey, key)
	r.Header.Set(HeaderAttempt, "1")
	r.Header.Set("Content-Type", "application/json")
	return r
}

// batch is a signed batch request of events.
func batch(t *testing.T, events ...map[string]any) *http.Request {
	t.Helper()
	body, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	id := "batch_0001"
	r := request(id, strconv.FormatInt(testNow.Unix(), 10), mustSign(t, newSecret, id, testNow.Unix(), body), body)
	r.Header.Set("Content-Type", BatchContentType)
	r.Header.Set(HeaderBatchSize, strconv.Itoa(len(events)))
	r.Header.Set(HeaderAttempt, "3")
	return r
}

func event(partition int32, offset int64, key string, data any) map[string]any {
	return map[string]any{"specversion": "1.0", "id": recordID("t", partition, offset), "source": "/kafka/t",
		"type": "dev.hookbridge.kafka.record", "datacontenttype": "application/json", "data": data,
		"topic": "t", "partition": partition, "offset": offset, "key": key}
}

// recorder is a Func that records what it was given and fails on demand.
type recorder struct {
	mu   sync.Mutex
	got  []*Delivery
	fail func(d *Delivery) error
}

func (rc *recorder) handle(ctx context.Context, d *Delivery) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, d)
	if rc.fail != nil {
		return rc.fail(d)
	}
	return nil
}

func (rc *recorder) ids() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, d := range rc.got {
		out = append(out, d.ID)
	}
	return out
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerSingle(t *testing.T) {
	rc := &recorder{}
	var dups []string
	h := &Handler{Verifier: testVerifier(t), Func: rc.handle, Store: NewMemoryStore(0, 0),
		Duplicate: func(_ context.Context, d *Delivery) { dups = append(dups, d.ID) }}

	if w := serve(h, single(t, "t", 2, 5, "k", `{"a":1}`)); w.Code != http.StatusNoContent {
		t.Fatalf("first delivery: %d %s", w.Code, w.Body)
	}
	if len(rc.got) != 1 {
		t.Fatalf("Func called %d times", len(rc.got))
	}
	d := rc.got[0]
	if d.ID != "t-2-5" || d.Topic != "t" || d.Partition != 2 || d.Offset != 5 || string(d.Key) != "k" ||
		string(d.Body) != `{"a":1}` || d.ContentType != "application/json" || d.Attempt != 1 || d.BatchID != "" {
		t.Fatalf("delivery %+v", d)
	}
	// The same record again (a redelivery) is answered but not handled.
	if w := serve(h, single(t, "t", 2, 5, "k", `{"a":1}`)); w.Code != http.StatusNoContent {
		t.Fatalf("redelivery: %d %s", w.Code, w.Body)
	}
	if len(rc.got) != 1 || len(dups) != 1 || dups[0] != "t-2-5" {
		t.Fatalf("after a redelivery: Func called %d times, duplicates %v", len(rc.got), dups)
	}
}

func TestHandlerFailures(t *testing.T) {
	rc := &recorder{}
	h := &Handler{Verifier: testVerifier(t), Func: rc.handle, Store: NewMemoryStore(0, 0)}

	// A failure is retried by the bridge, and the retry is handled, not
	// taken for a duplicate.
	rc.fail = func(*Delivery) error { return errors.New("database down") }
	if w := serve(h, single(t, "t", 0, 1, "k", "{}")); w.Code != http.StatusInternalServerError || !bytes.Contains(w.Body.Bytes(), []byte("database down")) {
		t.Fatalf("failure: %d %s", w.Code, w.Body)
	}
	rc.fail = nil
	if w := serve(h, single(t, "t", 0, 1, "k", "{}")); w.Code != http.StatusNoContent || len(rc.got) != 2 {
		t.Fatalf("retry after a failure: %d, Func called %d times", w.Code, len(rc.got))
	}

	rc.fail = func(*Delivery) error { return Permanent(errors.New("bad order")) }
	if w := serve(h, single(t, "t", 0, 2, "k", "{}")); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("permanent failure: %d %s", w.Code, w.Body)
	}
	rc.fail = nil

	n := len(rc.got)
	bad := single(t, "t", 0, 3, "k", "{}")
	bad.Header.Set(HeaderSignature, "v1,"+"AAAA")
	if w := serve(h, bad); w.Code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", w.Code)
	}
	tampered := single(t, "t", 0, 3, "k", "{}")
	tampered.Body = http.NoBody
	if w := serve(h, tampered); w.Code != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d", w.Code)
	}
	get := single(t, "t", 0, 3, "k", "{}")
	get.Method = http.MethodGet
	if w := serve(h, get); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", w.Code)
	}
	small := &Handler{Verifier: mustVerifier(t, []string{newSecret}, WithClock(func() time.Time { return testNow }), WithMaxBodyBytes(4)), Func: rc.handle}
	if w := serve(small, single(t, "t", 0, 3, "k", `{"long":true}`)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", w.Code)
	}
	noTopic := single(t, "t", 0, 3, "k", "{}")
	noTopic.Header.Del(HeaderKafkaTopic)
	if w := serve(h, noTopic); w.Code != http.StatusBadRequest {
		t.Fatalf("no kafka-topic: %d", w.Code)
	}
	if len(rc.got) != n {
		t.Fatal("a rejected request reached Func")
	}
	if w := serve(&Handler{Func: rc.handle}, single(t, "t", 0, 3, "k", "{}")); w.Code != http.StatusInternalServerError {
		t.Fatalf("Handler without a Verifier: %d", w.Code)
	}
}

// failingStore fails every call.
type failingStore struct{}

func (failingStore) Seen(context.Context, string) (bool, error) {
	return false, errors.New("store down")
}
func (failingStore) Mark(context.Context, string) error { return errors.New("store down") }

func TestHandlerStoreDown(t *testing.T) {
	rc := &recorder{}
	h := &Handler{Verifier: testVerifier(t), Func: rc.handle, Store: failingStore{}}
	w := serve(h, single(t, "t", 0, 1, "k", "{}"))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || len(rc.got) != 0 {
		t.Fatalf("store down: %d %q, Func called %d times", w.Code, w.Header(), len(rc.got))
	}
}

// A redelivery that arrives while the first delivery is still being handled
// is neither handled twice nor acknowledged before the first succeeded.
func TestHandlerConcurrentRedelivery(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	h := &Handler{Verifier: testVerifier(t), Store: NewMemoryStore(0, 0), Func: func(ctx context.Context, d *Delivery) error {
		calls++
		close(entered)
		<-release
		return nil
	}}
	first := make(chan int)
	go func() { first <- serve(h, single(t, "t", 0, 1, "k", "{}")).Code }()
	<-entered
	w := serve(h, single(t, "t", 0, 1, "k", "{}"))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("concurrent redelivery: %d %q", w.Code, w.Header())
	}
	close(release)
	if code := <-first; code != http.StatusNoContent {
		t.Fatalf("first delivery: %d", code)
	}
	if w := serve(h, single(t, "t", 0, 1, "k", "{}")); w.Code != http.StatusNoContent || calls != 1 {
		t.Fatalf("later redelivery: %d, Func called %d times", w.Code, calls)
	}
}

func TestHandlerBatch(t *testing.T) {
	rc := &recorder{fail: func(d *Delivery) error {
		if d.Offset == 2 {
			return errors.New("no")
		}
		return nil
	}}
	store := NewMemoryStore(0, 0)
	_ = store.Mark(context.Background(), "t-1-1") // handled before: a redelivery
	h := &Handler{Verifier: testVerifier(t), Func: rc.handle, Store: store}
	w := serve(h, batch(t,
		event(0, 1, "a", map[string]int{"n": 1}),
		event(0, 2, "b", map[string]int{"n": 2}), // fails
		event(0, 3, "b", map[string]int{"n": 3}), // same key after a failure: not handled
		event(1, 1, "a", map[string]int{"n": 4}), // duplicate
		event(0, 4, "c", map[string]int{"n": 5}),
	))
	if w.Code != 200 {
		t.Fatalf("batch: %d %s", w.Code, w.Body)
	}
	var res BatchResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if got, want := res.Failed, []string{"t-0-2", "t-0-3"}; !slices.Equal(got, want) {
		t.Fatalf("failed %v, want %v", got, want)
	}
	if got, want := rc.ids(), []string{"t-0-1", "t-0-2", "t-0-4"}; !slices.Equal(got, want) {
		t.Fatalf("Func saw %v, want %v", got, want)
	}
	d := rc.got[0]
	if d.BatchID != "batch_0001" || d.Attempt != 3 || string(d.Key) != "a" || string(d.Body) != `{"n":1}` || d.ContentType != "application/json" {
		t.Fatalf("batch delivery %+v", d)
	}
	// The bridge retries the failed ones alone; now they succeed.
	rc.fail = nil
	w = serve(h, batch(t, event(0, 2, "b", 2), event(0, 3, "b", 3), event(0, 1, "a", 1)))
	if w.Body.String() != `{"failed":[]}` {
		t.Fatalf("retried batch: %s", w.Body)
	}
	if got, want := rc.ids(), []string{"t-0-1", "t-0-2", "t-0-4", "t-0-2", "t-0-3"}; !slices.Equal(got, want) {
		t.Fatalf("Func saw %v, want %v", got, want)
	}
	bad := batch(t, map[string]any{"id": "x"})
	if w := serve(h, bad); w.Code != http.StatusBadRequest {
		t.Fatalf("batch without coordinates: %d", w.Code)
	}
}

// A batch none of whose records could be done is answered as a single
// record would be: 503 when the Store is down, 500 when Func failed for
// every record it was given (its database is down). A 200 with every id
// failed would tell the bridge that the receiver is up: the records would
// spend their attempts and be dead-lettered instead of the route pausing.
// Records failed with Permanent, or a batch with one record done, keep the
// failed list.
func TestHandlerBatchNoneDone(t *testing.T) {
	down := errors.New("db: connection refused")
	for _, c := range []struct {
		name   string
		store  Store
		fail   func(*Delivery) error
		code   int
		failed []string // the failed list of a 200
	}{
		{name: "store down", store: failingStore{}, code: http.StatusServiceUnavailable},
		{name: "every record fails", fail: func(*Delivery) error { return down }, code: http.StatusInternalServerError},
		{name: "one record handled", fail: func(d *Delivery) error {
			if d.Partition == 0 {
				return down
			}
			return nil
		}, code: http.StatusOK, failed: []string{"t-0-1"}},
		{name: "every record permanent", fail: func(*Delivery) error { return Permanent(errors.New("bad order")) },
			code: http.StatusOK, failed: []string{"t-0-1", "t-1-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := &recorder{fail: c.fail}
			h := &Handler{Verifier: testVerifier(t), Func: rc.handle, Store: c.store}
			w := serve(h, batch(t, event(0, 1, "a", 1), event(1, 1, "b", 2)))
			if w.Code != c.code {
				t.Fatalf("answer %d %s, want %d", w.Code, w.Body, c.code)
			}
			if c.code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "1" {
				t.Errorf("503 without Retry-After: %q", w.Header())
			}
			if c.code != http.StatusOK {
				return
			}
			var res BatchResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Failed, c.failed) {
				t.Errorf("failed %v, want %v", res.Failed, c.failed)
			}
		})
	}
}
