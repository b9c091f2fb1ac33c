package webhook

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/signing"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// Secrets of the header tests; the second one is the rotation partner.
var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	secretB = "whsec_" + base64.RawStdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210fedcba98"))
)

// transportHeaders are added by Go's client, not by the target.
var transportHeaders = []string{"Accept-Encoding", "Content-Length"}

func TestRequestHeaders(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123e6, time.FixedZone("CET", 3600))
	no := false
	tests := []struct {
		name   string
		change func(*Options)
		rec    target.Record
		att    int
		want   map[string][]string // besides webhook-id/-timestamp/-signature, which every case checks
	}{
		{
			name: "full record",
			change: func(o *Options) {
				o.Config.Headers = map[string]string{"Authorization": "Bearer t0ken"}
			},
			rec: target.Record{
				Topic: "orders", Partition: 3, Offset: 42, Key: []byte("user-1"), Value: []byte(`{"a":1}`), Timestamp: ts,
				Headers: []target.Header{
					{Key: "content-type", Value: []byte("application/json")},
					{Key: "x-tenant", Value: []byte("acme")},
					{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
					{Key: "tracestate", Value: []byte("vendor=1")},
				},
			},
			att: 2,
			want: map[string][]string{
				"Authorization":         {"Bearer t0ken"},
				"Content-Type":          {"application/json"},
				"User-Agent":            {"hookbridge/1.2.3"},
				"Hookbridge-Attempt":    {"2"},
				"Kafka-Topic":           {"orders"},
				"Kafka-Partition":       {"3"},
				"Kafka-Offset":          {"42"},
				"Kafka-Key":             {"user-1"},
				"Kafka-Header-X-Tenant": {"acme"},
				"Ce-Specversion":        {"1.0"},
				"Ce-Id":                 {"orders-3-42"},
				"Ce-Source":             {"/kafka/orders"},
				"Ce-Type":               {"dev.hookbridge.kafka.record"},
				"Ce-Time":               {"2024-01-02T02:04:05.123Z"},
			},
		},
		{
			name: "null key, no headers, no timestamp, default content type",
			rec:  target.Record{Topic: "t", Partition: 0, Offset: 7},
			want: map[string][]string{
				"Content-Type":       {"application/octet-stream"},
				"User-Agent":         {"hookbridge/1.2.3"},
				"Hookbridge-Attempt": {"1"},
				"Kafka-Topic":        {"t"},
				"Kafka-Partition":    {"0"},
				"Kafka-Offset":       {"7"},
				"Ce-Specversion":     {"1.0"},
				"Ce-Id":              {"t-0-7"},
				"Ce-Source":          {"/kafka/t"},
				"Ce-Type":            {"dev.hookbridge.kafka.record"},
			},
		},
		{
			name: "non-UTF-8 key",
			rec:  target.Record{Topic: "t", Offset: 1, Key: []byte{0xff, 0xfe, 0x00, 'a'}, Value: []byte("x")},
			want: map[string][]string{"Kafka-Key": {"//4AYQ=="}, "Kafka-Key-Encoding": {"base64"}},
		},
		{
			name: "key with a newline",
			rec:  target.Record{Topic: "t", Offset: 1, Key: []byte("a\r\nInjected: yes")},
			want: map[string][]string{"Kafka-Key": {base64.StdEncoding.EncodeToString([]byte("a\r\nInjected: yes"))}, "Kafka-Key-Encoding": {"base64"}},
		},
		{
			name: "key with surrounding space",
			rec:  target.Record{Topic: "t", Offset: 1, Key: []byte(" k ")},
			want: map[string][]string{"Kafka-Key": {"IGsg"}, "Kafka-Key-Encoding": {"base64"}},
		},
		{
			name: "empty key is not a null key",
			rec:  target.Record{Topic: "t", Offset: 1, Key: []byte{}},
			want: map[string][]string{"Kafka-Key": {""}},
		},
		{
			name: "UTF-8 key",
			rec:  target.Record{Topic: "t", Offset: 1, Key: []byte("clé-ü")},
			want: map[string][]string{"Kafka-Key": {"clé-ü"}},
		},
		{
			name: "CloudEvent record",
			rec: target.Record{
				Topic: "t", Offset: 1, Timestamp: ts,
				Headers: []target.Header{
					{Key: "ce_specversion", Value: []byte("1.0")},
					{Key: "ce_id", Value: []byte("evt-1")},
					{Key: "ce_source", Value: []byte("urn:shop:orders")},
					{Key: "ce_type", Value: []byte("com.example.order.created")},
					{Key: "ce_time", Value: []byte("2024-01-01T00:00:00Z")},
					{Key: "ce_subject", Value: []byte("a b%")},
					{Key: "ce_traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
					{Key: "ce_bad name", Value: []byte("x")},
					{Key: "ce_my-ext", Value: []byte("y")},
					{Key: "ce_a.b", Value: []byte("z")},
					{Key: "content-type", Value: []byte("application/cloudevents+json; charset=utf-8")},
				},
			},
			want: map[string][]string{
				"Content-Type":   {"application/cloudevents+json; charset=utf-8"},
				"Ce-Specversion": {"1.0"},
				"Ce-Id":          {"evt-1"},
				"Ce-Source":      {"urn:shop:orders"},
				"Ce-Type":        {"com.example.order.created"},
				"Ce-Time":        {"2024-01-01T00:00:00Z"},
				"Ce-Subject":     {"a%20b%25"},
				"Ce-Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
				// not an attribute's name (lower-case letters and digits
				// only): a record header like any other, not ce-my-ext,
				// which a CloudEvents receiver refuses
				"Kafka-Header-Ce_bad%20name": {"x"},
				"Kafka-Header-Ce_my-Ext":     {"y"},
				"Kafka-Header-Ce_a.b":        {"z"},
			},
		},
		{
			name: "record with some ce_ headers only",
			rec: target.Record{
				Topic: "t", Offset: 1, Timestamp: ts,
				Headers: []target.Header{{Key: "ce_type", Value: []byte("com.example.x")}},
			},
			want: map[string][]string{
				"Ce-Specversion": {"1.0"},
				"Ce-Id":          {"t-0-1"},
				"Ce-Source":      {"/kafka/t"},
				"Ce-Type":        {"com.example.x"},
				"Ce-Time":        {"2024-01-02T02:04:05.123Z"},
			},
		},
		{
			name: "hostile record headers",
			rec: target.Record{
				Topic: "t", Offset: 1,
				Headers: []target.Header{
					{Key: "bad name", Value: []byte("escaped")},
					{Key: "bad\r\nname", Value: []byte("escaped")},
					{Key: "100%", Value: []byte("escaped")},
					{Key: "é/ü", Value: []byte{0xfe}},
					{Key: "", Value: []byte("empty name")},
					{Key: "ctl", Value: []byte("a\r\nInjected: yes")},
					{Key: "binary", Value: []byte{0x00, 0xff}},
					{Key: "padded", Value: []byte(" x ")},
					{Key: "unicode", Value: []byte("✓ ok")},
					{Key: "repeat", Value: []byte("1")},
					{Key: "repeat", Value: []byte("2")},
					{Key: "x_under", Value: []byte("u")},
					{Key: "empty", Value: nil},
					{Key: "Content-Type", Value: []byte("bad\nvalue")},
				},
			},
			want: map[string][]string{
				"Content-Type":                 {"application/octet-stream"},
				"Kafka-Header-Bad%20name":      {"escaped"},
				"Kafka-Header-Bad%0d%0aname":   {"escaped"},
				"Kafka-Header-100%25":          {"escaped"},
				"Kafka-Header-%c3%a9%2f%c3%bc": {"/g=="},
				"Kafka-Header-":                {"empty name"},
				"Kafka-Header-Ctl":             {base64.StdEncoding.EncodeToString([]byte("a\r\nInjected: yes"))},
				"Kafka-Header-Binary":          {"AP8="},
				"Kafka-Header-Padded":          {"IHgg"},
				"Kafka-Base64-Headers":         {"%C3%A9%2F%C3%BC, ctl, binary, padded"},
				"Kafka-Header-Unicode":         {"✓ ok"},
				"Kafka-Header-Repeat":          {"1", "2"},
				"Kafka-Header-X_under":         {"u"},
				"Kafka-Header-Empty":           {""},
			},
		},
		{
			name: "encoding flags",
			rec: target.Record{
				Topic: "t", Offset: 1,
				Headers: []target.Header{
					{Key: "blob-encoding", Value: []byte("base64")}, // a record header like any other
					{Key: "blob", Value: []byte{0x01}},
					{Key: "blob", Value: []byte{0x02}}, // listed once
					{Key: "data-encoding", Value: []byte("gzip")},
					{Key: "data", Value: []byte{0x03}},
					{Key: "mixed", Value: []byte("/w==")}, // valid as is, but its name has a value that is not
					{Key: "Mixed", Value: []byte{0xff}},   // the same field for HTTP
					{Key: "plain", Value: []byte("p")},
				},
			},
			want: map[string][]string{
				"Kafka-Header-Blob-Encoding": {"base64"},
				"Kafka-Header-Blob":          {"AQ==", "Ag=="},
				"Kafka-Header-Data-Encoding": {"gzip"},
				"Kafka-Header-Data":          {"Aw=="},
				"Kafka-Header-Mixed":         {"L3c9PQ==", "/w=="},
				"Kafka-Header-Plain":         {"p"},
				"Kafka-Base64-Headers":       {"blob, data, mixed"},
			},
		},
		{
			name:   "forward_headers off",
			change: func(o *Options) { o.Config.ForwardHeaders = &no },
			rec: target.Record{
				Topic: "t", Offset: 1,
				Headers: []target.Header{
					{Key: "x-tenant", Value: []byte("acme")},
					{Key: "content-type", Value: []byte("text/plain")},
					{Key: "ce_type", Value: []byte("com.example.x")},
				},
			},
			want: map[string][]string{"Content-Type": {"text/plain"}, "Ce-Type": {"com.example.x"}},
		},
		{
			name: "configured Content-Type and User-Agent",
			change: func(o *Options) {
				o.Config.Headers = map[string]string{"content-type": "application/json", "user-agent": "billing-bridge", "X-Env": "prod"}
			},
			rec:  target.Record{Topic: "t", Offset: 1},
			want: map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"billing-bridge"}, "X-Env": {"prod"}},
		},
		{
			name: "record content type beats the configured one",
			change: func(o *Options) {
				o.Config.Headers = map[string]string{"Content-Type": "application/json"}
			},
			rec:  target.Record{Topic: "t", Offset: 1, Headers: []target.Header{{Key: "Content-Type", Value: []byte("text/csv")}}},
			want: map[string][]string{"Content-Type": {"text/csv"}},
		},
	}

	// Defaults every case expects unless it says otherwise.
	base := func(rec *target.Record, att int) map[string][]string {
		h := map[string][]string{
			"Content-Type":       {"application/octet-stream"},
			"User-Agent":         {"hookbridge/1.2.3"},
			"Hookbridge-Attempt": {itoa(att)},
			"Kafka-Topic":        {rec.Topic},
			"Kafka-Partition":    {itoa(int(rec.Partition))},
			"Kafka-Offset":       {itoa(int(rec.Offset))},
			"Ce-Specversion":     {"1.0"},
			"Ce-Id":              {rec.ID()},
			"Ce-Source":          {"/kafka/" + rec.Topic},
			"Ce-Type":            {"dev.hookbridge.kafka.record"},
		}
		if !rec.Timestamp.IsZero() {
			h["Ce-Time"] = []string{rec.Timestamp.UTC().Format(time.RFC3339Nano)}
		}
		if rec.Value == nil {
			h["Kafka-Tombstone"] = []string{"true"}
		}
		return h
	}

	keyA, _ := signing.ParseSecret(secretA)
	keyB, _ := signing.ParseSecret(secretB)
	// Both ways a request is written: the direct path, and a round tripper.
	for _, tt := range tests {
		for path, pathChange := range map[string]func(*Options){"direct": nil, "round tripper": roundTripper} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				srv, reqs := receiver(t, nil)
				tg := newTarget(t, srv.URL+"/hooks/orders", func(o *Options) {
					o.Config.SigningSecrets = []string{secretA, secretB}
					if tt.change != nil {
						tt.change(o)
					}
					if pathChange != nil {
						pathChange(o)
					}
				})
				if (tg.direct != nil) != (path == "direct") {
					t.Fatalf("direct path: %v", tg.direct != nil)
				}
				att := max(tt.att, 1)
				if _, err := tg.Deliver(t.Context(), &target.Delivery{Route: "r", Record: &tt.rec, Attempt: att}); err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				got := next(t, reqs)

				if got.method != http.MethodPost || got.path != "/hooks/orders" {
					t.Errorf("request = %s %s, want POST /hooks/orders", got.method, got.path)
				}
				if string(got.body) != string(tt.rec.Value) {
					t.Errorf("body = %q, want %q", got.body, tt.rec.Value)
				}

				// The Standard Webhooks headers, checked by a receiver holding either secret.
				id, stamp, sig := got.header.Get("webhook-id"), got.header.Get("webhook-timestamp"), got.header.Get("webhook-signature")
				if id != tt.rec.ID() || stamp != "1700000000" {
					t.Errorf("webhook-id, webhook-timestamp = %q, %q; want %q, 1700000000", id, stamp, tt.rec.ID())
				}
				if n := len(strings.Fields(sig)); n != 2 {
					t.Errorf("webhook-signature %q holds %d signatures, want 2", sig, n)
				}
				for _, key := range [][]byte{keyA, keyB} {
					if err := signing.Verify([][]byte{key}, id, stamp, sig, got.body, fixedNow, 0); err != nil {
						t.Errorf("signing.Verify: %v", err)
					}
				}

				want := base(&tt.rec, att)
				for k, v := range tt.want {
					want[k] = v
				}
				want["Webhook-Id"] = []string{id}
				want["Webhook-Timestamp"] = []string{stamp}
				want["Webhook-Signature"] = []string{sig}
				gotHeader := map[string][]string(got.header.Clone())
				for _, k := range transportHeaders {
					delete(gotHeader, k)
				}
				if !reflect.DeepEqual(gotHeader, want) {
					t.Errorf("headers differ\n got: %v\nwant: %v", sorted(gotHeader), sorted(want))
				}
			})
		}
	}
}

func TestAttemptHeader(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	for _, tt := range []struct {
		attempt int
		want    string
	}{{0, "1"}, {1, "1"}, {7, "7"}} {
		if _, err := tg.Deliver(t.Context(), &target.Delivery{Record: record(), Attempt: tt.attempt}); err != nil {
			t.Fatal(err)
		}
		if got := next(t, reqs).header.Get("hookbridge-attempt"); got != tt.want {
			t.Errorf("attempt %d: hookbridge-attempt = %q, want %q", tt.attempt, got, tt.want)
		}
	}
}

func TestNoSignatureWithoutSecrets(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header; got.Get("webhook-id") == "" || got.Values("webhook-signature") != nil {
		t.Errorf("webhook-id %q, webhook-signature %q: want an id and no signature", got.Get("webhook-id"), got.Values("webhook-signature"))
	}
}

func TestCEEncode(t *testing.T) {
	tests := map[string]string{
		"":                     "",
		"urn:x:y/z?q=1#f":      "urn:x:y/z?q=1#f",
		"2024-01-01T00:00:00Z": "2024-01-01T00:00:00Z",
		"a b":                  "a%20b",
		`say "hi"`:             "say%20%22hi%22",
		"100%":                 "100%25",
		"é":                    "%C3%A9",
		"tab\there":            "tab%09here",
		"\x7f":                 "%7F",
	}
	for in, want := range tests {
		if got := ceEncode([]byte(in)); got != want {
			t.Errorf("ceEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderNameRules(t *testing.T) {
	for _, s := range []string{"a", "X-Tenant", "x_under", "a.b", "!#$%&'*+-.^_`|~09AZaz"} {
		if !validToken(s) {
			t.Errorf("validToken(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a:b", "a\nb", "ü", "a/b", "(x)"} {
		if validToken(s) {
			t.Errorf("validToken(%q) = true", s)
		}
	}
	for c := range 256 { // every byte, against RFC 9110's tchar
		b := byte(c)
		tchar := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
		if validToken(string([]byte{b})) != tchar {
			t.Errorf("validToken(%q) = %v, want %v", b, !tchar, tchar)
		}
	}
	for _, s := range []string{"webhook-id", "Webhook-Signature", "CE-ID", "ce-whatever", "kafka-topic", "Kafka-Header-X", "hookbridge-attempt", "traceparent", "Host", "Content-Length"} {
		if !reservedHeader(s) {
			t.Errorf("reservedHeader(%q) = false", s)
		}
	}
	for _, s := range []string{"Authorization", "X-Api-Key", "Content-Type", "User-Agent", "webhook"} {
		if reservedHeader(s) {
			t.Errorf("reservedHeader(%q) = true", s)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// sorted renders a header map in a stable order for failure messages.
func sorted(h map[string][]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("\n  " + k + ": " + strings.Join(h[k], " | "))
	}
	return b.String()
}

// A record in CloudEvents structured mode goes through as is: its body holds
// the attributes, so no binary-mode ce-* headers are added.
func TestStructuredCloudEventPassthrough(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	body := []byte(`{"specversion":"1.0","id":"evt-9","source":"urn:x","type":"t","data":{"a":1}}`)
	r := &target.Record{Topic: "t", Offset: 5, Value: body,
		Headers: []target.Header{{Key: "content-type", Value: []byte("application/cloudevents+json; charset=utf-8")}}}
	if _, err := deliver(t, t.Context(), tg, r); err != nil {
		t.Fatal(err)
	}
	got := next(t, reqs)
	if ct := got.header.Get("Content-Type"); ct != "application/cloudevents+json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	for k := range got.header {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			t.Fatalf("structured event got binary-mode header %s", k)
		}
	}
	if string(got.body) != string(body) {
		t.Fatalf("body changed: %s", got.body)
	}
	if got.header.Get("Webhook-Id") != "t-0-5" {
		t.Fatalf("webhook-id %q", got.header.Get("Webhook-Id"))
	}
}

// A structured-mode content type that cannot go as a header value (blanks
// around it) is not sent: the request carries application/octet-stream, and
// with it the binary-mode ce-* headers, as any record's does. It had
// neither the structured content type nor the ce-* headers: no CloudEvent
// at all for its receiver.
func TestStructuredContentTypeNotSentMeansBinaryMode(t *testing.T) {
	srv, reqs := receiver(t, nil)
	for path, change := range map[string]func(*Options){"direct": nil, "round tripper": roundTripper} {
		t.Run(path, func(t *testing.T) {
			tg := newTarget(t, srv.URL, change)
			r := &target.Record{Topic: "t", Offset: 5, Value: []byte(`{"specversion":"1.0"}`),
				Headers: []target.Header{{Key: "content-type", Value: []byte("application/cloudevents+json ")}}}
			if _, err := deliver(t, t.Context(), tg, r); err != nil {
				t.Fatal(err)
			}
			got := next(t, reqs)
			if ct := got.header.Get("Content-Type"); ct != defaultContentType {
				t.Fatalf("Content-Type %q, want %s", ct, defaultContentType)
			}
			if got.header.Get("Ce-Id") != "t-0-5" || got.header.Get("Ce-Specversion") != CESpecVersion {
				t.Fatalf("ce-id %q, ce-specversion %q: want the binary-mode headers of a request that is not structured",
					got.header.Get("Ce-Id"), got.header.Get("Ce-Specversion"))
			}
		})
	}
}

// The debug line about a record's header (a content-type that cannot be a
// header value) carries the record's trace ids, on the direct path and
// through http.Client (with a bearer token) alike.
func TestHeaderDebugLinesCarryTraceIDs(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)
	for _, token := range []string{"", "s3cret"} {
		srv, reqs := receiver(t, nil)
		var logs bytes.Buffer
		tg := newTarget(t, srv.URL, func(o *Options) {
			o.Logger = telemetry.NewLogger(&logs, "json", "debug")
			o.Config.BearerToken = token
		})
		rec := record()
		rec.Headers = []target.Header{{Key: "content-type", Value: []byte("text/plain\x01")}}
		if _, err := deliver(t, ctx, tg, rec); err != nil {
			t.Fatal(err)
		}
		next(t, reqs)
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("token %q: %d log lines, want 1:\n%s", token, len(lines), logs.String())
		}
		for _, line := range lines {
			if !strings.Contains(line, `"trace_id":"`+sc.TraceID().String()+`"`) {
				t.Errorf("token %q: line without the record's trace id: %s", token, line)
			}
		}
	}
}

// A record with tens of thousands of headers whose values must go as base64
// reaches the receiver whole, within a 1 s request timeout: building its
// request is the bridge's time, not the receiver's, and takes time in
// proportion to the headers (it took seconds, quadratic in them, and every
// attempt timed out before a byte was sent, charged to a healthy receiver).
func TestManyBinaryHeadersReachTheReceiver(t *testing.T) {
	const n = 30_000
	for _, tc := range []struct {
		name   string
		change func(*Options)
	}{{"direct", nil}, {"http.Client", func(o *Options) { o.Config.BearerToken = "s3cret" }}} {
		t.Run(tc.name, func(t *testing.T) {
			reqs := make(chan http.Header, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reqs <- r.Header.Clone()
			}))
			srv.Config.MaxHeaderBytes = 4 << 20
			srv.Start()
			t.Cleanup(srv.Close)
			tg := newTarget(t, srv.URL, func(o *Options) {
				o.Config.Timeout = config.Duration(time.Second)
				if tc.change != nil {
					tc.change(o)
				}
			})
			rec := record()
			for i := range n {
				rec.Headers = append(rec.Headers, target.Header{Key: fmt.Sprintf("h%d", i), Value: []byte{0xff}})
			}
			if _, err := deliver(t, t.Context(), tg, rec); err != nil {
				t.Fatal(err)
			}
			h := <-reqs
			if got := len(strings.Split(h.Get("Kafka-Base64-Headers"), ", ")); got != n {
				t.Errorf("kafka-base64-headers lists %d names, want %d", got, n)
			}
			for _, i := range []int{0, n / 2, n - 1} {
				if v := h.Get(fmt.Sprintf("Kafka-Header-H%d", i)); v != "/w==" {
					t.Errorf("kafka-header-h%d = %q, want /w==", i, v)
				}
			}
		})
	}
}
