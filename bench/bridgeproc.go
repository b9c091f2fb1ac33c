package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BridgePackage is what the harness builds when Options.Bridge is empty.
const BridgePackage = "github.com/hookbridge/hookbridge/cmd/hookbridge"

// exitWait bounds how long a bridge may take to exit after SIGTERM before it
// is killed (its shutdown_timeout is 10s in the generated config).
const exitWait = 30 * time.Second

// bridgeScenario returns the run function of (d) to (f): the real hookbridge
// binary, one route with the given ordering, to the receiver.
func bridgeScenario(ordering string) func(*Env, context.Context) (Result, error) {
	return func(e *Env, ctx context.Context) (Result, error) { return e.runBridge(ctx, ordering) }
}

// bridgeBinary returns the binary to run, building it on first use.
func (e *Env) bridgeBinary(ctx context.Context) (string, error) {
	if e.opts.Bridge != "" {
		if e.build == "" {
			e.build = bridgeBuild(ctx, e.opts.Bridge)
		}
		return e.opts.Bridge, nil
	}
	e.buildOnce.Do(func() {
		out := filepath.Join(e.tmp, "hookbridge")
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, BridgePackage)
		if msg, err := cmd.CombinedOutput(); err != nil {
			e.buildErr = fmt.Errorf("bench: go build %s (run from inside the hookbridge module, or pass a binary): %w\n%s",
				BridgePackage, err, msg)
			return
		}
		e.bin = out
		e.logf("built %s in %s", BridgePackage, time.Since(start).Round(time.Millisecond))
	})
	if e.buildErr == nil && e.build == "" {
		e.build = bridgeBuild(ctx, e.bin)
		if !strings.HasPrefix(e.build, "commit ") {
			// Built with -buildvcs=false: ask git about the tree just built.
			e.build = gitDescribe(ctx) + e.build
		}
	}
	return e.bin, e.buildErr
}

// bridgeBuild describes the binary: its VCS revision, and whether the work
// tree it was built from had changes ("" when unknown).
func bridgeBuild(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	var rev, modified, goVersion string
	for i, line := range strings.Split(string(out), "\n") {
		if i == 0 {
			if _, v, ok := strings.Cut(line, ": "); ok {
				goVersion = strings.TrimSpace(v)
			}
		}
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "build" {
			if v, ok := strings.CutPrefix(f[1], "vcs.revision="); ok {
				rev = v
			}
			if v, ok := strings.CutPrefix(f[1], "vcs.modified="); ok {
				modified = v
			}
		}
	}
	if rev == "" {
		return goVersion
	}
	desc := "commit " + rev[:min(len(rev), 12)]
	if modified == "true" {
		desc += " plus uncommitted changes"
	}
	return desc + ", " + goVersion
}

// gitDescribe returns "commit <rev>[ plus uncommitted changes], " for the
// work tree of the current directory, or "" when git cannot tell.
func gitDescribe(ctx context.Context) string {
	rev, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	desc := "commit " + strings.TrimSpace(string(rev))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		desc += " plus uncommitted changes"
	}
	return desc + ", "
}

// bridgeConfig is the YAML of one bridge run: one route to the receiver with
// every setting at its default except the ones the issue names, then
// Options.BridgeConfig.
func (e *Env) bridgeConfig(admin, group, ordering string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	brokers, _ := json.Marshal(e.broker.addrs)
	extra := e.opts.BridgeConfig
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		extra += "\n"
	}
	return fmt.Sprintf(`kafka:
  brokers: %s
admin:
  listen: %s
log:
  level: warn
shutdown_timeout: 10s
routes:
  - name: bench
    topics: [%s]
    group: %s
    ordering: %s
    concurrency: %d
    target:
      webhook:
        url: %s
%s`, brokers, q(admin), q(e.broker.topic), q(group), ordering, e.opts.Concurrency, q(e.rcv.url), extra)
}

// runBridge starts the bridge with the clock, stops the clock when the
// receiver counted every record, reads the process's peak RSS and CPU time,
// then stops it with SIGTERM.
func (e *Env) runBridge(ctx context.Context, ordering string) (Result, error) {
	bin, err := e.bridgeBinary(ctx)
	if err != nil {
		return Result{}, err
	}
	admin, err := freeAddr()
	if err != nil {
		return Result{}, err
	}
	letter := map[string]string{"none": "d", "key": "e", "partition": "f"}[ordering]
	cfgPath := filepath.Join(e.tmp, "hookbridge-"+letter+".yaml")
	if err := os.WriteFile(cfgPath, []byte(e.bridgeConfig(admin, e.group(letter), ordering)), 0o600); err != nil {
		return Result{}, fmt.Errorf("writing config: %w", err)
	}

	t := newTally(e.opts.Records)
	e.rcv.count(t)
	defer e.rcv.count(nil)
	logs := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(bin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	cpu0 := selfCPU()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stopPerf := func() {}
	if e.opts.PerfDir != "" {
		if stopPerf, err = e.startPerf(letter, cmd.Process.Pid); err != nil {
			e.logf("(%s) %v", letter, err)
		}
	}
	kill := func() {
		stopPerf()
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := t.await(ctx, e.opts.Stall, exited); err != nil {
		kill()
		return Result{}, fmt.Errorf("%w\nhookbridge log (tail):\n%s", err, logs.String())
	}
	harness := selfCPU() - cpu0
	stopPerf()
	st := &BridgeStats{ExitCode: -1}
	st.PeakRSS, err = peakRSS(cmd.Process.Pid)
	if err == nil {
		st.CPU, err = processCPU(cmd.Process.Pid)
	}
	if err != nil {
		kill()
		return Result{}, err
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		st.ExitCode = cmd.ProcessState.ExitCode()
	case <-time.After(exitWait):
		e.logf("(%s) hookbridge did not exit within %s of SIGTERM; killed it", letter, exitWait)
		kill()
	}
	if st.ExitCode != 0 {
		e.logf("(%s) hookbridge exited with %d after SIGTERM; log tail:\n%s", letter, st.ExitCode, logs.String())
	}
	r := Result{HarnessCPU: harness, Bridge: st}
	t.fill(&r, start)
	return r, nil
}

// startPerf attaches `perf record -g` to process pid and returns the function
// that stops it and waits for the profile to be written.
func (e *Env) startPerf(letter string, pid int) (func(), error) {
	if err := os.MkdirAll(e.opts.PerfDir, 0o755); err != nil {
		return func() {}, fmt.Errorf("perf: %w", err)
	}
	out := filepath.Join(e.opts.PerfDir, "perf-"+letter+".data")
	logs := &tailBuffer{max: 4 << 10}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return func() {}, fmt.Errorf("perf: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					e.logf("(%s) perf: %v\n%s", letter, err, logs.String())
					return
				}
				e.logf("(%s) CPU profile of the bridge: perf report -i %s", letter, out)
			case <-time.After(exitWait):
				_ = cmd.Process.Kill()
				<-done
				e.logf("(%s) perf did not stop; killed it", letter)
			}
		})
	}, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ---- /proc -----------------------------------------------------------------

// peakRSS returns VmHWM of process pid in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("peak RSS: no VmHWM in /proc/<pid>/status")
}

// clockTicks is USER_HZ, the unit of times in /proc/<pid>/stat; Linux fixes
// it at 100 on every architecture Go supports.
const clockTicks = 100

// processCPU returns the user plus system CPU time of process pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process CPU: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("process CPU: malformed /proc/<pid>/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("process CPU: short /proc/<pid>/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("process CPU: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// selfCPU returns this process's user plus system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tailBuffer keeps the last max bytes written to it (roughly: it trims in
// halves). Safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > t.max {
		return string(t.b[len(t.b)-t.max:])
	}
	return string(t.b)
}
