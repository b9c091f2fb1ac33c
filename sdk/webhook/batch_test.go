package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// batchBody is a batch as the bridge sends it (bridge/webhook/batch.go): a
// JSON value, a binary value with a binary key, a record with a null key and
// no value, and a record that was a CloudEvent already.
const batchBody = `[
 {"specversion":"1.0","id":"orders-0-7","source":"/kafka/orders","type":"dev.hookbridge.kafka.record","time":"2024-05-06T07:08:09Z","datacontenttype":"application/json","data":{"n":1},"topic":"orders","partition":0,"offset":7,"key":"k1"},
 {"specversion":"1.0","id":"orders-1-8","source":"/kafka/orders","type":"dev.hookbridge.kafka.record","data_base64":"AAH/","topic":"orders","partition":1,"offset":8,"key":"/wA=","keyencoding":"base64"},
 {"specversion":"1.0","id":"orders-2-9","source":"/kafka/orders","type":"dev.hookbridge.kafka.record","topic":"orders","partition":2,"offset":9},
 {"specversion":"1.0","id":"evt-1","source":"/shop","type":"shop.order","datacontenttype":"text/plain","data_base64":"aGk=","topic":"orders","partition":2,"offset":10,"key":"k2","subject":"o-1"}
]`

func TestDecodeBatch(t *testing.T) {
	evs, err := DecodeBatch([]byte(batchBody))
	if err != nil {
		t.Fatal(err)
	}
	ce := func(id, source, typ string) CloudEvent {
		return CloudEvent{SpecVersion: "1.0", ID: id, Source: source, Type: typ}
	}
	first := ce("orders-0-7", "/kafka/orders", "dev.hookbridge.kafka.record")
	first.Time = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	last := ce("evt-1", "/shop", "shop.order")
	last.Extensions = map[string]string{"subject": "o-1"}
	want := []Event{
		{CloudEvent: first, Topic: "orders", Partition: 0, Offset: 7, Key: []byte("k1"),
			DataContentType: "application/json", Data: []byte(`{"n":1}`)},
		{CloudEvent: ce("orders-1-8", "/kafka/orders", "dev.hookbridge.kafka.record"), Topic: "orders", Partition: 1, Offset: 8,
			Key: []byte{0xff, 0}, Data: []byte{0, 1, 0xff}},
		{CloudEvent: ce("orders-2-9", "/kafka/orders", "dev.hookbridge.kafka.record"), Topic: "orders", Partition: 2, Offset: 9},
		{CloudEvent: last, Topic: "orders", Partition: 2, Offset: 10, Key: []byte("k2"),
			DataContentType: "text/plain", Data: []byte("hi")},
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("got  %+v\nwant %+v", evs, want)
	}
	// The id to answer with is the record's webhook-id, also for a record
	// that carried a CloudEvents id of its own.
	if id := evs[3].RecordID(); id != "orders-2-10" {
		t.Fatalf("RecordID = %s", id)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":            `[`,
		"not an array":        `{"topic":"t"}`,
		"no topic":            `[{"partition":0,"offset":1}]`,
		"no partition":        `[{"topic":"t","offset":1}]`,
		"offset not a number": `[{"topic":"t","partition":0,"offset":"1"}]`,
		"bad data_base64":     `[{"topic":"t","partition":0,"offset":1,"data_base64":"%%"}]`,
		"both data forms":     `[{"topic":"t","partition":0,"offset":1,"data":1,"data_base64":"AA=="}]`,
		"bad key encoding":    `[{"topic":"t","partition":0,"offset":1,"key":"x","keyencoding":"rot13"}]`,
		"key not a string":    `[{"topic":"t","partition":0,"offset":1,"key":5}]`,
	} {
		if _, err := DecodeBatch([]byte(body)); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v, want ErrDecode", name, err)
		}
	}
	if evs, err := DecodeBatch([]byte(`[]`)); err != nil || len(evs) != 0 {
		t.Fatalf("empty batch: %v %v", evs, err)
	}
}

// A batch has the batch content type and hookbridge-batch-size; a single
// record's request may have the content type (the record's own), never the
// size.
func TestIsBatch(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/cloudevents-batch+json":                true,
		"application/cloudevents-batch+json; charset=utf-8": true,
		"application/json":                                  false,
		"":                                                  false,
	} {
		if got := IsBatch(http.Header{"Content-Type": {ct}, http.CanonicalHeaderKey(HeaderBatchSize): {"3"}}); got != want {
			t.Errorf("IsBatch(%q, with %s) = %v", ct, HeaderBatchSize, got)
		}
		if IsBatch(http.Header{"Content-Type": {ct}}) {
			t.Errorf("IsBatch(%q, without %s) = true", ct, HeaderBatchSize)
		}
	}
}

func TestBatchResult(t *testing.T) {
	var r BatchResult
	b, _ := json.Marshal(r)
	if string(b) != `{"failed":[]}` {
		t.Fatalf("zero BatchResult = %s", b)
	}
	r.Fail(&Event{Topic: "t", Partition: 1, Offset: 2})
	r.FailID("t-0-5")
	w := httptest.NewRecorder()
	if err := r.Write(w); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || w.Body.String() != `{"failed":["t-1-2","t-0-5"]}` || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("Write: %d %s %q", w.Code, w.Body, w.Header())
	}
}
