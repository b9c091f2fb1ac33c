package host_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// Plugin executables built by TestMain.
var (
	testPlugin    string // testdata/testplugin
	examplePlugin string // examples/plugin-go
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hookbridge-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	testPlugin = filepath.Join(dir, "testplugin")
	examplePlugin = filepath.Join(dir, "plugin-go")
	for pkg, out := range map[string]string{"./testdata/testplugin": testPlugin, "../../examples/plugin-go": examplePlugin} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}

// syncBuffer is a log destination tests read while plugins write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is a plugin config with small limits for tests.
func testConfig(command ...string) config.Plugin {
	return config.Plugin{
		Command:                command,
		Instances:              config.Instances{Min: 0, Max: 2},
		ConcurrencyPerInstance: 4,
		IdleTimeout:            config.Duration(time.Minute),
		Timeout:                config.Duration(10 * time.Second),
	}
}

// newPool starts a pool named "enrich" that is closed when the test ends;
// its log is printed when the test fails.
func newPool(t testing.TB, cfg config.Plugin, opts host.Options) (*host.Pool, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = 20 * time.Millisecond
	}
	if opts.RestartBackoff == 0 {
		opts.RestartBackoff = 10 * time.Millisecond
	}
	p, err := host.New("enrich", cfg, opts)
	if err != nil {
		t.Fatalf("host.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 20*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("pool log:\n%s", logs)
		}
	})
	return p, logs
}

// startOne starts a pool of one process of the test plugin, its
// configuration changed by change (unless nil), and waits until it is up.
func startOne(t testing.TB, change func(*config.Plugin)) (*host.Pool, *syncBuffer) {
	t.Helper()
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	if change != nil {
		change(&cfg)
	}
	p, logs := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return p, logs
}

// delivery is attempt 1 of a record on topic "orders" with the x-test header.
func delivery(offset int64, behaviour string, value []byte) *target.Delivery {
	r := &target.Record{Topic: "orders", Partition: 1, Offset: offset, Value: value}
	if behaviour != "" {
		r.Headers = []target.Header{{Key: "x-test", Value: []byte(behaviour)}}
	}
	return &target.Delivery{Route: "orders-enrich", Record: r, Attempt: 1}
}

// replyPID returns the pid header of a result's single output.
func replyPID(t *testing.T, res *target.Result) int {
	t.Helper()
	if res == nil || len(res.Outputs) != 1 {
		t.Fatalf("result %+v: want exactly one output", res)
	}
	for _, h := range res.Outputs[0].Headers {
		if h.Key == "pid" {
			pid, err := strconv.Atoi(string(h.Value))
			if err != nil {
				t.Fatalf("pid header %q: %v", h.Value, err)
			}
			return pid
		}
	}
	t.Fatalf("output has no pid header: %+v", res.Outputs[0])
	return 0
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a stuck condition, not a slow one).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// callsInFlight starts four calls of 300 ms on pool p's one process, pid,
// and waits until all four are in flight. The returned check waits for
// them and fails the test unless each was answered, by that process, with
// its own value: what comes while they are in flight (while names it) must
// leave them alone.
func callsInFlight(t *testing.T, p *host.Pool, pid int, while string) (check func()) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			want := fmt.Sprintf("value-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:300ms", []byte(want)))
			if err != nil {
				t.Errorf("call %d, in flight when %s: %v", i, while, err)
				return
			}
			if got := replyPID(t, res); got != pid || string(res.Outputs[0].Value) != want {
				t.Errorf("call %d answered %q by pid %d, want %q by %d", i, res.Outputs[0].Value, got, want, pid)
			}
		})
	}
	waitFor(t, "the calls in flight", func() bool { return p.Stats().InFlight == 4 })
	return wg.Wait
}
