// Command plugin-go is the smallest useful Hookbridge plugin: it adds two
// fields to every JSON object it receives and replies with the result,
// which the bridge produces to the route's reply topic.
//
//	{"order": 42}  →  {"order": 42, "enriched_by": "plugin-go", "source_id": "orders-0-17"}
//
// A null value (a tombstone, the delete of a compacted topic) is passed on:
// the reply is a tombstone with the same key. A value that is not a JSON
// object is a permanent error: the record is dead-lettered. With
// ENRICH_ACK_ONLY=1 in its env the plugin acknowledges
// every record without a reply (for benchmarks of the plugin path).
//
// Build it and name it in the bridge's configuration:
//
//	go build -o bin/plugin-go ./examples/plugin-go
//
//	plugins:
//	  enrich:
//	    command: ["./bin/plugin-go"]
//	routes:
//	  - name: enrich-orders
//	    topics: ["orders"]
//	    target: {plugin: enrich}
//	    reply: {topic: orders.enriched}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hookbridge/hookbridge/sdk"
)

func main() {
	h := &enricher{ackOnly: os.Getenv("ENRICH_ACK_ONLY") == "1"}
	if err := sdk.Serve(h); err != nil {
		fmt.Fprintln(os.Stderr, "plugin-go:", err)
		os.Exit(1)
	}
}

// enricher adds "enriched_by" and "source_id" to JSON objects.
type enricher struct {
	ackOnly bool
}

func (e *enricher) Handle(_ context.Context, msg *sdk.Message) (*sdk.Result, error) {
	if e.ackOnly {
		return &sdk.Result{}, nil
	}
	if msg.Value == nil {
		// A tombstone: the key was deleted, so its enriched version is
		// too. An output with a nil Value is produced as a tombstone, and
		// its nil Key is the record's own.
		return &sdk.Result{Outputs: []sdk.Output{{}}}, nil
	}
	// The members stay as they were written: decoded into Go values,
	// numbers would become float64 and integers above 2^53 would change.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(msg.Value, &obj); err != nil {
		return nil, sdk.Permanent(fmt.Errorf("plugin-go: %s is not a JSON object: %w", msg.ID, err))
	}
	if obj == nil {
		return nil, sdk.Permanent(fmt.Errorf("plugin-go: %s is not a JSON object: null", msg.ID))
	}
	obj["enriched_by"] = json.RawMessage(`"plugin-go"`)
	id, _ := json.Marshal(msg.ID)
	obj["source_id"] = id
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, sdk.Permanent(fmt.Errorf("plugin-go: %s: %w", msg.ID, err))
	}
	return &sdk.Result{Outputs: []sdk.Output{{
		Value:   out,
		Headers: []sdk.Header{{Key: "content-type", Value: []byte("application/json")}},
	}}}, nil
}
