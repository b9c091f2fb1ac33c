package webhook

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// cloudEventHeaders returns a record's Kafka-binding ce_* headers of a
// CloudEvent in binary mode, plus the extra name/value pairs.
func cloudEventHeaders(extra ...string) []target.Header {
	kv := append([]string{"ce_specversion", "1.0", "ce_id", "evt-1", "ce_source", "/shop", "ce_type", "shop.order"}, extra...)
	var out []target.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, target.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// The HTTP binding carries datacontenttype as Content-Type only: a
// ce-datacontenttype field is an extension named like a core attribute,
// which CloudEvents SDKs refuse (the Go SDK fails the whole event). A
// record whose producer wrote the attribute as ce_datacontenttype has it
// sent as Content-Type, unless the record has a content-type of its own,
// which the Kafka binding says is datacontenttype.
func TestCEDataContentTypeIsContentType(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, nil)
	cases := []struct {
		name    string
		headers []target.Header
		want    string
	}{
		{"ce_datacontenttype alone", cloudEventHeaders("ce_datacontenttype", "application/json"), "application/json"},
		{"upper case name", cloudEventHeaders("CE_DataContentType", "text/plain; charset=utf-8"), "text/plain; charset=utf-8"},
		{"content-type wins", cloudEventHeaders("ce_datacontenttype", "text/plain", "content-type", "application/json"), "application/json"},
		{"content-type first", append([]target.Header{{Key: "content-type", Value: []byte("application/xml")}},
			cloudEventHeaders("ce_datacontenttype", "text/plain")...), "application/xml"},
	}
	for i, c := range cases {
		rec := &target.Record{Topic: "orders", Offset: int64(i), Value: []byte(`{"a":1}`), Headers: c.headers}
		if _, err := deliver(t, t.Context(), tg, rec); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		req := next(t, reqs)
		if got := req.header.Get("Content-Type"); got != c.want {
			t.Errorf("%s: Content-Type %q, want %q", c.name, got, c.want)
		}
		if vs, ok := req.header["Ce-Datacontenttype"]; ok {
			t.Errorf("%s: the request has ce-datacontenttype %q, which no binary-mode receiver takes", c.name, vs)
		}
		if req.header.Get("Ce-Id") != "evt-1" || req.header.Get("Ce-Type") != "shop.order" {
			t.Errorf("%s: the event's own attributes were not kept: %v", c.name, req.header)
		}
	}
}

// In a batch, datacontenttype is the record's content-type, else its
// ce_datacontenttype: a JSON value declared so goes as data.
func TestBatchCEDataContentType(t *testing.T) {
	srv, reqs := receiver(t, nil)
	recs := []*target.Record{
		{Topic: "orders", Offset: 1, Value: []byte(`{"a":1}`), Headers: cloudEventHeaders("ce_datacontenttype", "application/json")},
		{Topic: "orders", Offset: 2, Value: []byte(`<a/>`),
			Headers: cloudEventHeaders("ce_datacontenttype", "application/json", "content-type", "application/xml")},
	}
	tg := batchTarget(t, srv.URL, len(recs), "")
	byOffset := map[int64]batchEventIn{}
	for _, e := range deliverBatch(t, tg, reqs, recs) {
		byOffset[e.Offset] = e
	}
	if e := byOffset[1]; e.DataContentType != "application/json" || string(e.Data) != `{"a":1}` {
		t.Errorf("record 1: datacontenttype %q, data %s, data_base64 %q; want application/json and the JSON as data",
			e.DataContentType, e.Data, e.DataBase64)
	}
	if e := byOffset[2]; e.DataContentType != "application/xml" || e.DataBase64 == "" {
		t.Errorf("record 2: datacontenttype %q, data %s; want application/xml, as data_base64", e.DataContentType, e.Data)
	}
}

// An extension name is legal at any length (CloudEvents only advises 20
// characters at most): a batch carries it, as a single record's ce-* fields
// do.
func TestBatchKeepsLongExtensionNames(t *testing.T) {
	const long = "averyveryverylongextensionname" // 30 characters
	srv, reqs := receiver(t, nil)
	rec := &target.Record{Topic: "orders", Offset: 1, Value: []byte("x"), Headers: cloudEventHeaders("ce_"+long, "v1", "ce_tenant", "acme")}

	single := newTarget(t, srv.URL, nil)
	if _, err := deliver(t, t.Context(), single, rec); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Ce-" + long); got != "v1" {
		t.Fatalf("single record: ce-%s %q, want v1", long, got)
	}

	tg := batchTarget(t, srv.URL, 1, "")
	if _, err := deliver(t, t.Context(), tg, rec); err != nil {
		t.Fatal(err)
	}
	var evs []map[string]json.RawMessage
	if err := json.Unmarshal(next(t, reqs).body, &evs); err != nil || len(evs) != 1 {
		t.Fatalf("batch body: %v (%d events)", err, len(evs))
	}
	for name, want := range map[string]string{long: `"v1"`, "tenant": `"acme"`} {
		if got := string(evs[0][name]); got != want {
			t.Errorf("batch event: %s = %s, want %s (event %s)", name, got, want, strings.Join(slices.Sorted(maps.Keys(evs[0])), ","))
		}
	}
}

// A content type is JSON, for data rather than data_base64, as the
// CloudEvents JSON format counts it: */json and */*+json, with parameters.
func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		"text/json":                         true,
		"application/vnd.api+json":          true,
		"application/cloudevents+json; x=1": true,
		"":                                  false,
		"text/plain":                        false,
		"application/jsonl":                 false,
		"application/json-seq":              false,
		"application/x-json-stream":         false,
		"json":                              false,
	} {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}
