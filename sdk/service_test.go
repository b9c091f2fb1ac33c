package sdk

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func TestServiceRecoversPanics(t *testing.T) {
	svc := newService(HandlerFunc(func(context.Context, *Message) (*Result, error) { panic("bad handler") }), slogDiscard(), protocol.DefaultMaxMessageBytes)
	resp, err := svc.Handle(t.Context(), &handlerpb.HandleRequest{Id: "t-0-1"})
	if err != nil {
		t.Fatal(err)
	}
	e := resp.GetError()
	if e.GetKind() != handlerpb.ErrorKind_ERROR_KIND_RETRYABLE || !strings.Contains(e.GetMessage(), "panicked on t-0-1: bad handler") {
		t.Errorf("error = %v, want a retryable panic error", e)
	}
}

func TestServiceDrainRefusesNewCallsAndWaitsForRunningOnes(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	svc := newService(HandlerFunc(func(context.Context, *Message) (*Result, error) {
		close(started)
		<-release
		return &Result{}, nil
	}), slogDiscard(), protocol.DefaultMaxMessageBytes)
	done := make(chan error, 1)
	go func() {
		_, err := svc.Handle(t.Context(), &handlerpb.HandleRequest{})
		done <- err
	}()
	<-started
	drained := make(chan struct{})
	go func() {
		svc.drain(t.Context())
		close(drained)
	}()
	waitUntil(t, func() bool { svc.mu.Lock(); defer svc.mu.Unlock(); return svc.draining })
	if _, err := svc.Handle(t.Context(), &handlerpb.HandleRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("call while draining: %v, want UNAVAILABLE (the bridge retries it elsewhere)", err)
	}
	select {
	case <-drained:
		t.Fatal("drain returned with a call in flight")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-drained
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}
