package host

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

func TestHumanSizes(t *testing.T) {
	for n, want := range map[int]string{999: "999 bytes", 1500: "1.5 kB", 5_200_000: "5.2 MB", 3_000_000_000: "3.0 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{4 << 20: "4 MiB", 512 << 10: "512 KiB", 1000: "1000 bytes", 4<<20 + 1: "4194305 bytes"} {
		if got := humanLimit(n); got != want {
			t.Errorf("humanLimit(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestInstanceFailed(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		expired bool
		closing bool // the connection is closing: the process exited or is being stopped
		err     error
		want    bool
	}{
		{"unavailable", live, false, false, status.Error(codes.Unavailable, "connection refused"), true},
		{"connection closed under the call", live, false, true, status.Error(codes.Canceled, "grpc: the client connection is closing"), true},
		{"the handler answered CANCELED", live, false, false, status.Error(codes.Canceled, "downstream call canceled"), false},
		{"caller canceled", canceled, false, false, status.Error(codes.Canceled, "context canceled"), false},
		{"caller canceled, connection closing", canceled, false, true, status.Error(codes.Canceled, "context canceled"), false},
		{"call timed out", live, true, false, status.Error(codes.DeadlineExceeded, "deadline"), false},
		{"unavailable after the call's deadline", live, true, false, status.Error(codes.Unavailable, "connection refused"), false},
		{"handler-side status", live, false, false, status.Error(codes.Internal, "oops"), false},
		{"not a status", live, false, false, errors.New("x"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := instanceFailedStatus(tc.ctx, tc.expired, tc.err, tc.closing)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// callError tells the plugin's timeout from the caller's deadline, and the
// message limit from other failures.
func TestCallError(t *testing.T) {
	p := &Pool{name: "enrich", cfg: config.Plugin{Timeout: config.Duration(2 * time.Second)}, maxBytes: 4 << 20}
	now := time.Now()
	ours := now.Add(2 * time.Second)
	early, cancel := context.WithDeadline(context.Background(), now.Add(time.Second)) // before ours
	defer cancel()
	late, cancel2 := context.WithDeadline(context.Background(), now.Add(time.Hour))
	defer cancel2()
	deadline := status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	cases := []struct {
		name    string
		ctx     context.Context
		expired bool
		err     error
		kind    target.Kind
		want    string
	}{
		{"our timeout", context.Background(), true, deadline, target.Retryable, "plugin enrich: no answer within 2s (plugins.enrich.timeout)"},
		{"our timeout, the caller's deadline later", late, true, deadline, target.Retryable, "no answer within 2s"},
		{"the plugin's side ended the caller's deadline first", early, false, deadline, target.KindOf(context.DeadlineExceeded), "plugin enrich: context deadline exceeded"},
		{"message limit", context.Background(), false, status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5000000 vs. 4194304)"), target.Permanent, "exceeds the 4 MiB message limit"},
		{"other failure", context.Background(), false, status.Error(codes.Internal, "oops"), target.Retryable, "plugin enrich: call failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.callError(tc.ctx, tc.expired, ours, tc.err)
			if k := target.KindOf(err); k != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v (kind %v), want kind %v and %q", err, k, tc.kind, tc.want)
			}
			if tc.expired && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v does not wrap context.DeadlineExceeded", err)
			}
		})
	}
}
