package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of the zero values of Options.
const (
	DefaultRecords     = 200_000
	DefaultRecordSize  = 256
	DefaultPartitions  = 6
	DefaultKeys        = 1000
	DefaultConcurrency = 64
	DefaultStall       = 60 * time.Second
	DefaultRuns        = 3

	// DefaultBatchMessages is batch.max_messages of (g) and (g2).
	DefaultBatchMessages = 100
	// DefaultBatchConcurrency is the route concurrency of (g) and (g2): the
	// records in flight must cover several full batches at once, or every
	// batch waits for max_wait instead of filling (see bench/README.md).
	DefaultBatchConcurrency = 512
	// DefaultPluginConcurrency is concurrency_per_instance of (p); with
	// DefaultPluginInstances processes it covers DefaultConcurrency calls.
	DefaultPluginConcurrency = 16
	DefaultPluginInstances   = 4
	// DefaultColdStarts is how many plugin cold starts are timed after the
	// rounds when (p) runs.
	DefaultColdStarts = 5
)

// Options configure a run. The zero value of every field means its default.
type Options struct {
	// Records is the number of records pre-loaded and drained by every
	// scenario. Default 200,000.
	Records int
	// RecordSize is the size of every record value (and HTTP body) in bytes,
	// at least 16. Default 256.
	RecordSize int
	// Partitions of the topic. Default 6.
	Partitions int
	// Keys is the number of distinct record keys. Default 1,000.
	Keys int
	// Concurrency is the number of requests in flight in (b) and (h), and
	// the route concurrency of the bridge in (d) to (f) and (p). Default 64.
	Concurrency int
	// BatchMessages is batch.max_messages (records per request) of (g) and
	// (g2); their batch.max_wait is 20ms. Default 100.
	BatchMessages int
	// BatchConcurrency is the route concurrency of (g) and (g2). Default 512.
	BatchConcurrency int
	// PluginConcurrency is concurrency_per_instance of the plugin in (p).
	// Default 16.
	PluginConcurrency int
	// PluginInstances is instances.max of the plugin in (p) (instances.min
	// is 1). Default 4.
	PluginInstances int
	// ColdStarts is how many plugin cold starts are timed after the rounds
	// when (p) is among the scenarios. Default 5; negative: none.
	ColdStarts int
	// Plugin is the path of a built examples/plugin-go binary. Default "":
	// the harness builds one with `go build`.
	Plugin string
	// Brokers are the bootstrap addresses of a real Kafka cluster; the
	// harness creates a topic there and deletes it at the end. Default none:
	// an in-process kfake broker.
	Brokers []string
	// Bridge is the path of a built hookbridge binary. Default "": the
	// harness builds one with `go build`, which needs the current directory
	// to be inside the hookbridge module.
	Bridge string
	// BridgeConfig is YAML appended at the top level of the bridge's
	// generated configuration, to measure a variant, e.g.
	// "telemetry: {sample_ratio: 0}". Default "": every setting the issue
	// does not name is at its default.
	BridgeConfig string
	// PerfDir, when set, records a CPU profile of every bridge run with
	// `perf record -g` (perf must be installed) into PerfDir/perf-<letter>.data,
	// from just after the process started to the last record. Default "".
	PerfDir string
	// ProfileDir, when set, has every bridge run of a scenario write a Go
	// CPU profile of its whole run (`hookbridge run --cpu-profile`) into
	// ProfileDir/cpu-<letter>-<n>.pprof, n counting the runs of the
	// scenario from 1. Default "".
	ProfileDir string
	// Runs is how many times every scenario drains the topic, in rounds
	// (a to p, then again); a result is the run with the median rate.
	// Default 3.
	Runs int
	// Stall aborts a scenario that counted no new record for this long.
	// Default 60s.
	Stall time.Duration
	// Log receives progress lines. Default: discarded.
	Log io.Writer
}

func (o *Options) applyDefaults() {
	setDefault(&o.Records, DefaultRecords)
	setDefault(&o.RecordSize, DefaultRecordSize)
	setDefault(&o.Partitions, DefaultPartitions)
	setDefault(&o.Keys, DefaultKeys)
	setDefault(&o.Concurrency, DefaultConcurrency)
	setDefault(&o.Stall, DefaultStall)
	setDefault(&o.Runs, DefaultRuns)
	setDefault(&o.BatchMessages, DefaultBatchMessages)
	setDefault(&o.BatchConcurrency, DefaultBatchConcurrency)
	setDefault(&o.PluginConcurrency, DefaultPluginConcurrency)
	setDefault(&o.PluginInstances, DefaultPluginInstances)
	setDefault(&o.ColdStarts, DefaultColdStarts)
	if o.Log == nil {
		o.Log = io.Discard
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Records < 1 {
		errs = append(errs, errors.New("records must be at least 1"))
	}
	if o.RecordSize < minRecordSize {
		errs = append(errs, fmt.Errorf("record size must be at least %d bytes", minRecordSize))
	}
	if o.Partitions < 1 || o.Keys < 1 || o.Concurrency < 1 || o.Runs < 1 {
		errs = append(errs, errors.New("partitions, keys, concurrency and runs must be at least 1"))
	}
	if o.BatchMessages < 1 || o.BatchConcurrency < 1 || o.PluginConcurrency < 1 || o.PluginInstances < 1 {
		errs = append(errs, errors.New("batch size, batch concurrency, plugin concurrency and plugin instances must be at least 1"))
	}
	for i, e := range errs {
		errs[i] = fmt.Errorf("bench: %w", e)
	}
	return errors.Join(errs...)
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Target is the figure a scenario should reach: at least Ratio times the
// records/s of scenario Of, measured in the same run.
type Target struct {
	Of    string
	Ratio float64
}

func (t Target) String() string { return fmt.Sprintf(">= %.2f x (%s)", t.Ratio, t.Of) }

// Scenario is one way of draining the topic.
type Scenario struct {
	// Letter is the scenario's name: "a" to "f" in the issue, then "bx",
	// "h", "hx", "cx", "c2", "ct", "cw", "cw2", "g", "g2" and "p".
	Letter string
	// Name is short and fit for a benchmark name, e.g. "bridge-key".
	Name string
	// Title is the row label of the table.
	Title string
	// Target is what the scenario should reach; nil for the limits.
	Target *Target
	// Info marks a scenario the issue does not ask for, run for insight.
	Info bool
	// OwnProcess is true when the scenario's client runs in a child process
	// of the harness ((bx), (hx), (cx), (ct), (cw), (cw2)); Result.ClientCPU
	// is its CPU time.
	OwnProcess bool
	// Bridge is true when the scenario runs the hookbridge binary.
	Bridge bool
	// Plugin is true when the bridge's route has the plugin as its target:
	// records are counted through the bridge's /metrics, not the receiver.
	Plugin bool

	run func(e *Env, ctx context.Context) (Result, error) // a method expression of *Env
}

// Scenarios returns every scenario, in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{Letter: "a", Name: "consume-only", Title: "sarama consume-only (read limit)",
			run: (*Env).runConsumeOnly},
		{Letter: "b", Name: "http-only", Title: "HTTP-only POSTs (HTTP limit)",
			run: (*Env).runHTTPOnly},
		{Letter: "bx", Name: "http-only-proc", Title: "(b) from a process of its own (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) { return e.runClientProc(ctx, "bx", "post", false) }},
		{Letter: "h", Name: "http-contract", Title: "HTTP-only + contract headers (info)", Info: true,
			run: (*Env).runHTTPContract},
		{Letter: "hx", Name: "bridge-target-proc", Title: "the bridge's webhook target, no Kafka (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) { return e.runClientProc(ctx, "hx", "target", false) }},
		{Letter: "c", Name: "hand-loop", Title: "hand-written sarama->net/http",
			run: (*Env).runHandLoop},
		{Letter: "cx", Name: "hand-loop-proc", Title: "(c) in a process of its own (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) { return e.runClientProc(ctx, "cx", "loop", false) }},
		{Letter: "c2", Name: "hand-loop-contract", Title: "hand-written loop + contract headers (info)", Info: true,
			run: (*Env).runHandLoopContract},
		{Letter: "ct", Name: "bridge-target-loop-proc", Title: "hand loop, the bridge's webhook target (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) {
				return e.runClientProc(ctx, "ct", "loop-target", false)
			}},
		{Letter: "cw", Name: "wire-loop-proc", Title: "hand loop, a connection per partition (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) {
				return e.runClientProc(ctx, "cw", "loop-wire", false)
			}},
		{Letter: "cw2", Name: "wire-loop-contract-proc", Title: "(cw) + contract headers (info)", Info: true, OwnProcess: true,
			run: func(e *Env, ctx context.Context) (Result, error) {
				return e.runClientProc(ctx, "cw2", "loop-wire", true)
			}},
		{Letter: "d", Name: "bridge-none", Title: "hookbridge ordering: none",
			Target: &Target{Of: "b", Ratio: 0.85}, Bridge: true, run: bridgeScenario("d", bridgeSpec{ordering: "none"})},
		{Letter: "e", Name: "bridge-key", Title: "hookbridge ordering: key",
			Target: &Target{Of: "d", Ratio: 0.8}, Bridge: true, run: bridgeScenario("e", bridgeSpec{ordering: "key"})},
		{Letter: "f", Name: "bridge-partition", Title: "hookbridge ordering: partition",
			Target: &Target{Of: "c", Ratio: 1.0}, Bridge: true, run: bridgeScenario("f", bridgeSpec{ordering: "partition"})},
		{Letter: "g", Name: "bridge-batch", Title: "hookbridge batch, ordering: none",
			Target: &Target{Of: "a", Ratio: 0.5}, Bridge: true, run: bridgeScenario("g", bridgeSpec{ordering: "none", batch: true})},
		{Letter: "g2", Name: "bridge-batch-key", Title: "hookbridge batch, ordering: key (info)", Info: true,
			Bridge: true, run: bridgeScenario("g2", bridgeSpec{ordering: "key", batch: true})},
		{Letter: "p", Name: "bridge-plugin", Title: "hookbridge plugin-go (ack only), none",
			Target: &Target{Of: "d", Ratio: 1.0}, Bridge: true, Plugin: true,
			run: bridgeScenario("p", bridgeSpec{ordering: "none", plugin: true})},
	}
}

// SelectScenarios returns the scenarios whose letters are in the comma
// separated list only, in run order; every scenario when only is empty.
func SelectScenarios(only string) ([]Scenario, error) {
	all := Scenarios()
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	var letters []string
	for _, s := range all {
		letters = append(letters, s.Letter)
	}
	for l := range strings.SplitSeq(only, ",") {
		l = strings.ToLower(strings.Trim(strings.TrimSpace(l), "()"))
		if l == "" {
			continue
		}
		found := false
		for _, s := range all {
			if s.Letter == l {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("bench: unknown scenario %q (want one of %s)", l, strings.Join(letters, ", "))
		}
		want[l] = true
	}
	var out []Scenario
	for _, s := range all {
		if want[s.Letter] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Result is the measurement of one scenario.
type Result struct {
	Scenario Scenario
	// Records is the number that had to be drained.
	Records int
	// Elapsed runs from the scenario's start (the consumer group created,
	// the first request sent or the bridge process started) to the moment
	// the last distinct record was counted.
	Elapsed time.Duration
	// FirstRecord runs from the start to the first record counted; for the
	// bridge it holds process start-up and joining the group.
	FirstRecord time.Duration
	// Delivered is the number of distinct records counted (== Records).
	Delivered int
	// Duplicates are records counted more than once.
	Duplicates int
	// Invalid are requests whose body was not one of the records (or, in
	// batch mode, a batch whose hookbridge-batch-size header did not match
	// the records in its body).
	Invalid int
	// Requests is the number of requests the receiver got, when it counted
	// the records; 0 otherwise.
	Requests int
	// Traced is the number of single-record requests that carried a
	// traceparent header.
	Traced int
	// Failed is the bridge's hookbridge_records_failed_total at the end, for
	// the scenarios counted through /metrics (p); 0 otherwise.
	Failed int
	// HarnessCPU is the CPU time of this process during Elapsed: the kfake
	// broker, the receiver, and the clients of the scenarios without a bridge.
	HarnessCPU time.Duration
	// ClientCPU is the CPU time of the client process of (bx), (hx), (cx)
	// and (ct) during Elapsed; 0 for the other scenarios.
	ClientCPU time.Duration
	// ClientSwitches are the context switches of the client process's
	// threads, read with ClientCPU (see contextSwitches); 0 when it could
	// not be read (a posting client that had already exited).
	ClientSwitches int64
	// Bridge holds the bridge process figures; nil when no bridge ran.
	Bridge *BridgeStats
	// Rates are the records/s of every run of the scenario, in run order,
	// when it ran more than once; the other fields are the median run's.
	Rates []float64
}

// BridgeStats are figures of the hookbridge process of one scenario.
type BridgeStats struct {
	// PeakRSS is VmHWM in bytes, read when the last record was counted.
	PeakRSS int64
	// CPU is the process's user plus system time when the last record was
	// counted.
	CPU time.Duration
	// Switches are the context switches of all the process's threads when
	// the last record was counted (see contextSwitches).
	Switches int64
	// ExitCode is the exit code after SIGTERM (-1: killed).
	ExitCode int
	// Committed is the sum over the topic's partitions of the offsets the
	// bridge's group committed, read after the bridge exited: the records
	// it acknowledged (== Records when all of them were). -1: unknown.
	Committed int64
	// Plugins are the plugin processes the bridge started (children of the
	// bridge process), in the order they were first seen; nil for webhooks.
	Plugins []ProcStats
}

// ProcStats are figures of one plugin process.
type ProcStats struct {
	PID int
	// PeakRSS is VmHWM in bytes, last read when the last record was counted
	// (or when the process was last seen, if it exited before).
	PeakRSS int64
	// CPU is user plus system time, read at the same moment.
	CPU time.Duration
}

// PluginCPU returns the CPU time of all plugin processes.
func (b *BridgeStats) PluginCPU() time.Duration {
	var d time.Duration
	for _, p := range b.Plugins {
		d += p.CPU
	}
	return d
}

// Rate is the result in records per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// Env is a started harness: broker, loaded topic and receiver, shared by the
// scenarios. Run scenarios one at a time.
type Env struct {
	opts   Options
	broker *broker
	rcv    *receiver
	tmp    string
	runs   int // scenarios run so far; names consumer groups
	// profiles counts each scenario's profiled runs (ProfileDir)
	profiles map[string]int

	buildOnce sync.Once
	bin       string
	buildErr  error
	build     string // bridgeBuild of the binary, once known

	pluginOnce sync.Once
	pluginBin  string
	pluginErr  error
}

// BridgeBuild describes the hookbridge binary the bridge scenarios ran: VCS
// revision, uncommitted changes, Go version; "" before any bridge ran.
func (e *Env) BridgeBuild() string { return e.build }

// NewEnv starts a broker (or connects to opts.Brokers), creates and
// pre-loads the topic, and starts the receiver. Close it when done.
func NewEnv(ctx context.Context, opts Options) (e *Env, err error) {
	opts.applyDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	e = &Env{opts: opts}
	defer func() {
		if err != nil {
			_ = e.Close()
			e = nil
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "hookbridge-bench"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if e.broker, err = startBroker(ctx, opts); err != nil {
		return nil, err
	}
	e.logf("broker: %s, topic %s with %d partitions", e.broker.describe(), e.broker.topic, opts.Partitions)
	start := time.Now()
	if err := e.broker.preload(ctx, opts); err != nil {
		return nil, err
	}
	took := time.Since(start)
	e.logf("pre-loaded %d records of %d B over %d keys in %s (%.0f records/s, not part of any figure)",
		opts.Records, opts.RecordSize, opts.Keys, took.Round(time.Millisecond), float64(opts.Records)/took.Seconds())
	if err := e.broker.warmUp(ctx); err != nil {
		return nil, err
	}
	if e.rcv, err = startReceiver(opts.RecordSize); err != nil {
		return nil, err
	}
	return e, nil
}

// Options returns the options in effect, defaults applied.
func (e *Env) Options() Options { return e.opts }

// Broker describes the broker: "kfake (in process)" or the addresses.
func (e *Env) Broker() string { return e.broker.describe() }

// Close stops the receiver and the broker (deleting the topic on a real
// cluster) and removes temporary files.
func (e *Env) Close() error {
	var errs []error
	if e.rcv != nil {
		errs = append(errs, e.rcv.close())
	}
	if e.broker != nil {
		errs = append(errs, e.broker.close())
	}
	if e.tmp != "" {
		errs = append(errs, os.RemoveAll(e.tmp))
	}
	return errors.Join(errs...)
}

// Run drains the topic once with scenario s.
func (e *Env) Run(ctx context.Context, s Scenario) (Result, error) {
	e.runs++
	e.logf("(%s) %s: draining %d records", s.Letter, s.Title, e.opts.Records)
	r, err := s.run(e, ctx)
	if err != nil {
		return Result{}, fmt.Errorf("bench: (%s) %s: %w", s.Letter, s.Title, err)
	}
	r.Scenario = s
	r.Records = e.opts.Records
	msg := fmt.Sprintf("(%s) drained in %s: %.0f records/s", s.Letter, r.Elapsed.Round(time.Millisecond), r.Rate())
	if r.Bridge != nil {
		msg += fmt.Sprintf(", bridge peak RSS %.1f MB, CPU %s, %.2f context switches per record", mb(r.Bridge.PeakRSS),
			r.Bridge.CPU.Round(10*time.Millisecond), float64(r.Bridge.Switches)/float64(r.Records))
	}
	e.logf("%s", msg)
	return r, nil
}

// group names a fresh consumer group for the current scenario run.
func (e *Env) group(letter string) string {
	return fmt.Sprintf("%s.%s.%d", e.broker.topic, letter, e.runs)
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.opts.Log, "bench: "+format+"\n", args...)
}

// Prepare builds the bridge binary (and the plugin) now if one of scenarios
// needs it, so that a build failure shows before anything is measured.
func (e *Env) Prepare(ctx context.Context, scenarios []Scenario) error {
	for _, s := range scenarios {
		if s.Bridge {
			if _, err := e.bridgeBinary(ctx); err != nil {
				return err
			}
			break
		}
	}
	for _, s := range scenarios {
		if s.Plugin {
			_, err := e.pluginBinary(ctx)
			return err
		}
	}
	return nil
}

// Run starts an Env, runs the scenarios in order (Options.Runs rounds of
// them) and returns the report.
func Run(ctx context.Context, opts Options, scenarios []Scenario) (rep *Report, err error) {
	e, err := NewEnv(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := e.Close(); err == nil {
			err = cerr
		}
	}()
	rep = NewReport(e)
	if err := e.Prepare(ctx, scenarios); err != nil {
		return rep, err
	}
	runs := make(map[string][]Result)
	for round := range e.opts.Runs {
		if e.opts.Runs > 1 {
			e.logf("round %d of %d", round+1, e.opts.Runs)
		}
		for _, s := range scenarios {
			r, err := e.Run(ctx, s)
			if err != nil {
				return rep, err
			}
			runs[s.Letter] = append(runs[s.Letter], r)
		}
	}
	for _, s := range scenarios {
		rep.Add(Median(runs[s.Letter]))
	}
	if e.opts.ColdStarts > 0 && slices.ContainsFunc(scenarios, func(s Scenario) bool { return s.Plugin }) {
		cs, err := e.MeasureColdStarts(ctx, e.opts.ColdStarts)
		if err != nil {
			return rep, err
		}
		rep.ColdStart = cs
	}
	rep.Finish(e)
	return rep, nil
}

// Median returns the result with the median rate of rs (the higher of the
// two middle ones for an even count), with Rates set to every run's rate
// when there is more than one.
func Median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	if len(rs) == 1 {
		return rs[0]
	}
	rates := make([]float64, len(rs))
	sorted := slices.Clone(rs)
	for i, r := range rs {
		rates[i] = r.Rate()
	}
	slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.Rate(), b.Rate()) })
	m := sorted[len(sorted)/2]
	m.Rates = rates
	return m
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
