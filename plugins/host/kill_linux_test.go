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
