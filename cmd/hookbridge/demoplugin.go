package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hookbridge/hookbridge/sdk"
)

// demoPluginCommand is the hidden subcommand under which the binary serves
// as the demo's plugin: a real plugin process, started and supervised by the
// bridge over go-plugin's gRPC protocol like any other.
const demoPluginCommand = "demo-plugin"

func cmdDemoPlugin() int {
	if err := sdk.Serve(sdk.HandlerFunc(demoEnrich)); err != nil {
		fmt.Fprintln(os.Stderr, "demo-plugin:", err)
		return exitFailed
	}
	return exitOK
}

// demoEnrich adds the order's total with tax and replies with it; a value
// that is not a JSON object with a numeric amount is a permanent failure.
func demoEnrich(_ context.Context, msg *sdk.Message) (*sdk.Result, error) {
	var order map[string]any
	if err := json.Unmarshal(msg.Value, &order); err != nil {
		return nil, sdk.Permanent(fmt.Errorf("%s: not JSON: %w", msg.ID, err))
	}
	amount, ok := order["amount"].(float64)
	if !ok {
		return nil, sdk.Permanent(fmt.Errorf("%s: amount is not a number", msg.ID))
	}
	order["total_with_tax"] = float64(int(amount*1.2*100+0.5)) / 100
	order["enriched_by"] = "demo-plugin"
	order["source"] = msg.ID
	out, err := json.Marshal(order)
	if err != nil {
		return nil, sdk.Permanent(err)
	}
	return &sdk.Result{Outputs: []sdk.Output{{Value: out}}}, nil
}
