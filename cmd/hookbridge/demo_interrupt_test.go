package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The demo's plugin route starts this executable with demoPluginCommand:
// the test binary serves it as the hookbridge binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == demoPluginCommand {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// lockedBuffer is a bytes.Buffer that the demo's goroutines (the receiver,
// the reply follower, the producer loop) may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Ctrl-C in the middle of the demo: the bridge drains and stops, and the
// demo says it was interrupted and how far it got, instead of stopping
// without a word (and without waiting for the bridge).
func TestDemoInterruptedSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo", "--records", "1000"}, &stdout, &stderr) }()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(stdout.String(), "webhook ←") {
		select {
		case code := <-done:
			t.Fatalf("the demo ended (exit %d) before its first delivery; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("no delivery after 2 minutes; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel() // what the SIGINT of Ctrl-C does to run's context
	code := <-done
	out := stdout.String()
	if code != exitOK {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr.String())
	}
	if !strings.Contains(out, "\ninterrupted: ") || !strings.Contains(out, "of 1000 records produced") ||
		!strings.Contains(out, "bridge drained and stopped.") {
		t.Errorf("stdout does not say the demo was interrupted:\n%s", out)
	}
	if strings.Contains(out, "summary:") {
		t.Errorf("an interrupted demo printed the summary of a complete one:\n%s", out)
	}
}
