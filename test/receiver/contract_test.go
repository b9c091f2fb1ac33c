package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	bridgewebhook "github.com/hookbridge/hookbridge/bridge/webhook"
	"github.com/hookbridge/hookbridge/sdk/webhook"
)

// contractRecords covers what the contract encodes specially: text, binary,
// null, empty and space-padded keys; JSON, non-compact JSON, binary and null
// values; forwarded headers (repeated, binary, names that must be escaped); a record that is a
// CloudEvent already; trace headers that must not be forwarded.
func contractRecords() []*target.Record {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	h := func(kv ...string) []target.Header {
		var out []target.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, target.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	return []*target.Record{
		{Topic: "orders", Partition: 0, Offset: 1, Key: []byte("user-1"), Value: []byte(`{"n":1}`), Timestamp: ts,
			Headers: h("content-type", "application/json", "tenant", "acme", "tenant", "acme-eu",
				"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Topic: "orders", Partition: 1, Offset: 2, Key: []byte{0xff, 0xfe, 0x00, 'a'}, Value: []byte{0, 1, 2, 0xff}, Timestamp: ts,
			Headers: []target.Header{{Key: "blob", Value: []byte{0xde, 0xad, 0xbe, 0xef}}}},
		{Topic: "orders", Partition: 2, Offset: 3, Key: nil, Value: nil, Timestamp: ts},
		{Topic: "orders", Partition: 2, Offset: 4, Key: []byte{}, Value: []byte(`{"a": [1, 2]}`), Timestamp: ts,
			Headers: h("content-type", "application/json")},
		{Topic: "orders", Partition: 3, Offset: 5, Key: []byte(" padded "), Value: []byte("plain text"), Timestamp: ts,
			Headers: h("content-type", "text/plain")},
		{Topic: "orders", Partition: 4, Offset: 6, Key: []byte("evt"), Value: []byte("hi"), Timestamp: ts,
			Headers: h("content-type", "text/plain", "ce_specversion", "1.0", "ce_id", "evt-9", "ce_source", "/shop",
				"ce_type", "shop.order", "ce_subject", "order 42", "ce_time", "2024-01-02T03:04:05Z")},
		// A binary value next to a record header named like an encoding
		// flag, and one name with a value valid as is and one not.
		{Topic: "orders", Partition: 5, Offset: 7, Key: []byte("k"), Value: []byte("v"), Timestamp: ts,
			Headers: []target.Header{{Key: "a", Value: []byte{0xff}}, {Key: "a-encoding", Value: []byte("base64")},
				{Key: "b", Value: []byte("plain")}, {Key: "b-encoding", Value: []byte("base64")},
				{Key: "m", Value: []byte("/w==")}, {Key: "m", Value: []byte{0xfe}}}},
		// Names that cannot be HTTP field names as they are (escaped), in
		// the order of their escaped names, which is the order they decode in.
		{Topic: "orders", Partition: 5, Offset: 8, Key: []byte("k"), Value: []byte("v"), Timestamp: ts,
			Headers: []target.Header{{Key: "", Value: []byte("empty name")}, {Key: "é/ü", Value: []byte{0xfe}},
				{Key: "100%", Value: []byte("pct")}, {Key: "ce_bad name", Value: []byte("x")}, {Key: "user id", Value: []byte("42")}}},
		// An empty name whose value must go as base64.
		{Topic: "orders", Partition: 5, Offset: 9, Key: []byte("k"), Value: []byte("v"), Timestamp: ts,
			Headers: []target.Header{{Key: "", Value: []byte{0xff, 0xfe, 0x00}}}},
		// A single record whose own content type is the batch one: its
		// request is still a single record's, with that value as its body.
		{Topic: "orders", Partition: 6, Offset: 10, Key: []byte("k"), Value: []byte("[]"), Timestamp: ts,
			Headers: h("content-type", "application/cloudevents-batch+json")},
		{Topic: "orders", Partition: 6, Offset: 11, Key: []byte("k"), Timestamp: ts,
			Value:   []byte(`[{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":{"a":1}}]`),
			Headers: h("content-type", "application/cloudevents-batch+json")},
		// JSON nested deeper than a receiver's parser goes (in a batch, as
		// data_base64).
		{Topic: "orders", Partition: 7, Offset: 12, Key: []byte("k"), Timestamp: ts,
			Value:   []byte(strings.Repeat("[", 9999) + strings.Repeat("]", 9999)),
			Headers: h("content-type", "application/json")},
	}
}

// sink is an sdk/webhook Handler that keeps every Delivery by webhook-id.
type sink struct {
	mu   sync.Mutex
	got  map[string][]*webhook.Delivery
	fail func(d *webhook.Delivery) error
}

func newSink(t *testing.T, secrets []string) (*sink, *httptest.Server) {
	t.Helper()
	v, err := webhook.NewVerifier(secrets)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{got: map[string][]*webhook.Delivery{}}
	srv := httptest.NewServer(&webhook.Handler{Verifier: v, Func: func(ctx context.Context, d *webhook.Delivery) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got[d.ID] = append(s.got[d.ID], d)
		if s.fail != nil {
			return s.fail(d)
		}
		return nil
	}})
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *sink) last(id string) *webhook.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ds := s.got[id]; len(ds) > 0 {
		return ds[len(ds)-1]
	}
	return nil
}

func newTarget(t *testing.T, url string, batch config.Batch) *bridgewebhook.Target {
	t.Helper()
	tg, err := bridgewebhook.New(bridgewebhook.Options{Route: "contract", Version: "test",
		Config: config.Webhook{URL: url, SigningSecrets: []string{oldSecret, newSecret}, Batch: batch}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close(context.Background()) })
	return tg
}

// checkKey compares keys including nil-ness (null key) and emptiness.
func checkKey(t *testing.T, id string, got, want []byte) {
	t.Helper()
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Errorf("%s: key %#v, want %#v", id, got, want)
	}
}

// The bridge's single-record requests, verified and decoded by sdk/webhook.
func TestContractSingleRecord(t *testing.T) {
	s, srv := newSink(t, []string{newSecret})
	tg := newTarget(t, srv.URL+"/hook", config.Batch{})
	for _, rec := range contractRecords() {
		if _, err := tg.Deliver(context.Background(), &target.Delivery{Route: "contract", Record: rec, Attempt: 2}); err != nil {
			t.Fatalf("deliver %s: %v", rec.ID(), err)
		}
		d := s.last(rec.ID())
		if d == nil {
			t.Fatalf("%s: not received", rec.ID())
		}
		if d.ID != rec.ID() || d.Topic != rec.Topic || d.Partition != rec.Partition || d.Offset != rec.Offset ||
			d.Attempt != 2 || d.BatchID != "" || d.Timestamp.IsZero() {
			t.Errorf("%s: coordinates %+v", rec.ID(), d)
		}
		checkKey(t, rec.ID(), d.Key, rec.Key)
		if !bytes.Equal(d.Body, rec.Value) {
			t.Errorf("%s: body %q, want %q", rec.ID(), d.Body, rec.Value)
		}
		wantCT := "application/octet-stream"
		if v, ok := rec.Header("content-type"); ok {
			wantCT = string(v)
		}
		if d.ContentType != wantCT {
			t.Errorf("%s: content type %q, want %q", rec.ID(), d.ContentType, wantCT)
		}
		var wantHeaders []webhook.Header
		for _, h := range rec.Headers {
			switch h.Key {
			case "content-type", "traceparent", "tracestate", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time":
				continue
			}
			wantHeaders = append(wantHeaders, webhook.Header{Key: h.Key, Value: h.Value})
		}
		if !slices.EqualFunc(d.Headers, wantHeaders, func(a, b webhook.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			t.Errorf("%s: headers %q, want %q", rec.ID(), d.Headers, wantHeaders)
		}
		ce := d.CloudEvent
		if _, isEvent := rec.Header("ce_id"); isEvent {
			if ce.ID != "evt-9" || ce.Source != "/shop" || ce.Type != "shop.order" || ce.Extensions["subject"] != "order 42" ||
				!ce.Time.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("%s: CloudEvent %+v", rec.ID(), ce)
			}
		} else if ce.SpecVersion != "1.0" || ce.ID != rec.ID() || ce.Source != "/kafka/orders" ||
			ce.Type != "dev.hookbridge.kafka.record" || !ce.Time.Equal(rec.Timestamp) {
			t.Errorf("%s: CloudEvent %+v", rec.ID(), ce)
		}
	}
}

// A receiver holding neither of the bridge's secrets answers 401, which the
// bridge takes as its signature refused: retryable, counted against the
// breaker, never dead-lettered.
func TestContractWrongSecret(t *testing.T) {
	s, srv := newSink(t, []string{"whsec_" + "c29tZW9uZSBlbHNlJ3Mgc2VjcmV0IGtleSEhIQ=="})
	tg := newTarget(t, srv.URL, config.Batch{})
	rec := contractRecords()[0]
	_, err := tg.Deliver(context.Background(), &target.Delivery{Record: rec, Attempt: 1})
	var te *target.Error
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || te.Kind != target.Retryable || !target.TargetDown(err) {
		t.Fatalf("deliver to a receiver with another secret: %v", err)
	}
	if s.last(rec.ID()) != nil {
		t.Fatal("an unverified request reached the handler")
	}
}

// The bridge's batch requests, decoded by sdk/webhook; a failed record is
// reported to the bridge through the batch answer.
func TestContractBatch(t *testing.T) {
	s, srv := newSink(t, []string{newSecret})
	recs := contractRecords()
	failID := recs[1].ID()
	s.mu.Lock()
	s.fail = func(d *webhook.Delivery) error {
		if d.ID == failID {
			return errors.New("not now")
		}
		return nil
	}
	s.mu.Unlock()
	// max_messages = the number of records and a long max_wait: one batch.
	tg := newTarget(t, srv.URL, config.Batch{MaxMessages: len(recs), MaxWait: config.Duration(time.Minute)})
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Go(func() {
			_, errs[i] = tg.Deliver(context.Background(), &target.Delivery{Record: rec, Attempt: 1})
		})
	}
	wg.Wait()
	for i, rec := range recs {
		if rec.ID() == failID {
			if target.KindOf(errs[i]) != target.Retryable {
				t.Errorf("%s: failed in the batch answer, but Deliver returned %v", rec.ID(), errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("%s: %v", rec.ID(), errs[i])
		}
	}

	var batchID string
	for _, rec := range recs {
		d := s.last(rec.ID())
		if d == nil {
			t.Fatalf("%s: not received", rec.ID())
		}
		if batchID == "" {
			batchID = d.BatchID
		}
		if d.BatchID == "" || d.BatchID != batchID {
			t.Errorf("%s: batch id %q, others %q", rec.ID(), d.BatchID, batchID)
		}
		if d.Topic != rec.Topic || d.Partition != rec.Partition || d.Offset != rec.Offset || d.Attempt != 1 {
			t.Errorf("%s: coordinates %+v", rec.ID(), d)
		}
		checkKey(t, rec.ID(), d.Key, rec.Key)
		ct, _ := rec.Header("content-type")
		if d.ContentType != string(ct) {
			t.Errorf("%s: datacontenttype %q, want %q", rec.ID(), d.ContentType, ct)
		}
		switch {
		case rec.Value == nil:
			if d.Body != nil {
				t.Errorf("%s: data %q for a null value", rec.ID(), d.Body)
			}
		case d.ContentType == "application/json":
			// JSON travels as data, without white space around it: equal as JSON.
			var got, want any
			if json.Unmarshal(d.Body, &got) != nil || json.Unmarshal(rec.Value, &want) != nil || !jsonEqual(got, want) {
				t.Errorf("%s: data %s, want %s", rec.ID(), d.Body, rec.Value)
			}
		default:
			if !bytes.Equal(d.Body, rec.Value) {
				t.Errorf("%s: data %q, want %q", rec.ID(), d.Body, rec.Value)
			}
		}
		ce := d.CloudEvent
		if _, isEvent := rec.Header("ce_id"); isEvent {
			if ce.ID != "evt-9" || ce.Source != "/shop" || ce.Type != "shop.order" || ce.Extensions["subject"] != "order 42" {
				t.Errorf("%s: CloudEvent %+v", rec.ID(), ce)
			}
		} else if ce.ID != rec.ID() || ce.Source != "/kafka/orders" || !ce.Time.Equal(rec.Timestamp) {
			t.Errorf("%s: CloudEvent %+v", rec.ID(), ce)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
