package webhook

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/hookbridge/hookbridge/bridge/target"
	sdk "github.com/hookbridge/hookbridge/sdk/webhook"
)

// FuzzRequestHeader builds the request of a record with arbitrary key,
// header names and values (any bytes: invalid UTF-8, CR, LF, NUL) on both
// paths: the direct path's header lines (lineSink) and the round tripper's
// http.Header (mapSink). The direct path's request must be well-formed
// HTTP/1.1: every line a "Name: value" with a token name and a value with
// no control character, read back by http.ReadRequest as the round tripper's
// header, whose fields net/http would write (httpguts). What the contract
// promises must hold for a receiver decoding it with sdk/webhook: the key,
// the forwarded headers and the ce_* attributes come back byte for byte (a
// key that is not UTF-8 as base64, flagged by kafka-key-encoding), and the
// signature verifies.
func FuzzRequestHeader(f *testing.F) {
	type seed struct {
		key     []byte
		nullKey bool
		names   [3]string
		values  [3][]byte
		forward bool
		millis  int64
	}
	for _, s := range []seed{
		{key: []byte("user-1"), names: [3]string{"content-type", "x-tenant", "traceparent"},
			values:  [3][]byte{[]byte("application/json"), []byte("acme"), []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			forward: true, millis: 1700000000123},
		{nullKey: true, forward: true},
		{key: []byte{}, forward: true, millis: -1},
		{key: []byte{0xff, 0xfe, 'x'}, names: [3]string{"blob", "BLOB", "blob"},
			values: [3][]byte{{0, 1}, []byte("text"), []byte(" padded ")}, forward: true},
		{key: []byte("a\r\nInjected: yes"), names: [3]string{"x\r\nInjected", "ce_id", "ce_Subject"},
			values: [3][]byte{[]byte("v\r\nInjected: yes"), []byte("evt 1"), []byte("a\"b%c\xff")}, forward: true},
		{key: []byte("\x00"), names: [3]string{"", "user id", "100%"},
			values: [3][]byte{[]byte("\x00"), []byte("a\tb"), []byte("é")}, forward: true},
		{key: []byte(" k "), names: [3]string{"ce_specversion", "ce_a b", "Content-Type"},
			values: [3][]byte{[]byte("1.0"), []byte("x"), []byte("application/cloudevents+json")}, forward: true},
		{key: []byte("k"), names: [3]string{"ce_time", "ce_", "ce_type"},
			values: [3][]byte{[]byte("2026-11-26T07:00:00Z"), []byte("\x7f"), nil}, forward: false, millis: 253402300800000},
		{key: []byte("k"), names: [3]string{"ce_my-ext", "ce_x.y", "CE_Ext1"},
			values: [3][]byte{[]byte("a"), []byte("b"), []byte("c")}, forward: true},
		{key: []byte("日本"), names: [3]string{"tracestate", "ÄB", "äb"},
			values: [3][]byte{[]byte("v=1"), []byte("1"), []byte("\xc0")}, forward: true},
	} {
		f.Add(s.key, s.nullKey, s.names[0], s.values[0], s.names[1], s.values[1], s.names[2], s.values[2], s.forward, s.millis)
	}

	targets := map[bool]*Target{}
	for _, forward := range []bool{true, false} {
		targets[forward] = newTarget(f, "http://127.0.0.1:9/hook?q=1", func(o *Options) {
			o.Config.SigningSecrets = []string{secretA, secretB}
			o.Config.Headers = map[string]string{"X-Env": "prod"}
			o.Config.ForwardHeaders = &forward
		})
	}

	f.Fuzz(func(t *testing.T, key []byte, nullKey bool, n1 string, v1 []byte, n2 string, v2 []byte, n3 string, v3 []byte, forward bool, millis int64) {
		rec := &target.Record{Topic: "orders.v1", Partition: 3, Offset: 42, Key: key, Value: []byte(`{"a":1}`),
			Headers: []target.Header{{Key: n1, Value: v1}, {Key: n2, Value: v2}, {Key: n3, Value: v3}}}
		if nullKey {
			rec.Key = nil
		} else if rec.Key == nil {
			rec.Key = []byte{} // an empty key is not a null key
		}
		if millis != 0 {
			rec.Timestamp = time.UnixMilli(millis)
		}
		tg := targets[forward]
		ts := fixedNow.Unix()

		// The direct path, as deliverDirect writes it.
		var line lineSink
		line.buf = append(line.buf, tg.head...)
		line.buf = append(line.buf, "Content-Length: 7\r\n"...)
		tg.header(t.Context(), &line, rec, 1, ts)
		if line.err != nil {
			t.Fatalf("the direct path refuses the record: %v", line.err)
		}
		line.buf = append(line.buf, "\r\n"...)
		head := slices.Clone(line.buf)
		checkHeadLines(t, head)
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(head, rec.Value...))))
		if err != nil {
			t.Fatalf("net/http cannot read the request: %v\n%q", err, head)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(body, rec.Value) {
			t.Fatalf("body %q (%v), want %q", body, err, rec.Value)
		}

		// The round tripper's header: the same fields, which net/http
		// would write as they are.
		mapped := http.Header{}
		tg.header(t.Context(), &mapSink{h: mapped}, rec, 1, ts)
		for name, vs := range mapped {
			if !httpguts.ValidHeaderFieldName(name) {
				t.Fatalf("round tripper: invalid field name %q", name)
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) || strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("round tripper: invalid value %q of %s", v, name)
				}
			}
		}
		got := req.Header.Clone()
		got.Del("Content-Length")
		for _, vs := range mapped {
			for i, v := range vs {
				// As on the wire: a value's surrounding spaces are not
				// part of it (kafka-base64-headers ends with ", " when
				// the empty name is listed last).
				vs[i] = strings.Trim(v, " \t")
			}
		}
		if !reflect.DeepEqual(got, mapped) {
			t.Fatalf("header fields differ\n direct:        %q\n round tripper: %q", got, mapped)
		}

		checkContract(t, rec, forward, req.Header, body)
	})
}

// checkHeadLines checks that head is a request line and header lines, each
// ending with CRLF, then an empty line: no CR or LF elsewhere, a token for
// every name, and no control character but tab in a value.
func checkHeadLines(t *testing.T, head []byte) {
	t.Helper()
	rest, ok := bytes.CutSuffix(head, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("the header does not end with an empty line: %q", head)
	}
	lines := strings.Split(string(rest), "\r\n")
	if lines[0] != "POST /hook?q=1 HTTP/1.1" {
		t.Fatalf("request line %q", lines[0])
	}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ": ")
		if !ok || !validToken(name) || !validHeaderValue(value) {
			t.Fatalf("malformed header line %q in\n%q", l, head)
		}
	}
}

// checkContract decodes the request as a receiver does and compares with the
// record.
func checkContract(t *testing.T, rec *target.Record, forward bool, h http.Header, body []byte) {
	t.Helper()
	d, err := sdk.DecodeDelivery(h, body)
	if err != nil {
		t.Fatalf("sdk/webhook cannot decode the request: %v\n%q", err, h)
	}
	if d.ID != rec.ID() || d.Topic != rec.Topic || d.Partition != rec.Partition || d.Offset != rec.Offset {
		t.Fatalf("coordinates %s %s/%d@%d, want %s", d.ID, d.Topic, d.Partition, d.Offset, rec.ID())
	}
	v, err := sdk.NewVerifier([]string{secretB}, sdk.WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyPayload(h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature), body); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}

	// The key: absent for a null key, else byte for byte; one that is not
	// UTF-8 (or not a value HTTP keeps as is) goes as base64.
	if (d.Key == nil) != (rec.Key == nil) || !bytes.Equal(d.Key, rec.Key) {
		t.Fatalf("key %q, want %q (sent as %q, %s %q)", d.Key, rec.Key, h.Values("Kafka-Key"),
			HeaderKafkaKeyEncoding, h.Get(HeaderKafkaKeyEncoding))
	}
	if rec.Key != nil && !utf8.Valid(rec.Key) {
		sent, err := base64.StdEncoding.DecodeString(h.Get(HeaderKafkaKey))
		if h.Get(HeaderKafkaKeyEncoding) != EncodingBase64 || err != nil || !bytes.Equal(sent, rec.Key) {
			t.Fatalf("key %q not sent as base64: %q, %s %q", rec.Key, h.Get(HeaderKafkaKey),
				HeaderKafkaKeyEncoding, h.Get(HeaderKafkaKeyEncoding))
		}
	}

	// The record's headers: content-type, traceparent, tracestate and ce_*
	// mapped, the others forwarded, under names percent-encoded and lower
	// case (HTTP keeps no case).
	var want []sdk.Header
	var contentType []byte
	ce := map[string]string{}
	for _, rh := range rec.Headers {
		switch {
		case strings.EqualFold(rh.Key, recordContentType):
			contentType = rh.Value
		case strings.EqualFold(rh.Key, recordTraceparent), strings.EqualFold(rh.Key, recordTracestate):
		case len(rh.Key) > len(recordCEPrefix) && strings.EqualFold(rh.Key[:3], recordCEPrefix) && ceAttribute(rh.Key[3:]):
			ce[strings.ToLower(rh.Key[3:])] = string(rh.Value)
		case forward:
			want = append(want, sdk.Header{Key: asciiLower(rh.Key), Value: rh.Value})
		}
	}
	// sdk/webhook gives them in the order of their names, values of one
	// name in order.
	slices.SortStableFunc(want, func(a, b sdk.Header) int {
		return strings.Compare(escapedLower(a.Key), escapedLower(b.Key))
	})
	if !sameHeaders(d.Headers, want) {
		t.Fatalf("record headers %q, want %q\nrequest: %q", d.Headers, want, h)
	}
	if ct := h.Get("Content-Type"); len(contentType) > 0 && safeValue(contentType) && ct != string(contentType) ||
		!(len(contentType) > 0 && safeValue(contentType)) && ct != defaultContentType {
		t.Fatalf("Content-Type %q, record's %q", ct, contentType)
	}
	if len(ce) == 0 && len(contentType) > 0 && safeValue(contentType) && structuredCloudEvent(contentType) {
		if d.CloudEvent.SpecVersion != "" || d.CloudEvent.Extensions != nil {
			t.Fatalf("a structured CloudEvent got ce-* fields: %q", h)
		}
		return
	}
	for attr, v := range ce {
		var got string
		switch attr {
		case "specversion":
			got = d.CloudEvent.SpecVersion
		case "id":
			got = d.CloudEvent.ID
		case "source":
			got = d.CloudEvent.Source
		case "type":
			got = d.CloudEvent.Type
		case "time":
			continue // sdk/webhook keeps it only when it is RFC 3339
		default:
			got = d.CloudEvent.Extensions[attr]
		}
		if got != v {
			t.Fatalf("ce_%s %q, the receiver reads %q (sent as %q)", attr, v, got, h.Values("Ce-"+attr))
		}
	}
}

// sameHeaders compares record headers, a nil value and an empty one alike
// (HTTP cannot tell them apart).
func sameHeaders(a, b []sdk.Header) bool {
	return slices.EqualFunc(a, b, func(x, y sdk.Header) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) })
}

// asciiLower lowers the ASCII letters of s, the case HTTP does not keep; its
// other bytes go percent-encoded and keep theirs.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// escapedLower is the name sdk/webhook sorts a record header by: what
// follows kafka-header- in lower case.
func escapedLower(name string) string {
	return strings.ToLower(strings.TrimPrefix(forwardedName(name), HeaderKafkaHeaderPrefix))
}
