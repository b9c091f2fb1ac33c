package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// BridgePackage is what the harness builds when Options.Bridge is empty.
const BridgePackage = "github.com/hookbridge/hookbridge/cmd/hookbridge"

// exitWait bounds how long a bridge may take to exit after SIGTERM before it
// is killed (its shutdown_timeout is 10s in the generated config).
const exitWait = 30 * time.Second

// bridgeSpec is what a bridge scenario varies: the route's ordering, and its
// target (the receiver one record per request, the receiver in batches, or the
// plugin).
type bridgeSpec struct {
	ordering string
	batch    bool // webhook batch mode: Options.BatchMessages per request
	plugin   bool // examples/plugin-go with ENRICH_ACK_ONLY=1 instead of the receiver
}

// bridgeScenario returns the run function of a bridge scenario: the real
// hookbridge binary with one route.
func bridgeScenario(letter string, spec bridgeSpec) func(*Env, context.Context) (Result, error) {
	return func(e *Env, ctx context.Context) (Result, error) { return e.runBridge(ctx, letter, spec) }
}

// PluginPackage is the plugin (p) runs, built when Options.Plugin is empty.
const PluginPackage = "github.com/hookbridge/hookbridge/examples/plugin-go"

// pluginBinary returns the plugin to run, building it on first use.
func (e *Env) pluginBinary(ctx context.Context) (string, error) {
	if e.opts.Plugin != "" {
		return filepath.Abs(e.opts.Plugin)
	}
	e.pluginOnce.Do(func() {
		out := filepath.Join(e.tmp, "plugin-go")
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, PluginPackage)
		if msg, err := cmd.CombinedOutput(); err != nil {
			e.pluginErr = fmt.Errorf("bench: go build %s (run from inside the hookbridge module, or pass a binary): %w\n%s",
				PluginPackage, err, msg)
			return
		}
		e.pluginBin = out
		e.logf("built %s in %s", PluginPackage, time.Since(start).Round(time.Millisecond))
	})
	return e.pluginBin, e.pluginErr
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

// routeConfig is the part of a bridge configuration that differs between runs.
type routeConfig struct {
	topic, group, ordering string
	concurrency            int
	batch                  int // records per request; 0: one (webhook only)
	plugin                 string
	minInstances           int
	idleTimeout            string // "" for the default
}

// bridgeConfig is the YAML of one bridge run: one route, to the receiver or to
// the plugin, with every setting at its default except the ones the issue
// names, then Options.BridgeConfig.
func (e *Env) bridgeConfig(admin string, rc routeConfig) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	brokers, _ := json.Marshal(e.broker.addrs)
	extra := e.opts.BridgeConfig
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		extra += "\n"
	}
	var plugins, target string
	if rc.plugin != "" {
		plugins = fmt.Sprintf(`plugins:
  bench:
    command: [%s]
    env: {ENRICH_ACK_ONLY: "1"}
    instances: {min: %d, max: %d}
    concurrency_per_instance: %d
`, q(rc.plugin), rc.minInstances, e.opts.PluginInstances, e.opts.PluginConcurrency)
		if rc.idleTimeout != "" {
			plugins += "    idle_timeout: " + rc.idleTimeout + "\n"
		}
		target = "      plugin: bench\n"
	} else {
		target = fmt.Sprintf("      webhook:\n        url: %s\n", q(e.rcv.url))
		if rc.batch > 0 {
			target += fmt.Sprintf("        batch: {max_messages: %d, max_wait: 20ms}\n", rc.batch)
		}
	}
	return fmt.Sprintf(`kafka:
  brokers: %s
admin:
  listen: %s
log:
  level: warn
shutdown_timeout: 10s
%sroutes:
  - name: bench
    topics: [%s]
    group: %s
    ordering: %s
    concurrency: %d
    target:
%s%s`, brokers, q(admin), plugins, q(rc.topic), q(rc.group), rc.ordering, rc.concurrency, target, extra)
}

// bridgeProc is a running hookbridge process.
type bridgeProc struct {
	cmd    *exec.Cmd
	pid    int
	admin  string // host:port of /metrics and /readyz
	logs   *tailBuffer
	exited chan struct{}
}

// startBridge writes the configuration and starts the bridge; its extra
// args are added to its command line.
func (e *Env) startBridge(ctx context.Context, name string, rc routeConfig, args ...string) (*bridgeProc, error) {
	bin, err := e.bridgeBinary(ctx)
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(e.tmp, "hookbridge-"+name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(e.bridgeConfig(admin, rc)), 0o600); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	b := &bridgeProc{admin: admin, logs: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	b.cmd = exec.Command(bin, append([]string{"run", "-c", cfgPath}, args...)...)
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	b.pid = b.cmd.Process.Pid
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()
	return b, nil
}

func (b *bridgeProc) kill() {
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// stop sends SIGTERM and returns the exit code (-1: killed after exitWait).
func (b *bridgeProc) stop() int {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return b.cmd.ProcessState.ExitCode()
	case <-time.After(exitWait):
		b.kill()
		return -1
	}
}

// runBridge starts the bridge with the clock, stops the clock when every
// record was counted (by the receiver, or for a plugin route by the bridge's
// own hookbridge_records_delivered_total), reads the process's peak RSS and
// CPU time (and its plugin processes'), then stops it with SIGTERM and reads
// the offsets its group committed.
func (e *Env) runBridge(ctx context.Context, letter string, spec bridgeSpec) (Result, error) {
	rc := routeConfig{topic: e.broker.topic, group: e.group(letter), ordering: spec.ordering, concurrency: e.opts.Concurrency}
	if spec.batch {
		rc.batch, rc.concurrency = e.opts.BatchMessages, e.opts.BatchConcurrency
	}
	if spec.plugin {
		var err error
		if rc.plugin, err = e.pluginBinary(ctx); err != nil {
			return Result{}, err
		}
		rc.minInstances = 1
	}

	t := newTally(e.opts.Records)
	if !spec.plugin {
		e.rcv.count(t)
		defer e.rcv.count(nil)
	}
	cpu0 := selfCPU()
	start := time.Now()
	var args []string
	if e.opts.ProfileDir != "" {
		var err error
		if args, err = e.profileArgs(letter); err != nil {
			return Result{}, err
		}
	}
	b, err := e.startBridge(ctx, letter, rc, args...)
	if err != nil {
		return Result{}, err
	}
	var w *watcher
	if spec.plugin {
		w = newWatcher(b)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.run(wctx, t)
	}
	stopPerf := func() {}
	if e.opts.PerfDir != "" {
		if stopPerf, err = e.startPerf(letter, b.pid); err != nil {
			e.logf("(%s) %v", letter, err)
		}
	}
	kill := func() {
		stopPerf()
		b.kill()
	}

	if err := t.await(ctx, e.opts.Stall, b.exited); err != nil {
		kill()
		return Result{}, fmt.Errorf("%w\nhookbridge log (tail):\n%s", err, b.logs.String())
	}
	harness := selfCPU() - cpu0
	stopPerf()
	st := &BridgeStats{ExitCode: -1, Committed: -1}
	var failed int
	if w != nil {
		st.Plugins, failed = w.finish()
	}
	st.PeakRSS, err = peakRSS(b.pid)
	if err == nil {
		st.CPU, err = processCPU(b.pid)
	}
	if err == nil {
		st.Switches, err = contextSwitches(b.pid)
	}
	if err != nil {
		kill()
		return Result{}, err
	}

	st.ExitCode = b.stop()
	if st.ExitCode == -1 {
		e.logf("(%s) hookbridge did not exit within %s of SIGTERM; killed it", letter, exitWait)
	} else if st.ExitCode != 0 {
		e.logf("(%s) hookbridge exited with %d after SIGTERM; log tail:\n%s", letter, st.ExitCode, b.logs.String())
	}
	if c, err := e.broker.committed(rc.group, e.opts.Partitions); err != nil {
		e.logf("(%s) %v", letter, err)
	} else {
		st.Committed = c
	}
	r := Result{HarnessCPU: harness, Bridge: st, Failed: failed}
	t.fill(&r, start)
	return r, nil
}

// The harness reads the bridge's /metrics while a plugin route drains (p)
// every metricsPoll, and every metricsPollNear once the last record is
// projected within two metricsPoll: a scrape costs the bridge about 1.3 ms of
// CPU (16 KB of text), so polling fast throughout would slow it down by
// several percent, and polling slowly throughout would blur the end of the
// clock.
const (
	metricsPoll     = 100 * time.Millisecond
	metricsPollNear = 5 * time.Millisecond
)

// watcher reads a bridge's /metrics and samples its child processes (the
// plugin processes).
type watcher struct {
	b      *bridgeProc
	client *http.Client
	url    string

	mu     sync.Mutex
	procs  map[int]*ProcStats
	order  []int
	failed int64
	done   chan struct{} // closed when run returns
	stop   chan struct{}
}

func newWatcher(b *bridgeProc) *watcher {
	return &watcher{b: b, client: &http.Client{Timeout: 5 * time.Second}, url: "http://" + b.admin + "/metrics",
		procs: map[int]*ProcStats{}, done: make(chan struct{}), stop: make(chan struct{})}
}

// run feeds t with the bridge's delivered records until ctx ends or finish
// is called, every metricsPoll and every metricsPollNear close to the end,
// and samples the plugin processes every metricsPoll.
func (w *watcher) run(ctx context.Context, t *tally) {
	defer close(w.done)
	var last int64
	lastAt, sampled := time.Now(), time.Time{}
	for {
		now := time.Now()
		next := metricsPoll
		if m, err := w.metrics(); err == nil {
			t.setDelivered(m.delivered, now)
			w.mu.Lock()
			w.failed = m.failed
			w.mu.Unlock()
			if rate := float64(m.delivered-last) / now.Sub(lastAt).Seconds(); rate > 0 {
				if eta := time.Duration(float64(int64(t.n)-m.delivered) / rate * float64(time.Second)); eta < 2*metricsPoll {
					next = metricsPollNear
				}
			}
			last, lastAt = m.delivered, now
		}
		if now.Sub(sampled) >= metricsPoll {
			w.sample()
			sampled = now
		}
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-time.After(next):
		}
	}
}

// finish stops run and returns the final figures of the plugin processes
// and the failed deliveries.
func (w *watcher) finish() ([]ProcStats, int) {
	close(w.stop)
	<-w.done
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]ProcStats, 0, len(w.order))
	for _, pid := range w.order {
		out = append(out, *w.procs[pid])
	}
	return out, int(w.failed)
}

// sample reads VmHWM and CPU of every live child of the bridge.
func (w *watcher) sample() {
	for _, pid := range children(w.b.pid) {
		rss, err1 := peakRSS(pid)
		cpu, err2 := processCPU(pid)
		if err1 != nil || err2 != nil {
			continue // exited meanwhile
		}
		w.mu.Lock()
		p, ok := w.procs[pid]
		if !ok {
			p = &ProcStats{PID: pid}
			w.procs[pid] = p
			w.order = append(w.order, pid)
		}
		p.PeakRSS, p.CPU = max(p.PeakRSS, rss), max(p.CPU, cpu)
		w.mu.Unlock()
	}
}

// bridgeMetrics are the counters the harness reads from /metrics, summed
// over their labels.
type bridgeMetrics struct {
	delivered, failed int64
}

func (w *watcher) metrics() (bridgeMetrics, error) {
	var m bridgeMetrics
	resp, err := w.client.Get(w.url)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return m, err
	}
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: %s", w.url, resp.Status)
	}
	m.delivered = sumMetric(body, "hookbridge_records_delivered_total")
	m.failed = sumMetric(body, "hookbridge_records_failed_total")
	return m, nil
}

// sumMetric adds up the samples of metric name in a Prometheus text page.
func sumMetric(page []byte, name string) int64 {
	var sum float64
	for line := range bytes.SplitSeq(page, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if i := bytes.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return int64(sum + 0.5)
}

// children returns the PIDs of the live (not zombie) children of pid: from
// /proc/<pid>/task/*/children when the kernel has it, else by scanning /proc
// for processes whose PPid is pid.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	if len(tasks) > 0 {
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, s := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(s); err == nil {
					out = append(out, c)
				}
			}
		}
	} else {
		ents, _ := os.ReadDir("/proc")
		for _, d := range ents {
			c, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if pp, _ := procStatus(c, "PPid:"); pp == strconv.Itoa(pid) {
				out = append(out, c)
			}
		}
	}
	return slices.DeleteFunc(out, func(c int) bool {
		st, err := procStatus(c, "State:")
		return err != nil || strings.HasPrefix(st, "Z")
	})
}

// procStatus returns the value of one field of /proc/<pid>/status.
func procStatus(pid int, field string) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// contextSwitches returns the voluntary plus involuntary context switches of
// every thread of process pid so far: how often its threads went to sleep
// and were woken (or were preempted). Per record, it counts the wakeups a
// design costs, which records/s on a busy machine blurs.
func contextSwitches(pid int) (int64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("context switches: %w", err)
	}
	var n int64
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/status")
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n, nil
}

// ---- plugin cold starts -------------------------------------------------------

// ColdStarts are the plugin start-up figures of a run.
type ColdStarts struct {
	// Cold are the times from producing one record to the bridge counting it
	// delivered, each with no plugin process running (instances.min 0, after
	// the pool scaled to zero): process start, handshake, the call.
	Cold []time.Duration
	// Warm are the same times for a record produced right after each cold
	// one, with the process running: the consume-and-call floor.
	Warm []time.Duration
	// PeakRSS is VmHWM of each cold-started process when it was last seen.
	PeakRSS []int64
	// Poll is the resolution of the clock (how often /metrics was read).
	Poll time.Duration
}

// coldPoll is how often /metrics is read while a cold start is timed. Each
// read costs the bridge about 1.3 ms of CPU, so this keeps a quarter of a
// core busy while a record is awaited; 2 ms and 10 ms gave medians within
// 5-8 ms of each other (bench/README.md).
const coldPoll = 5 * time.Millisecond

// MeasureColdStarts times n plugin cold starts. It creates a topic of one
// partition, runs the bridge with one plugin route on it (instances.min 0,
// idle_timeout 1s), delivers one unmeasured record (so that the consumer and
// the page cache are warm), and then n times: waits until no plugin process
// is left, produces one record and times it to delivered, then produces
// another one and times it with the process running.
func (e *Env) MeasureColdStarts(ctx context.Context, n int) (*ColdStarts, error) {
	plugin, err := e.pluginBinary(ctx)
	if err != nil {
		return nil, err
	}
	topic := e.broker.topic + ".cold"
	if err := e.broker.createTopic(ctx, topic, 1); err != nil {
		return nil, err
	}
	prod, err := e.broker.syncProducer()
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	e.runs++
	rc := routeConfig{topic: topic, group: e.group("cold"), ordering: "none", concurrency: e.opts.Concurrency,
		plugin: plugin, minInstances: 0, idleTimeout: "1s"}
	e.logf("plugin cold starts: %d, on topic %s (instances.min 0, idle_timeout 1s)", n, topic)
	b, err := e.startBridge(ctx, "cold", rc)
	if err != nil {
		return nil, err
	}
	w := newWatcher(b)
	fail := func(err error) (*ColdStarts, error) {
		b.kill()
		return nil, fmt.Errorf("bench: plugin cold start: %w\nhookbridge log (tail):\n%s", err, b.logs.String())
	}
	if err := waitFor(ctx, b, 60*time.Second, 20*time.Millisecond, func() bool { return ready(w.client, b.admin) }); err != nil {
		return fail(fmt.Errorf("waiting for /readyz: %w", err))
	}
	// one delivers a record and returns the time from producing it to the
	// bridge counting it delivered.
	var delivered int64
	one := func() (time.Duration, error) {
		start := time.Now()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value(0, e.opts.RecordSize))}); err != nil {
			return 0, err
		}
		err := waitFor(ctx, b, 30*time.Second, coldPoll, func() bool {
			m, err := w.metrics()
			return err == nil && m.delivered > delivered
		})
		took := time.Since(start)
		delivered++
		return took, err
	}
	if _, err := one(); err != nil {
		return fail(fmt.Errorf("the first record: %w", err))
	}
	cs := &ColdStarts{Poll: coldPoll}
	for i := range n {
		if err := waitFor(ctx, b, 30*time.Second, 50*time.Millisecond, func() bool { return len(children(b.pid)) == 0 }); err != nil {
			return fail(fmt.Errorf("waiting for the pool to scale to zero: %w", err))
		}
		cold, err := one()
		if err != nil {
			return fail(fmt.Errorf("cold start %d: %w", i+1, err))
		}
		warm, err := one()
		if err != nil {
			return fail(fmt.Errorf("warm record %d: %w", i+1, err))
		}
		var rss int64
		for _, pid := range children(b.pid) {
			if v, err := peakRSS(pid); err == nil {
				rss = max(rss, v)
			}
		}
		cs.Cold, cs.Warm, cs.PeakRSS = append(cs.Cold, cold), append(cs.Warm, warm), append(cs.PeakRSS, rss)
		e.logf("plugin cold start %d: %s (then warm: %s)", i+1, cold.Round(100*time.Microsecond), warm.Round(100*time.Microsecond))
	}
	if code := b.stop(); code != 0 {
		e.logf("(cold) hookbridge exited with %d after SIGTERM; log tail:\n%s", code, b.logs.String())
	}
	return cs, nil
}

// ready reports whether the bridge's /readyz answers 200.
func ready(c *http.Client, admin string) bool {
	resp, err := c.Get("http://" + admin + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitFor polls cond every interval until it holds, the bridge exits,
// timeout passes or ctx ends.
func waitFor(ctx context.Context, b *bridgeProc, timeout, interval time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.exited:
			return errors.New("hookbridge exited")
		case <-time.After(interval):
		}
	}
	return nil
}

// profileArgs returns the arguments that have the next run of scenario
// letter write its CPU profile into ProfileDir.
func (e *Env) profileArgs(letter string) ([]string, error) {
	if err := os.MkdirAll(e.opts.ProfileDir, 0o755); err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if e.profiles == nil {
		e.profiles = map[string]int{}
	}
	e.profiles[letter]++
	name := fmt.Sprintf("cpu-%s-%d.pprof", letter, e.profiles[letter])
	return []string{"--cpu-profile", filepath.Join(e.opts.ProfileDir, name)}, nil
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
