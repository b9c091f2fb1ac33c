package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// A plugin's main: a handler that upper-cases values and replies with them.
// (Serve only works when Hookbridge starts the program.)
func ExampleServe() {
	h := sdk.HandlerFunc(func(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
		return &sdk.Result{Outputs: []sdk.Output{{Value: bytes.ToUpper(msg.Value)}}}, nil
	})
	if err := sdk.Serve(h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// A handler and a call to it over the real gRPC path, as a unit test would
// make it with sdktest.
func Example() {
	h := sdk.HandlerFunc(func(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
		var order struct {
			ID    int     `json:"id"`
			Total float64 `json:"total"`
		}
		if err := json.Unmarshal(msg.Value, &order); err != nil {
			return nil, sdk.Permanent(fmt.Errorf("%s: not an order: %w", msg.ID, err))
		}
		reply, _ := json.Marshal(map[string]any{"id": order.ID, "vat": order.Total * 0.2})
		return &sdk.Result{Outputs: []sdk.Output{{Topic: "orders.vat", Value: reply}}}, nil
	})

	srv, err := sdktest.Start(h)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	res, err := srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Offset: 7, Value: []byte(`{"id":7,"total":50}`)})
	fmt.Println(res.Outputs[0].Topic, string(res.Outputs[0].Value), err)
	_, err = srv.Handle(context.Background(), &sdk.Message{Topic: "orders", Offset: 8, Value: []byte(`oops`)})
	fmt.Println(sdk.IsPermanent(err), err)
	// Output:
	// orders.vat {"id":7,"vat":10} <nil>
	// true orders-0-8: not an order: invalid character 'o' looking for beginning of value
}

// Permanent sends a record that can never succeed to the dead-letter topic
// at once, instead of retrying it.
func ExamplePermanent() {
	err := sdk.Permanent(errors.New("schema version 1 is no longer supported"))
	fmt.Println(sdk.IsPermanent(err), err)
	// Output: true schema version 1 is no longer supported
}

// RetryAfter asks the bridge to wait before the next attempt, when the
// downstream said when to come back.
func ExampleRetryAfter() {
	err := sdk.RetryAfter(30*time.Second, errors.New("rate limited"))
	d, ok := sdk.RetryAfterOf(err)
	fmt.Println(d, ok, sdk.IsPermanent(err))
	// Output: 30s true false
}

// Message.Header finds a record header; the last one wins when a key repeats.
func ExampleMessage_Header() {
	msg := &sdk.Message{Headers: []sdk.Header{{Key: "v", Value: []byte("1")}, {Key: "v", Value: []byte("2")}}}
	v, ok := msg.Header("v")
	fmt.Println(string(v), ok)
	// Output: 2 true
}
