//go:build linux

package host_test

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A process that dies with many calls in flight is one failure: the log
// says so in a few lines (replacing it, and that it died), not in a
// warning per call in flight. A plugin that crashes on a record now and
// then, with concurrency_per_instance calls on each process, used to log
// that many warnings per crash, each retry of the poison record crashing
// the next process too: a warning per record in flight per crash.
func TestCrashWithCallsInFlightLogsPerCrashNotPerCall(t *testing.T) {
	const calls = 16
	p, logs := startOne(t, func(c *config.Plugin) { c.ConcurrencyPerInstance = calls })
	res, err := p.Deliver(t.Context(), delivery(100, "ack", nil))
	if err != nil {
		t.Fatal(err)
	}
	pid := replyPID(t, res)

	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			want := fmt.Sprintf("value-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:500ms", []byte(want)))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if string(res.Outputs[0].Value) != want {
				t.Errorf("call %d answered %q, want %q", i, res.Outputs[0].Value, want)
			}
		})
	}
	waitFor(t, "the calls in flight", func() bool { return p.Stats().InFlight == calls })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // each call is retried on the next process and answered there

	if got := p.Stats().Restarts; got != 1 {
		t.Fatalf("restarts = %d, want 1", got)
	}
	var loud []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			loud = append(loud, strings.TrimSpace(line))
		}
	}
	if len(loud) >= calls {
		t.Errorf("one crash with %d calls in flight logged %d lines at warn or above, want a few for the crash:\n%s",
			calls, len(loud), strings.Join(loud, "\n"))
	}
}
