package webhook

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
	for _, rec := range records {
		checkEvent(t, rec)
	}
}

// checkEvent checks that the event of rec, as appendEvent writes it, is a
// JSON object in valid UTF-8 with no name twice, and holds what
// encoding/json makes of the event (see reference).
func checkEvent(t *testing.T, rec *target.Record) {
	t.Helper()
	ev := toBatchEvent(rec)
	b := appendEvent(nil, ev)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("record %v: %s is not JSON: %v", rec, b, err)
	}
	if !utf8.Valid(b) {
		t.Fatalf("record %v: %q is not UTF-8", rec, b)
	}
	// A name twice is JSON that receivers read differently (the first
	// value, the last, or an error); Unmarshal keeps the last.
	dec := json.NewDecoder(bytes.NewReader(b))
	_, _ = dec.Token() // {
	seen := map[string]bool{}
	for dec.More() {
		name, _ := dec.Token()
		if seen[name.(string)] {
			t.Fatalf("record %v: %q twice in %s", rec, name, b)
		}
		seen[name.(string)] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	if want := reference(t, ev); !reflect.DeepEqual(got, want) {
		t.Errorf("record %v:\n got %v\nwant %v", rec, got, want)
	}
}

// FuzzBatchEvent is TestAppendEventMatchesEncodingJSON for records the
// fuzzer makes: any key, value, content-type and ce_* headers.
func FuzzBatchEvent(f *testing.F) {
	f.Add([]byte("k-1"), false, []byte(`{"a": [1, 2, {"b": "<&>"}]}`), "application/json", "ce_id", []byte("evt-\u2028-\x01"),
		"ce_tenant", []byte("acme & co"), int64(1700000000123))
	f.Add([]byte{0xff, 0xfe, 'x'}, false, []byte{0, 1, 2, 0xff}, "", "ce_specversion", []byte("1.0"), "ce_time", []byte("x"), int64(-1))
	f.Add([]byte{}, true, []byte(`"\xff"`), "text/plain+json; charset=\"utf-8\"", "ce_zone", []byte("eu\n1"), "ce_topic", []byte("t"), int64(0))
	f.Add([]byte("k"), false, []byte(strings.Repeat("[", 65)+strings.Repeat("]", 65)), "application/json", "CE_Alpha", []byte("\xc3"),
		"ce_data", []byte("{}"), int64(253402300800000))
	f.Fuzz(func(t *testing.T, key []byte, nullKey bool, value []byte, ct, n1 string, v1 []byte, n2 string, v2 []byte, millis int64) {
		rec := &target.Record{Topic: "orders", Partition: 3, Offset: 42, Key: key, Value: value,
			Headers: []target.Header{{Key: "content-type", Value: []byte(ct)}, {Key: n1, Value: v1}, {Key: n2, Value: v2}}}
		if nullKey {
			rec.Key = nil
		}
		if millis != 0 {
			rec.Timestamp = time.UnixMilli(millis)
		}
		checkEvent(t, rec)
	})
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := slices.Clone(jsonStringCases)
	for range 2000 {
		b := make([]byte, rnd.IntN(24))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		checkJSONString(t, s)
	}
}

// jsonStringCases are strings appendJSONString must escape, or replace.
var jsonStringCases = []string{"", "plain", "\"\\/", "<>&", "\u2028\u2029", "\x00\x1f\x7f", "é漢🙂", "\xff", "a\xc3", "\xed\xa0\x80"}

// checkJSONString checks that appendJSONString(s) is a JSON string that
// decodes as encoding/json's encoding of s does, and as jsonDecoded says.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
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

// FuzzAppendJSONString is TestAppendJSONStringMatchesEncodingJSON for
// strings the fuzzer makes.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringCases {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
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
