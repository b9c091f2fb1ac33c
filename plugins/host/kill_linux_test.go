//go:build linux

package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// procState returns the state letter of process pid in /proc/<pid>/stat
// ('R', 'S', 'T' for stopped, 'Z' for a zombie, ...) and its parent's pid;
// ok is false once the process is gone.
func procState(t *testing.T, pid int) (state byte, ppid int, ok bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return 0, 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields start after the last ')'.
	var fields [][]byte
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		fields = bytes.Fields(b[i+1:])
	}
	if len(fields) < 2 {
		t.Fatalf("/proc/%d/stat = %q", pid, b)
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	if err != nil {
		t.Fatalf("/proc/%d/stat = %q: %v", pid, b, err)
	}
	return fields[0][0], ppid, true
}

// A process that no longer runs at all (stopped, or frozen) never answers
// go-plugin's request to shut down. Once the pool takes it for hung and
// replaces it, the process must still be killed, and Close must not wait
// for it.
func TestFrozenProcessIsKilledAfterItIsReplaced(t *testing.T) {
	p, _ := startOne(t, func(cfg *config.Plugin) {
		cfg.Timeout = config.Duration(200 * time.Millisecond)
	})
	pid := p.PIDs()[0]
	t.Cleanup(func() {
		// Should the test fail, leave no stopped process behind; only
		// while it is still this test's child, so as not to kill another
		// process that got its pid.
		if _, ppid, ok := procState(t, pid); ok && ppid == os.Getpid() {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopped process to be replaced", func() bool {
		_, _ = p.Deliver(t.Context(), delivery(1, "ack", nil))
		return !slices.Contains(p.PIDs(), pid)
	})
	waitFor(t, "the stopped process to be killed", func() bool {
		state, _, ok := procState(t, pid)
		return !ok || state == 'Z'
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if s := p.Stats(); s.Restarts == 0 {
		t.Errorf("stats = %+v, want the stopped process counted as a restart", s)
	}
}

// A plugin that started a process of its own and left it running (here a
// wrapper script's background job, which does not hold the plugin's
// output) does not leave it behind when the pool stops the plugin: what is
// left in the plugin's process group is stopped with it, with SIGTERM, or
// SIGKILL when it ignores SIGTERM.
func TestStoppingAPluginStopsWhatItLeftInItsGroup(t *testing.T) {
	for _, tc := range []struct{ name, child string }{
		{"stops on SIGTERM", "/bin/sleep 600"},
		{"ignores SIGTERM", "trap '' TERM; exec /bin/sleep 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, child := startWithChild(t, fmt.Sprintf("(%s) </dev/null >/dev/null 2>&1 &", tc.child))
			waitFor(t, "the plugin's child to run", func() bool {
				state, _, ok := procState(t, child)
				return ok && state != 'Z'
			})
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			// Close has returned: the child is gone, or (reparented to
			// init, which reaps it in its own time) no longer runs.
			if state, _, ok := procState(t, child); ok && state != 'Z' {
				t.Fatalf("after Close, the plugin's child %d still runs (state %q)", child, state)
			}
		})
	}
}

// A plugin that dies while idle is replaced by the supervisor, also when a
// process it started still holds its stdout and stderr (a wrapper script's
// background job, a helper that inherited them): go-plugin takes a process
// as exited only once those are closed, so the pool must not wait for that.
// The dead process is reaped, what it left in its group is stopped, and the
// pool is back to instances.min without a call to notice it.
func TestPluginThatDiesIdleWhileItsChildHoldsItsOutputIsReplaced(t *testing.T) {
	// The child keeps the plugin's stdout and stderr.
	p, leader, child := startWithChild(t, "/bin/sleep 600 &")
	if err := syscall.Kill(leader, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead process to be replaced", func() bool {
		pids := p.PIDs()
		return len(pids) == 1 && pids[0] != leader && p.Stats().Starting == 0
	})
	if s := p.Stats(); s.Restarts != 1 || s.Instances != 1 {
		t.Errorf("stats = %+v, want the dead process counted as a restart, and one instance", s)
	}
	waitFor(t, "the dead process reaped and its child stopped", func() bool {
		_, _, leaderThere := procState(t, leader)
		state, _, childThere := procState(t, child)
		return !leaderThere && (!childThere || state == 'Z')
	})
	if _, err := p.Deliver(t.Context(), delivery(1, "ack", nil)); err != nil {
		t.Fatal(err)
	}
}

// startWithChild starts a pool of one plugin process, run by a shell that
// first starts a child with start (a command ending in &), and returns the
// pool, the plugin's pid (its process group's) and the child's. Should the
// test fail, the child is killed, but only while it is still in the
// plugin's group, so as not to kill another process that got its pid.
func startWithChild(t *testing.T, start string) (p *host.Pool, leader, child int) {
	t.Helper()
	pidFile := t.TempDir() + "/child.pid"
	cfg := testConfig("/bin/sh", "-c", fmt.Sprintf("%s echo $! > %s; exec %s", start, pidFile, testPlugin))
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	p, _ = newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	leader = p.PIDs()[0]
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if child, err = strconv.Atoi(string(bytes.TrimSpace(b))); err != nil {
		t.Fatalf("child pid %q: %v", b, err)
	}
	t.Cleanup(func() {
		if pgid, err := syscall.Getpgid(child); err == nil && pgid == leader {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	})
	return p, leader, child
}
