package main

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// blockedWriter is a log whose writes never return: a pipe whose reader
// stopped reading.
type blockedWriter struct{}

func (blockedWriter) Write([]byte) (int, error) { select {} }

// The last resort ends the process also when its log line cannot be
// written: a log that blocks every line may be what holds the shutdown up,
// and waiting for the line would keep the process running for ever.
func TestExitIfStuckExitsWhenItsLogBlocks(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	codes := make(chan int, 1)
	stop := exitAfter(ctx, time.Millisecond, slog.New(slog.NewJSONHandler(blockedWriter{}, nil)), func(code int) { codes <- code })
	defer stop()
	cancel() // the signal
	select {
	case code := <-codes:
		if code != exitFailed {
			t.Fatalf("exit code %d, want %d", code, exitFailed)
		}
	case <-time.After(time.Minute): // a hang guard only
		t.Fatal("the last resort never exited while its log line blocked")
	}
}
