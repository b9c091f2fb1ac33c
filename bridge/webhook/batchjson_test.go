package webhook

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// reference is what encoding/json makes of ev, extensions merged in: the
// encoding appendEvent replaces.
func reference(t *testing.T, ev *batchEvent) map[string]any {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range ev.Extensions {
		m[k] = v
	}
	return m
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 26, 7, 0, 0, 123456789, time.UTC)
	records := []*target.Record{
		{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k-1"), Value: []byte("plain bytes"), Timestamp: ts},
		{Topic: "orders", Offset: 1, Value: []byte(`{"a": [1, 2, {"b": "<&>"}]}`),
			Headers: []target.Header{{Key: "content-type", Value: []byte("application/json")}}},
		{Topic: "t\"q\\u", Partition: -1, Offset: 1 << 62, Key: []byte{0xff, 0xfe, 'x'}, Value: []byte{0, 1, 2, 0xff}},
		{Topic: "orders", Key: []byte{}, Value: nil},
		{Topic: "orders", Offset: 7, Value: []byte("x"), Headers: []target.Header{
			{Key: "ce_id", Value: []byte("evt-\u2028-\x01")},
			{Key: "ce_source", Value: []byte("/src<script>")},
			{Key: "ce_type", Value: []byte("com.example.\ttype")},
			{Key: "ce_time", Value: []byte("2026-11-26T07:00:00Z")},
			{Key: "ce_tenant", Value: []byte("acme & co")},
			{Key: "ce_zone", Value: []byte("eu\n1")},
			{Key: "ce_alpha", Value: []byte("first")},
			{Key: "content-type", Value: []byte("text/plain; charset=\"utf-8\"")},
		}},
	}
	for i, rec := range records {
		ev := toBatchEvent(rec)
		b := appendEvent(nil, ev)
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("record %d: %s is not JSON: %v", i, b, err)
		}
		if want := reference(t, ev); !reflect.DeepEqual(got, want) {
			t.Errorf("record %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := []string{"", "plain", "\"\\/", "<>&", "\u2028\u2029", "\x00\x1f\x7f", "é漢🙂", "\xff", "a\xc3", "\xed\xa0\x80"}
	for range 2000 {
		b := make([]byte, rnd.IntN(24))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, enc, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, got, want)
		}
		if d := jsonDecoded(s); d != got {
			t.Errorf("%q: jsonDecoded gives %q, a JSON parser %q", s, d, got)
		}
	}
}

// BenchmarkBatchBody encodes 100 records as their events and joins them.
func BenchmarkBatchBody(b *testing.B) {
	ds := make([]*target.Delivery, 100)
	for i := range ds {
		ds[i] = &target.Delivery{Record: &target.Record{Topic: "bench", Partition: int32(i % 6), Offset: int64(i),
			Key: []byte("key-123"), Value: make([]byte, 256), Timestamp: time.Now()}}
	}
	items := make([]*batchItem, len(ds))
	b.ReportAllocs()
	for b.Loop() {
		for i, d := range ds {
			items[i] = newBatchItem(b.Context(), d)
		}
		_ = batchBody(items)
	}
}
