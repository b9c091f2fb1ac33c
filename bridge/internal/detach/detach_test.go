package detach

import (
	"context"
	"errors"
	"testing"
)

func TestCallReturnsTheResult(t *testing.T) {
	v, err := Call(t.Context(), func() (int, error) { return 7, nil }, func(int) { t.Error("released a result that was returned") })
	if v != 7 || err != nil {
		t.Fatalf("got %d, %v; want 7, nil", v, err)
	}
	boom := errors.New("boom")
	if _, err := Call(t.Context(), func() (int, error) { return 0, boom }, func(int) { t.Error("released a failed call") }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
}

// A caller that stops waiting gets ctx's error while the call still runs;
// what the call opens after that is released.
func TestCallReleasesWhatComesAfterTheCallerLeft(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	unblock := make(chan struct{})
	released := make(chan int, 1)
	cancel()
	_, err := Call(ctx, func() (int, error) { <-unblock; return 9, nil }, func(v int) { released <- v })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(unblock)
	if v := <-released; v != 9 {
		t.Fatalf("released %d, want 9", v)
	}
}

// A call that fails after the caller left has nothing to release.
func TestCallReleasesNothingOfAFailedCall(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	unblock, finished := make(chan struct{}), make(chan struct{})
	_, err := Call(ctx, func() (int, error) {
		defer close(finished)
		<-unblock
		return 0, errors.New("refused")
	}, func(int) { t.Error("released a failed call") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(unblock)
	<-finished
}
