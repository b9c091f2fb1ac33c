package host_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// Calls sent to a process together run out of time together: a burst that
// hands a slow plugin several records slower than its timeout must not make
// a process that answered meanwhile look hung. The slow calls never answer
// ("hang"): a handler that gave up when its context ended would answer with
// that error, a moment before the host's timer, and answer for the process. Replacing it would cut off
// its other calls in flight (handled again elsewhere) and cold-start a new
// process, again and again under a burst.
func TestSlowCallsSentTogetherDoNotMakeALiveProcessHung(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	cfg.ConcurrencyPerInstance = 4
	cfg.Timeout = config.Duration(1500 * time.Millisecond)
	p, logs := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := p.PIDs()[0]

	const slow = 3 // hungAfter
	errs := make([]error, slow)
	var wg sync.WaitGroup
	for i := range slow {
		wg.Go(func() {
			_, errs[i] = p.Deliver(t.Context(), delivery(int64(i), "hang", nil))
		})
	}
	waitFor(t, "the slow calls running", func() bool {
		return strings.Count(logs.String(), "testplugin hanging") == slow
	})
	// The process answers a call while the slow ones wait: it is alive.
	res, err := p.Deliver(t.Context(), delivery(100, "ack", []byte("alive")))
	if err != nil {
		t.Fatalf("call while the slow ones run: %v", err)
	}
	if got := replyPID(t, res); got != pid {
		t.Fatalf("answered by %d, want %d", got, pid)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow call %d: %v, want its timeout", i, err)
		}
	}
	if s := p.Stats(); s.Restarts != 0 || s.Instances != 1 {
		t.Errorf("stats = %+v: a process that answered while its slow calls waited was replaced as hung", s)
	}
	res, err = p.Deliver(t.Context(), delivery(101, "ack", nil))
	if err != nil {
		t.Fatalf("call after the timeouts: %v", err)
	}
	if got := replyPID(t, res); got != pid {
		t.Errorf("call after the timeouts answered by process %d, want %d still", got, pid)
	}
}
