package sdktest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// A record whose header key is not UTF-8 (a producer other than Java's may
// write any bytes) cannot go on the wire: the bridge fails it with a
// permanent error naming the header before the call, and the handler never
// sees it. sdktest does the same, rather than fail the call.
func TestHeaderKeyNotUTF8IsPermanentAsInTheBridge(t *testing.T) {
	var ran atomic.Int32
	srv := sdktest.NewServer(t, sdk.HandlerFunc(func(context.Context, *sdk.Message) (*sdk.Result, error) {
		ran.Add(1)
		return &sdk.Result{}, nil
	}))
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v"), Headers: []sdk.Header{
		{Key: "content-type", Value: []byte("text/plain")},
		{Key: "bad\xffkey", Value: []byte("x")},
	}})
	if !sdk.IsPermanent(err) || sdktest.IsCallError(err) || !strings.Contains(err.Error(), "header 1") {
		t.Fatalf("err = %v (call error %v), want a permanent error naming header 1", err, sdktest.IsCallError(err))
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("the handler ran %d times, want 0", n)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Headers: []sdk.Header{{Key: "ünïcode", Value: []byte("\xff")}}}); err != nil {
		t.Fatalf("a UTF-8 key with a binary value: %v", err)
	}
}
