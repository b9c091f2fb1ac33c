package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// What a plugin writes to its original standard output after the handshake
// (a plugin in another language, which has no go-plugin to redirect it; a
// C library or a child process of a Go plugin) is read by the bridge for as
// long as the process runs, and shows up in its log: a line longer than
// bufio.Scanner's 64 KiB (a record dumped for debugging) must not stop the
// reading, which would leave the plugin blocked in its next write once the
// pipe is full, its calls timing out, for good.
func TestLongLinesOnThePluginsOriginalStdout(t *testing.T) {
	p, logs := startOne(t, func(cfg *config.Plugin) {
		cfg.Timeout = config.Duration(5 * time.Second)
	})
	pid := p.PIDs()[0]
	// Each 200 KB line is more than the pipe holds: a write that nothing
	// reads blocks at once.
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		res, err := p.Deliver(ctx, delivery(int64(i), fmt.Sprintf("raw-stdout:%d", 200<<10), []byte("v")))
		cancel()
		if err != nil {
			t.Fatalf("call %d after a long line on stdout: %v\n%s", i, err, logs)
		}
		if got := replyPID(t, res); got != pid {
			t.Fatalf("call %d answered by pid %d, want %d (the process was replaced)", i, got, pid)
		}
	}
	waitFor(t, "the lines on stdout in the log", func() bool {
		return strings.Count(logs.String(), "stream=stdout") >= 3*4 // each line in pieces of 64 KiB
	})
}

// An executable whose sha256 changed on disk after the pool was made fails
// its start with an error naming both sums, and the directory go-plugin
// makes for a process's Unix socket is removed whether its start failed or
// the process ran and was stopped.
func TestChecksumChangedOnDiskAndSocketDirectories(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where go-plugin makes the socket directories
	bin := filepath.Join(t.TempDir(), "plugin")
	real, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, real, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(bin)
	cfg.SHA256 = fileSum(t, bin)
	p, logs := newPool(t, cfg, host.Options{})
	if _, err := p.Deliver(t.Context(), delivery(1, "", []byte("v"))); err != nil {
		t.Fatalf("Deliver with the configured sum: %v\n%s", err, logs)
	}
	p2, logs2 := newPool(t, cfg, host.Options{})
	// A new file in its place: the one running cannot be written to.
	if err := os.WriteFile(bin+".new", append(real, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	_, err = p2.Deliver(t.Context(), delivery(2, "", []byte("v")))
	if !errors.Is(err, host.ErrChecksumMismatch) || target.KindOf(err) != target.Retryable ||
		!strings.Contains(err.Error(), cfg.SHA256) || !strings.Contains(err.Error(), "plugins.enrich.sha256") {
		t.Fatalf("Deliver after the executable changed: err = %v (kind %v), want a retryable ErrChecksumMismatch naming the sums\n%s",
			err, target.KindOf(err), logs2)
	}
	if s := p2.Stats(); s.Started != 0 || s.StartFailures != 1 {
		t.Errorf("stats = %+v, want one failed start and none started", s)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, pool := range []*host.Pool{p, p2} {
		if err := pool.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left, err := filepath.Glob(filepath.Join(tmp, "plugin-dir*"))
	if err != nil || len(left) != 0 {
		t.Errorf("socket directories left behind: %v (%v)", left, err)
	}
}
