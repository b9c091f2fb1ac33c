package host

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	cases := []struct {
		name         string
		ctx, callCtx context.Context
		err          error
		want         bool
	}{
		{"unavailable", live, live, status.Error(codes.Unavailable, "connection refused"), true},
		{"connection closed under the call", live, live, status.Error(codes.Canceled, "grpc: the client connection is closing"), true},
		{"caller canceled", canceled, canceled, status.Error(codes.Canceled, "context canceled"), false},
		{"call timed out", live, expired, status.Error(codes.DeadlineExceeded, "deadline"), false},
		{"handler-side status", live, live, status.Error(codes.Internal, "oops"), false},
		{"not a status", live, live, errors.New("x"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := instanceFailedStatus(tc.ctx, tc.callCtx, tc.err)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
