package sdktest_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// echo replies with the message it got, and fails as the "fail" header says.
var echo = sdk.HandlerFunc(func(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
	switch v, _ := msg.Header("fail"); string(v) {
	case "permanent":
		return nil, sdk.Permanent(errors.New("bad"))
	case "retry-after":
		return nil, sdk.RetryAfter(1500*time.Millisecond, errors.New("later"))
	case "plain":
		return nil, errors.New("flaky")
	case "panic":
		panic("oh no")
	}
	return &sdk.Result{Outputs: []sdk.Output{
		{Topic: msg.Route, Key: msg.Key, Value: msg.Value, Headers: msg.Headers},
		{Value: []byte(msg.ID)},
	}}, nil
})

func TestHandleOverGRPC(t *testing.T) {
	srv := sdktest.NewServer(t, echo, sdktest.WithRoute("r1"))
	if err := srv.Healthy(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte("v"),
		Headers: []sdk.Header{{Key: "h", Value: []byte("1")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 2 {
		t.Fatalf("outputs = %+v", res.Outputs)
	}
	o := res.Outputs[0]
	if o.Topic != "r1" || string(o.Key) != "k" || string(o.Value) != "v" || len(o.Headers) != 1 || o.Headers[0].Key != "h" {
		t.Errorf("output = %+v", o)
	}
	if got := string(res.Outputs[1].Value); got != "orders-2-9" {
		t.Errorf("id = %q, want the default <topic>-<partition>-<offset>", got)
	}
	if res.Outputs[1].Key != nil {
		t.Errorf("key = %q, want nil: the original record's key", res.Outputs[1].Key)
	}
}

func TestErrorKindsCrossTheWire(t *testing.T) {
	srv := sdktest.NewServer(t, echo)
	cases := []struct {
		fail      string
		permanent bool
		after     time.Duration
		message   string
	}{
		{"permanent", true, 0, "bad"},
		{"retry-after", false, 1500 * time.Millisecond, "later"},
		{"plain", false, 0, "flaky"},
		{"panic", false, 0, "sdk: handler panicked on t-0-0: oh no"},
	}
	for _, tc := range cases {
		t.Run(tc.fail, func(t *testing.T) {
			_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Headers: []sdk.Header{{Key: "fail", Value: []byte(tc.fail)}}})
			if err == nil || err.Error() != tc.message {
				t.Fatalf("err = %v, want %q", err, tc.message)
			}
			if sdk.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			if d, _ := sdk.RetryAfterOf(err); d != tc.after {
				t.Errorf("RetryAfterOf = %v, want %v", d, tc.after)
			}
			if sdktest.IsCallError(err) {
				t.Error("a handler's error is not a call error")
			}
		})
	}
}

func TestMessageLimit(t *testing.T) {
	srv := sdktest.NewServer(t, echo, sdktest.WithMaxMessageBytes(1<<20))
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: bytes.Repeat([]byte("x"), 2<<20)})
	if !sdktest.IsCallError(err) || status.Code(errors.Unwrap(err)) != codes.ResourceExhausted {
		t.Fatalf("err = %v, want a call error with RESOURCE_EXHAUSTED", err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: bytes.Repeat([]byte("x"), 512<<10)}); err != nil {
		t.Fatalf("a record under the limit: %v", err)
	}
}

func TestCancellationReachesTheHandler(t *testing.T) {
	started := make(chan struct{})
	saw := make(chan error, 1)
	srv := sdktest.NewServer(t, sdk.HandlerFunc(func(ctx context.Context, _ *sdk.Message) (*sdk.Result, error) {
		close(started)
		<-ctx.Done()
		saw <- ctx.Err()
		return nil, ctx.Err()
	}))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := srv.Handle(ctx, &sdk.Message{Topic: "t"})
	if !sdktest.IsCallError(err) || status.Code(errors.Unwrap(err)) != codes.Canceled {
		t.Fatalf("err = %v, want a call error with CANCELED", err)
	}
	if err := <-saw; !errors.Is(err, context.Canceled) {
		t.Errorf("the handler's context ended with %v, want context.Canceled", err)
	}
}

// An answer with more outputs than the bridge takes is a permanent error in
// sdktest too: the bridge dead-letters such a record.
func TestMaxOutputs(t *testing.T) {
	fanOut := sdk.HandlerFunc(func(_ context.Context, msg *sdk.Message) (*sdk.Result, error) {
		return &sdk.Result{Outputs: make([]sdk.Output, len(msg.Value))}, nil
	})
	if sdktest.DefaultMaxOutputs != config.DefaultPluginMaxOutputs {
		t.Fatalf("DefaultMaxOutputs %d, the bridge's default %d", sdktest.DefaultMaxOutputs, config.DefaultPluginMaxOutputs)
	}
	srv := sdktest.NewServer(t, fanOut)
	if res, err := srv.Handle(t.Context(), &sdk.Message{Value: make([]byte, 1000)}); err != nil || len(res.Outputs) != 1000 {
		t.Fatalf("1000 outputs: %v", err)
	}
	_, err := srv.Handle(t.Context(), &sdk.Message{Value: make([]byte, 1001)})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "1001 outputs, more than 1000") {
		t.Fatalf("1001 outputs: err = %v, want permanent", err)
	}
	srv = sdktest.NewServer(t, fanOut, sdktest.WithMaxOutputs(2))
	if _, err := srv.Handle(t.Context(), &sdk.Message{Value: make([]byte, 3)}); !sdk.IsPermanent(err) {
		t.Fatalf("WithMaxOutputs(2), 3 outputs: err = %v, want permanent", err)
	}
	// 0 keeps the defaults, as max_outputs: 0 and max_message_bytes: 0 do
	// in the config (every answer with an output failed, every call was
	// refused).
	srv = sdktest.NewServer(t, fanOut, sdktest.WithMaxOutputs(0), sdktest.WithMaxMessageBytes(0))
	if res, err := srv.Handle(t.Context(), &sdk.Message{Value: make([]byte, 1000)}); err != nil || len(res.Outputs) != 1000 {
		t.Fatalf("WithMaxOutputs(0), WithMaxMessageBytes(0), 1000 outputs: %v", err)
	}
}
