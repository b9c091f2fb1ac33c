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
