package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// A plugin that got SIGTERM (from an operator, or from systemd stopping the
// whole control group) refuses new calls and lets the calls it has in
// flight finish. The refusal of a new call takes the process out of the
// pool, but must not cut the calls still running on it: they finish there,
// answered by that process, rather than being torn off and handled a second
// time elsewhere.
func TestRefusedCallDoesNotCutTheCallsInFlightOnAStoppingProcess(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 1, Max: 2}
	cfg.ConcurrencyPerInstance = 4
	p, logs := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := p.PIDs()[0]

	const inFlight = 3
	pids := make([]int, inFlight)
	errs := make([]error, inFlight)
	var wg sync.WaitGroup
	for i := range inFlight {
		wg.Go(func() {
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:1500ms", []byte("v")))
			errs[i] = err
			if err == nil && res != nil && len(res.Outputs) == 1 {
				pids[i] = replyPID(t, res)
			}
		})
	}
	waitFor(t, "the handlers running", func() bool {
		return strings.Count(logs.String(), "testplugin sleeping") == inFlight
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin stopping", func() bool {
		return strings.Contains(logs.String(), "stopping: letting calls in flight finish")
	})
	// A new call: refused by the stopping process, retried on another.
	res, err := p.Deliver(t.Context(), delivery(100, "ack", nil))
	if err != nil {
		t.Fatalf("new call while the process stops: %v", err)
	}
	if got := replyPID(t, res); got == pid {
		t.Errorf("new call answered by the stopping process %d", pid)
	}
	wg.Wait()
	for i := range inFlight {
		if errs[i] != nil {
			t.Errorf("call %d in flight at SIGTERM: %v", i, errs[i])
			continue
		}
		if pids[i] != pid {
			t.Errorf("call %d in flight at SIGTERM was answered by process %d, not by %d that had it: it was cut and handled again", i, pids[i], pid)
		}
	}
	waitFor(t, "the stopping process gone", func() bool { return syscall.Kill(pid, 0) != nil })
}

// openFDs counts the test process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

// Every crash and restart of a plugin process leaves nothing behind in the
// bridge: goroutines and file descriptors come back to where they were.
func TestRestartsLeakNoGoroutinesOrFDs(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	settled := func() bool {
		s := p.Stats()
		return s.Instances == 1 && s.Starting == 0 && s.InFlight == 0
	}
	if _, err := p.Deliver(t.Context(), delivery(0, "ack", nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	const restarts = 20
	check := leakCheck(t, fmt.Sprintf("%d restarts", restarts), settled)
	dir := t.TempDir()
	for i := range restarts {
		marker := filepath.Join(dir, fmt.Sprintf("crash-%d", i))
		if _, err := p.Deliver(t.Context(), delivery(int64(i+1), "crash-once:"+marker, nil)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if s := p.Stats(); s.Restarts != restarts {
		t.Fatalf("stats = %+v, want %d restarts", s, restarts)
	}
	check()
}

// leakCheck records the goroutines and descriptors now and returns a
// function that waits (with a generous deadline) until they are back near
// that, failing the test with a dump if they are not. The margins are
// generous: a few goroutines and descriptors of gRPC and the runtime come
// and go; a leak per restart would be 20 times something.
func leakCheck(t *testing.T, what string, settled func() bool) func() {
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	return func() {
		t.Helper()
		var g, f int
		deadline := time.Now().Add(30 * time.Second)
		for {
			g, f = runtime.NumGoroutine(), openFDs(t)
			if settled() && g <= g0+8 && f <= f0+6 {
				break
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("after %s: %d goroutines (from %d), %d fds (from %d)\n%s", what, g, g0, f, f0, buf)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("after %s: %d goroutines (from %d), %d fds (from %d)", what, g, g0, f, f0)
	}
}

func TestFailedStartsLeakNoGoroutinesOrFDs(t *testing.T) {
	cfg := testConfig("/bin/false")
	cfg.Instances = config.Instances{Min: 0, Max: 1}
	p, _ := newPool(t, cfg, host.Options{RestartBackoff: time.Millisecond, MaxRestartBackoff: time.Millisecond})
	check := leakCheck(t, "20 failed starts", func() bool { return p.Stats().Starting == 0 })
	for i := range 20 {
		if _, err := p.Deliver(t.Context(), delivery(int64(i), "ack", nil)); err == nil {
			t.Fatal("a plugin that exits at once answered")
		}
	}
	if s := p.Stats(); s.StartFailures < 20 {
		t.Fatalf("stats = %+v", s)
	}
	if p.Health() == nil {
		t.Error("Health() = nil for a plugin that cannot start")
	}
	check()
}

func TestHungStreamReplacementsLeakNoGoroutinesOrFDs(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 1}
	cfg.ConcurrencyPerInstance = 1
	cfg.Timeout = config.Duration(100 * time.Millisecond)
	cfg.Env = map[string]string{"TESTPLUGIN_STREAM_STALL": "1"}
	p, _ := newPool(t, cfg, host.Options{})
	if _, err := p.Deliver(t.Context(), delivery(0, "ack", nil)); err == nil {
		t.Fatal("a stalled stream answered")
	}
	waitFor(t, "settle", func() bool { return p.Stats().Starting == 0 })
	check := leakCheck(t, "hung processes replaced", func() bool {
		s := p.Stats()
		return s.Starting == 0 && s.InFlight == 0 && s.Instances <= 1
	})
	for i := range 15 {
		_, _ = p.Deliver(t.Context(), delivery(int64(i+1), "ack", bytes.Repeat([]byte("x"), 200<<10)))
	}
	if s := p.Stats(); s.Restarts < 4 {
		t.Fatalf("stats = %+v, want hung processes replaced", s)
	}
	check()
}

// A call that finds no free slot once the bridge began to shut down ends at
// once, not sent (see TestCallWaitingForASlotEndsWhenStopping). It must not
// start a plugin process on its way out: nobody would use it, Close would
// have to wait for its start (up to the start timeout), and the process
// would only be stopped again.
func TestNoProcessIsStartedForACallOnceStopping(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 2}
	p, _ := newPool(t, cfg, host.Options{})
	stop := make(chan struct{})
	close(stop)
	_, err := p.Deliver(dispatch.WithStop(t.Context(), stop), delivery(1, "ack", nil))
	if target.KindOf(err) != target.Canceled || !errors.Is(err, dispatch.ErrStopping) {
		t.Fatalf("call after the stop: %v (kind %v), want canceled, stopping", err, target.KindOf(err))
	}
	waitFor(t, "no start in progress", func() bool { return p.Stats().Starting == 0 })
	if s := p.Stats(); s.Started != 0 || s.ColdStarts != 0 || s.Instances != 0 {
		t.Errorf("stats = %+v: a process was started for a call that was not going to be sent", s)
	}
}

// Answers on the stream come in any order; answers for call ids the host
// never sent, and a second answer for a call, are ignored: every call gets
// its own answer and nothing else.
func TestStrayAndDuplicatedStreamAnswersAreIgnored(t *testing.T) {
	p, _ := startOne(t, func(c *config.Plugin) {
		c.ConcurrencyPerInstance = 16
		c.Env = map[string]string{"TESTPLUGIN_OWN_STREAM": "1"}
	})
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			behaviour := "dup-answer"
			if i%3 == 0 {
				behaviour = fmt.Sprintf("sleep:%dms", 5*(n-i)) // answered out of order
			}
			want := fmt.Appendf(nil, "value-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), behaviour, want))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if len(res.Outputs) != 1 || !bytes.Equal(res.Outputs[0].Value, want) {
				t.Errorf("call %d got %+v, want its own value %q", i, res.Outputs, want)
			}
		})
	}
	wg.Wait()
	if s := p.Stats(); s.Restarts != 0 || s.Streams != 1 || s.InFlight != 0 {
		t.Errorf("stats = %+v, want the process and its stream kept", s)
	}
}

// Close whose bound passes while calls are still in flight on several
// processes stops the processes anyway: the calls cut off fail (retryable:
// never taken as delivered), and no process is left behind.
func TestCloseBoundPassedWithCallsInFlightOnSeveralProcesses(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 2, Max: 2}
	cfg.ConcurrencyPerInstance = 2
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pids := p.PIDs()
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = p.Deliver(t.Context(), delivery(int64(i), "sleep:1m", nil)) })
	}
	waitFor(t, "calls in flight on both processes", func() bool { return p.Stats().InFlight == n })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil {
		t.Error("Close = nil with calls still in flight past its bound")
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || target.KindOf(err) != target.Retryable {
			t.Errorf("call %d cut off by Close: %v (kind %v), want a retryable failure", i, err, target.KindOf(err))
		}
	}
	for _, pid := range pids {
		waitFor(t, fmt.Sprintf("process %d gone", pid), func() bool { return syscall.Kill(pid, 0) != nil })
	}
}

// instances.min holds after crashes: processes killed while idle are
// replaced, round after round, and the pool answers afterwards.
func TestMinHoldsAfterRepeatedCrashes(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 2, Max: 3}
	p, _ := newPool(t, cfg, host.Options{MaxRestartBackoff: 50 * time.Millisecond})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for round := range 5 {
		pids := p.PIDs()
		for _, pid := range pids {
			seen[pid] = true
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, fmt.Sprintf("round %d: two new processes", round), func() bool {
			now := p.PIDs()
			return len(now) == 2 && !seen[now[0]] && !seen[now[1]] && p.Stats().Starting == 0
		})
	}
	if _, err := p.Deliver(t.Context(), delivery(1, "ack", nil)); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Restarts != 10 || s.Instances != 2 {
		t.Errorf("stats = %+v, want 10 restarts and 2 instances", s)
	}
}

// Close does not wait out the start timeout of a process that hangs while
// it starts (before its handshake, or in its health check): it stops the
// process, returns within its bound, and leaves no process behind. A
// bridge that stops (SIGTERM during start-up, a plugin with instances.min
// that cannot start) would otherwise exit with the process still running.
func TestCloseStopsAProcessThatHangsWhileStarting(t *testing.T) {
	script := filepath.Join(t.TempDir(), "hang")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		command string
		env     map[string]string
	}{
		{"before the handshake", script, nil},
		{"in the health check", testPlugin, map[string]string{"TESTPLUGIN_HEALTH_HANG": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
			mark := "TESTPLUGIN_RUN=" + run
			cfg := testConfig(tc.command)
			cfg.Env = map[string]string{"TESTPLUGIN_RUN": run}
			for k, v := range tc.env {
				cfg.Env[k] = v
			}
			p, logs := newPool(t, cfg, host.Options{StartTimeout: 10 * time.Minute})
			t.Cleanup(func() {
				// Should the test fail, leave no process behind (the
				// mark is this test's alone).
				for _, pid := range processesWithEnv(t, mark) {
					if n, err := strconv.Atoi(pid); err == nil {
						_ = syscall.Kill(n, syscall.SIGKILL)
					}
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := p.Deliver(ctx, delivery(1, "ack", nil))
				done <- err
			}()
			waitFor(t, "the process to start", func() bool { return len(processesWithEnv(t, mark)) > 0 })
			if tc.env != nil {
				waitFor(t, "the handshake", func() bool { return strings.Contains(logs.String(), "using plugin") })
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Deliver = %v, want its context's cancellation", err)
			}
			cctx, ccancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer ccancel()
			if err := p.Close(cctx); err != nil {
				t.Errorf("Close: %v", err)
			}
			if pids := processesWithEnv(t, mark); len(pids) > 0 {
				t.Errorf("after Close, the process that was starting still runs: %v", pids)
			}
			if s := p.Stats(); s.Starting != 0 || s.Instances != 0 {
				t.Errorf("stats = %+v, want nothing running or starting", s)
			}
		})
	}
}
