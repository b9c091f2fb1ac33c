package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

func TestEnrich(t *testing.T) {
	srv := sdktest.NewServer(t, &enricher{})
	res, err := srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Partition: 0, Offset: 17, Value: []byte(`{"order":42}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 {
		t.Fatalf("outputs = %d, want 1", len(res.Outputs))
	}
	var got map[string]any
	if err := json.Unmarshal(res.Outputs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"order": float64(42), "enriched_by": "plugin-go", "source_id": "orders-0-17"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if res.Outputs[0].Key != nil {
		t.Errorf("key = %q, want nil (the original record's key)", res.Outputs[0].Key)
	}
}

// The record's members go out as they came: numbers beyond float64's
// precision or range unchanged.
func TestEnrichKeepsTheMembersAsWritten(t *testing.T) {
	srv := sdktest.NewServer(t, &enricher{})
	in := `{"id":9007199254740993,"big":12345678901234567890,"x":1e400,"s":"a\u0000b"}`
	res, err := srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Offset: 3, Value: []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"big":12345678901234567890,"enriched_by":"plugin-go","id":9007199254740993,"s":"a\u0000b","source_id":"orders-0-3","x":1e400}`
	if got := string(res.Outputs[0].Value); got != want {
		t.Errorf("output\n %s\nwant\n %s", got, want)
	}
}

func TestEnrichRejectsNonObjects(t *testing.T) {
	srv := sdktest.NewServer(t, &enricher{})
	for _, v := range []string{`not json`, `[1,2]`, `null`, `"s"`} {
		_, err := srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Value: []byte(v)})
		if !sdk.IsPermanent(err) {
			t.Errorf("value %s: err = %v, want a permanent error", v, err)
		}
	}
}

func TestAckOnly(t *testing.T) {
	srv := sdktest.NewServer(t, &enricher{ackOnly: true})
	res, err := srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Value: []byte(`not even json`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 0 {
		t.Fatalf("outputs = %d, want none", len(res.Outputs))
	}
}
