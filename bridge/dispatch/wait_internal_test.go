package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"
)

// sleepResult runs sleep in a goroutine and returns its outcome, failing the
// test if it does not return before the deadlock guard.
func sleepResult(t *testing.T, ctx context.Context, d time.Duration, during func()) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- sleep(ctx, d) }()
	if during != nil {
		during()
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("sleep(%v) did not return (deadlock guard)", d)
		return nil
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	cause := errors.New("revoked")
	closed := make(chan struct{})
	close(closed)
	tests := []struct {
		name    string
		ctx     func(t *testing.T) (ctx context.Context, during func())
		d       time.Duration
		wantErr error
	}{
		{
			name: "elapses",
			ctx:  func(t *testing.T) (context.Context, func()) { return t.Context(), nil },
			d:    time.Millisecond,
		},
		{
			name: "zero",
			ctx:  func(t *testing.T) (context.Context, func()) { return t.Context(), nil },
			d:    0,
		},
		{
			name: "elapses with an open stop channel",
			ctx: func(t *testing.T) (context.Context, func()) {
				return WithStop(t.Context(), make(chan struct{})), nil
			},
			d: time.Millisecond,
		},
		{
			name: "nil stop channel is no stop",
			ctx:  func(t *testing.T) (context.Context, func()) { return WithStop(t.Context(), nil), nil },
			d:    time.Millisecond,
		},
		{
			name:    "stop closed before",
			ctx:     func(t *testing.T) (context.Context, func()) { return WithStop(t.Context(), closed), nil },
			d:       time.Hour,
			wantErr: ErrStopping,
		},
		{
			name:    "stop closed before, zero wait",
			ctx:     func(t *testing.T) (context.Context, func()) { return WithStop(t.Context(), closed), nil },
			d:       0,
			wantErr: ErrStopping,
		},
		{
			name: "stop closed during",
			ctx: func(t *testing.T) (context.Context, func()) {
				stop := make(chan struct{})
				return WithStop(t.Context(), stop), func() { close(stop) }
			},
			d:       time.Hour,
			wantErr: ErrStopping,
		},
		{
			name: "canceled during",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancel(t.Context())
				t.Cleanup(cancel)
				return WithStop(ctx, make(chan struct{})), cancel
			},
			d:       time.Hour,
			wantErr: context.Canceled,
		},
		{
			name: "canceled with cause",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(t.Context())
				t.Cleanup(func() { cancel(nil) })
				return ctx, func() { cancel(cause) }
			},
			d:       time.Hour,
			wantErr: cause,
		},
		{
			name: "already canceled",
			ctx: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(t.Context())
				cancel(cause)
				return ctx, nil
			},
			d:       time.Hour,
			wantErr: cause,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, during := tt.ctx(t)
			err := sleepResult(t, ctx, tt.d, during)
			if tt.wantErr == nil && err != nil {
				t.Errorf("sleep = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("sleep = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestWithStopDoesNotEndContext(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	ctx := WithStop(t.Context(), stop)
	close(stop)
	select {
	case <-ctx.Done():
		t.Fatal("closing stop ended the context; calls in progress must keep running")
	default:
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("ctx.Err() = %v after stop, want nil", err)
	}
}
