package webhook

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// contract returns the headers the bridge sends for a plain record
// orders/3/42 with key "k1" (see bridge/webhook/headers.go).
func contract() http.Header {
	h := http.Header{}
	h.Set(HeaderID, "orders-3-42")
	h.Set(HeaderTimestamp, "1700000000")
	h.Set(HeaderSignature, "v1,xxx")
	h.Set(HeaderAttempt, "2")
	h.Set(HeaderKafkaTopic, "orders")
	h.Set(HeaderKafkaPartition, "3")
	h.Set(HeaderKafkaOffset, "42")
	h.Set(HeaderKafkaKey, "k1")
	h.Set("Content-Type", "application/json")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "orders-3-42")
	h.Set("ce-source", "/kafka/orders")
	h.Set("ce-type", "dev.hookbridge.kafka.record")
	h.Set("ce-time", "2024-05-06T07:08:09.123Z")
	return h
}

func TestDecodeDelivery(t *testing.T) {
	body := []byte(`{"n":1}`)
	d, err := DecodeDelivery(contract(), body)
	if err != nil {
		t.Fatal(err)
	}
	want := &Delivery{
		ID: "orders-3-42", Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k1"),
		ContentType: "application/json", Body: body, Attempt: 2, Timestamp: time.Unix(1700000000, 0),
		CloudEvent: CloudEvent{SpecVersion: "1.0", ID: "orders-3-42", Source: "/kafka/orders",
			Type: "dev.hookbridge.kafka.record", Time: time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got  %+v\nwant %+v", d, want)
	}
}

func TestDecodeDeliveryKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key, enc string
		set      bool
		want     []byte
	}{
		{"null key", "", "", false, nil},
		{"empty key", "", "", true, []byte{}},
		{"text key", "user-7", "", true, []byte("user-7")},
		{"binary key", "/wDeAd6+7w==", "base64", true, []byte{0xff, 0x00, 0xde, 0x01, 0xde, 0xbe, 0xef}},
		{"base64 key, encoding in upper case", "aGk=", "BASE64", true, []byte("hi")},
		{"empty base64 key", "", "base64", true, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := contract()
			h.Del(HeaderKafkaKey)
			if tc.set {
				h[http.CanonicalHeaderKey(HeaderKafkaKey)] = []string{tc.key}
			}
			if tc.enc != "" {
				h.Set(HeaderKafkaKeyEncoding, tc.enc)
			}
			d, err := DecodeDelivery(h, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (d.Key == nil) != (tc.want == nil) || string(d.Key) != string(tc.want) {
				t.Fatalf("key %#v, want %#v", d.Key, tc.want)
			}
		})
	}
}

func TestDecodeDeliveryHeaders(t *testing.T) {
	h := contract()
	h.Add("kafka-header-tenant", "acme")
	h.Add("kafka-header-tenant", "acme-2")
	h.Add("kafka-header-Blob", "AAH/")
	h.Set("kafka-header-blob-encoding", "base64") // a record header of that name, not a flag
	h.Set("kafka-header-charset-encoding", "utf-8")
	h.Add("kafka-header-mixed", "L3c9PQ==")
	h.Add("kafka-header-mixed", "/w==")
	h.Set("kafka-header-empty", "")
	h.Set("Kafka-Header-Bad%20name", "escaped")   // "bad name": not an HTTP token
	h.Set("Kafka-Header-100%25", "pct")           // "100%"
	h.Set("Kafka-Header-%c3%a9%2f%C3%BC", "/g==") // "é/ü", as a server canonicalises it
	h.Set("Kafka-Header-", "empty name")
	h.Set("kafka-base64-headers", "BLOB, mixed, %C3%A9%2F%C3%BC")
	h.Set("ce-subject", "order%2042") // percent-encoded, as the HTTP binding wants
	d, err := DecodeDelivery(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{
		{"", []byte("empty name")},
		{"é/ü", []byte{0xfe}}, // in the order of their escaped names
		{"100%", []byte("pct")},
		{"bad name", []byte("escaped")},
		{"blob", []byte{0, 1, 0xff}},
		{"blob-encoding", []byte("base64")},
		{"charset-encoding", []byte("utf-8")},
		{"empty", []byte{}},
		{"mixed", []byte("/w==")},
		{"mixed", []byte{0xff}},
		{"tenant", []byte("acme")},
		{"tenant", []byte("acme-2")},
	}
	if !reflect.DeepEqual(d.Headers, want) {
		t.Fatalf("headers %q, want %q", d.Headers, want)
	}
	if v, ok := d.Header("Tenant"); !ok || string(v) != "acme-2" {
		t.Fatalf("Header(Tenant) = %q %v, want the last value", v, ok)
	}
	if _, ok := d.Header("nope"); ok {
		t.Fatal("Header(nope) found something")
	}
	if got := d.CloudEvent.Extensions["subject"]; got != "order 42" {
		t.Fatalf("ce-subject decoded to %q", got)
	}
}

func TestDecodeDeliveryErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(http.Header)
	}{
		{"no topic", func(h http.Header) { h.Del(HeaderKafkaTopic) }},
		{"no partition", func(h http.Header) { h.Del(HeaderKafkaPartition) }},
		{"bad partition", func(h http.Header) { h.Set(HeaderKafkaPartition, "x") }},
		{"negative offset", func(h http.Header) { h.Set(HeaderKafkaOffset, "-1") }},
		{"no id", func(h http.Header) { h.Del(HeaderID) }},
		{"bad base64 key", func(h http.Header) { h.Set(HeaderKafkaKeyEncoding, "base64"); h.Set(HeaderKafkaKey, "%%%") }},
		{"unknown key encoding", func(h http.Header) { h.Set(HeaderKafkaKeyEncoding, "hex") }},
		{"bad base64 header", func(h http.Header) {
			h.Set("kafka-header-b", "%%%")
			h.Set("kafka-base64-headers", "b")
		}},
		{"bad escape in a name", func(h http.Header) { h.Set("kafka-header-a%zz", "x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := contract()
			tc.change(h)
			if _, err := DecodeDelivery(h, nil); !errors.Is(err, ErrDecode) {
				t.Fatalf("DecodeDelivery = %v, want ErrDecode", err)
			}
		})
	}
}
