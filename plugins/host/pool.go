package host

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// Options configure a Pool. The zero value of every field means its default.
type Options struct {
	// Logger receives the pool's events and the plugin's log lines, all
	// with plugin=<name>. Default slog.Default().
	Logger *slog.Logger
	// ConfigDir is the directory of the configuration file; a relative
	// command is looked up there first (see config.ResolveExecutable).
	// Default "": the current directory, or PATH for a bare name.
	ConfigDir string
	// Env is added to the environment of every process, below the plugin's
	// configured env: what the bridge wants all plugins to know, such as
	// OTEL_EXPORTER_OTLP_ENDPOINT from telemetry.otlp_endpoint.
	//
	// A plugin does not inherit the bridge's environment (which holds the
	// secrets the configuration expands from ${VAR}): only PATH, HOME,
	// USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TMPDIR, the Windows
	// basics and OTEL_* pass through. Anything else a plugin needs goes in
	// its env, where ${VAR} passes a variable of the bridge on explicitly.
	Env map[string]string
	// StartTimeout, when set, overrides the plugin's start_timeout, which
	// bounds each step of the start of one process: its handshake, its
	// health check and the wait for its stream's ready message.
	StartTimeout time.Duration
	// CheckInterval is how often the pool looks for exited and idle
	// processes and starts processes up to instances.min. Default 1s.
	CheckInterval time.Duration
	// RestartBackoff is the wait before a process is started after a crash
	// or a failed start; it doubles with each consecutive failure up to
	// MaxRestartBackoff, and resets when a call succeeds. Defaults 100ms
	// and 10s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
}

// Option defaults.
const (
	DefaultCheckInterval     = time.Second
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 10 * time.Second
)

// Stats are a pool's gauges and counters, for metrics and tests.
type Stats struct {
	Instances int // processes running and in the pool
	Starting  int // processes being started
	InFlight  int // calls in flight
	Streams   int // of the processes, those whose calls go over one HandleStream stream (still open)

	Started       uint64 // processes started, in total
	ColdStarts    uint64 // of those, started because a call found no free slot (scale up, or from zero)
	Restarts      uint64 // processes found dead (exited, killed, unreachable) and replaced
	StartFailures uint64 // processes that failed to start
	ScaledDown    uint64 // processes stopped after idle_timeout
}

// Pool is the delivery target of one plugin: a supervised pool of its
// processes. Deliver may be called concurrently; Close once, after the last
// Deliver returned (a Deliver after Close fails).
type Pool struct {
	name     string
	cfg      config.Plugin
	opts     Options
	log      *slog.Logger
	hclog    hclog.Logger
	path     string
	args     []string
	env      []string
	checksum []byte
	maxBytes int

	mu        sync.Mutex
	instances []*instance
	starting  int
	waiting   int // callers in acquire that found no free slot
	inflight  int
	changed   chan struct{}                    // closed (and replaced) when a slot or an instance may have freed up
	failures  int                              // consecutive crashes and failed starts, for the backoff
	startErr  error                            // why the last start failed; nil once one succeeds
	timeouts  map[*instance]int                // calls in a row that ran out of time on an instance
	retiring  []*instance                      // out of the pool, stopped once their calls in flight ended
	aborts    map[*exec.Cmd]context.CancelFunc // kill a process still starting (spawn); Close calls them
	notBefore time.Time                        // no start before this
	closing   bool                             // Close began: no new Deliver
	closed    bool                             // processes are being stopped: no new start
	stats     Stats                            // counters only; gauges are computed

	calls     sync.WaitGroup // Deliver calls in progress
	bg        sync.WaitGroup // supervisor, starts and kills
	superOnce sync.Once
	done      chan struct{} // closed by Close: the supervisor stops
}

var (
	_ target.Target = (*Pool)(nil)
	_ target.Closer = (*Pool)(nil)
)

// New prepares the pool of the plugin named name. It resolves the command,
// verifies the executable's sha256 when one is configured (a mismatch is an
// error naming both sums; nothing is started), and starts no process and no
// goroutine: Start warms up instances.min processes, and the first Deliver
// starts what it needs. Zero values in cfg take the defaults of package
// config.
func New(name string, cfg config.Plugin, opts Options) (*Pool, error) {
	applyDefaults(&cfg, &opts)
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, fmt.Errorf("plugin %s: command is required", name)
	}
	if cfg.Instances.Min < 0 || cfg.Instances.Min > cfg.Instances.Max {
		return nil, fmt.Errorf("plugin %s: instances.min must be between 0 and instances.max (%d)", name, cfg.Instances.Max)
	}
	path, err := config.ResolveExecutable(opts.ConfigDir, cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	var sum []byte
	if cfg.SHA256 != "" {
		if sum, err = hex.DecodeString(cfg.SHA256); err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("plugin %s: sha256 must be 64 hexadecimal characters", name)
		}
		if err := verifyChecksum(name, path, cfg.SHA256); err != nil {
			return nil, err
		}
	}
	log := opts.Logger.With("plugin", name)
	return &Pool{
		name:     name,
		cfg:      cfg,
		opts:     opts,
		log:      log,
		hclog:    newHCLogger(log),
		path:     path,
		args:     cfg.Command[1:],
		env:      pluginEnv(hostEnviron(), opts.Env, cfg.Env, name, int(cfg.MaxMessageBytes)),
		checksum: sum,
		maxBytes: int(cfg.MaxMessageBytes),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// applyDefaults fills zero values, so that a Pool works from a config.Plugin
// that did not go through config.Load.
func applyDefaults(cfg *config.Plugin, opts *Options) {
	setDefault(&cfg.Instances.Max, config.DefaultMaxInstances)
	setDefault(&cfg.ConcurrencyPerInstance, config.DefaultConcurrencyPerInstance)
	setDefault(&cfg.IdleTimeout, config.DefaultIdleTimeout)
	setDefault(&cfg.Timeout, config.DefaultPluginTimeout)
	setDefault(&cfg.StartTimeout, config.DefaultPluginStartTimeout)
	setDefault(&cfg.MaxMessageBytes, config.DefaultPluginMaxMessageBytes)
	setDefault(&cfg.MaxOutputs, config.DefaultPluginMaxOutputs)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	setDefault(&opts.StartTimeout, cfg.StartTimeout.D())
	setDefault(&opts.CheckInterval, DefaultCheckInterval)
	setDefault(&opts.RestartBackoff, DefaultRestartBackoff)
	setDefault(&opts.MaxRestartBackoff, DefaultMaxRestartBackoff)
}

// setDefault sets *v to def when *v is zero or negative.
func setDefault[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Factory returns a constructor of plugin targets for bridge.Options.Plugins
// (it has the type of bridge.PluginFactory). Each target is a Pool whose
// instances.min processes are started, bounded by ctx, before it returns;
// a pool that fails to start is closed and its error returned.
func Factory(ctx context.Context, opts Options) func(name string, p config.Plugin) (target.Target, error) {
	return func(name string, p config.Plugin) (target.Target, error) {
		pool, err := New(name, p, opts)
		if err != nil {
			return nil, err
		}
		if err := pool.Start(ctx); err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = pool.Close(cctx)
			return nil, err
		}
		return pool, nil
	}
}

// Start starts the pool's supervisor and instances.min processes, and
// returns once they answered their health check (or the first error, or
// when ctx ends). Calling it is optional: Deliver starts what it needs.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return fmt.Errorf("plugin %s: %w", p.name, ErrClosed)
	}
	p.startSupervisorLocked()
	var started []<-chan error
	for len(p.instances)+p.starting < p.cfg.Instances.Min {
		started = append(started, p.startLocked(false))
	}
	p.mu.Unlock()
	var errs []error
	for _, errc := range started {
		select {
		case err := <-errc:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return p.ctxError(ctx)
		}
	}
	return errors.Join(errs...)
}

// Deliver hands the record to a plugin process and waits for its answer,
// at most the plugin's timeout per call. It starts a process when none has
// a free slot (up to instances.max; otherwise it waits for a slot, bounded
// by ctx), and retries the call on another process when the one handling it
// dies. Errors: the handler's, by kind; a timeout or a failed call is
// retryable; a record above the message limit is permanent; ctx ending is
// ctx's error (Canceled for a cancellation).
func (p *Pool) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	if !p.enter() {
		return nil, &target.Error{Kind: target.Retryable, Err: fmt.Errorf("plugin %s: %w", p.name, ErrClosed)}
	}
	defer p.calls.Done()
	if i := badHeaderKey(d.Record.Headers); i >= 0 {
		return nil, p.headerKeyError(i)
	}
	req := requestFromDelivery(d)
	size := proto.Size(req)
	if size > p.maxBytes {
		return nil, p.sizeError(size)
	}
	for crashes := 0; ; {
		inst, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		sent := time.Now()
		deadline := sent.Add(p.cfg.Timeout.D())
		resp, err := inst.handle(ctx, req, size, deadline)
		var failed bool
		if err != nil {
			expired := !time.Now().Before(deadline)
			if failed = instanceFailed(ctx, expired, err, inst); !failed {
				err = p.callError(ctx, expired, deadline, err)
			}
		}
		p.release(inst, err == nil)
		if !failed && err != nil && !time.Now().Before(deadline) && ctx.Err() == nil {
			p.timedOut(inst, sent)
		}
		switch {
		case err == nil:
			return resultFromProto(p.name, resp, p.cfg.MaxOutputs)
		case !failed:
			return nil, err
		}
		p.retire(inst, err)
		if crashes++; crashes > maxCrashRetries {
			return nil, &target.Error{Kind: target.Retryable,
				Err: fmt.Errorf("plugin %s: %d processes died handling %s: %w", p.name, crashes, req.GetId(), err)}
		}
		// The crash itself is a warning, once (retire, kill); a line for
		// each call it had in flight would be as many warnings as
		// concurrency_per_instance for one failure.
		p.log.DebugContext(ctx, "plugin process failed during a call; retrying the call on another", "record", req.GetId(), "pid", inst.pid, "error", err)
	}
}

// enter registers a Deliver unless Close began.
func (p *Pool) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.calls.Add(1)
	p.startSupervisorLocked()
	return true
}

// acquire reserves a call slot on a live instance, starting one when none
// is free and the pool may grow, or waiting for a slot.
func (p *Pool) acquire(ctx context.Context) (*instance, error) {
	for {
		if ctx.Err() != nil {
			return nil, p.ctxError(ctx)
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &target.Error{Kind: target.Retryable, Err: fmt.Errorf("plugin %s: %w", p.name, ErrClosed)}
		}
		if inst := p.pickLocked(); inst != nil {
			inst.inflight++
			p.inflight++
			p.mu.Unlock()
			return inst, nil
		}
		if stopping(ctx) {
			// No free slot, and the bridge is shutting down: the call
			// is not sent, and no process is started for it.
			p.mu.Unlock()
			return nil, p.stopError()
		}
		changed := p.changed
		var backoff time.Duration
		var started <-chan error
		// Start a process only for callers that the processes already
		// starting will not serve: a burst of calls starts as many
		// processes as it needs, not one per call.
		p.waiting++
		needed := p.waiting > p.starting*max(p.cfg.ConcurrencyPerInstance, 1)
		if needed && len(p.instances)+p.starting < p.cfg.Instances.Max {
			if backoff = time.Until(p.notBefore); backoff <= 0 {
				started = p.startLocked(true)
			}
		}
		p.mu.Unlock()
		err := p.await(ctx, started, changed, backoff)
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// await waits for the process a caller started (started not nil), or else
// for the pool to change or the backoff to pass.
func (p *Pool) await(ctx context.Context, started <-chan error, changed <-chan struct{}, backoff time.Duration) error {
	if started == nil {
		return p.wait(ctx, changed, backoff)
	}
	select {
	case err := <-started:
		if err != nil {
			return &target.Error{Kind: target.Retryable, Err: err}
		}
		return nil
	case <-ctx.Done():
		return p.ctxError(ctx) // the process still joins the pool
	case <-dispatch.Stopping(ctx):
		return p.stopError() // so does this one
	}
}

// stopError is the error of a call that waited for a process or a slot when
// the bridge began to shut down: it was not sent, so it is not in flight,
// and the drain does not wait for it (canceled: redelivered after restart,
// not counted by the breaker).
func (p *Pool) stopError() error {
	return fmt.Errorf("plugin %s: not sent: %w", p.name, dispatch.ErrStopping) // canceled, as ErrStopping is
}

// wait blocks until changed is closed, d passed (when d > 0) or ctx ended.
func (p *Pool) wait(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-changed:
	case <-timeout:
	case <-ctx.Done():
		return p.ctxError(ctx)
	case <-dispatch.Stopping(ctx):
		return p.stopError()
	}
	return nil
}

// pickLocked returns the busiest live instance with a free slot, so that
// load packs onto few processes and the others go idle and are stopped;
// nil when there is none. Instances whose process exited are removed.
func (p *Pool) pickLocked() *instance {
	var best *instance
	var gone []*instance
	for _, inst := range p.instances {
		if inst.exited() {
			gone = append(gone, inst)
			continue
		}
		if inst.inflight < p.cfg.ConcurrencyPerInstance && (best == nil || inst.inflight > best.inflight) {
			best = inst
		}
	}
	for _, inst := range gone {
		p.removeLocked(inst, true)
		p.killLocked(inst)
	}
	return best
}

// release frees the slot acquire reserved.
func (p *Pool) release(inst *instance, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	inst.inflight--
	p.inflight--
	inst.lastUsed = time.Now()
	if ok {
		inst.answered = inst.lastUsed
		inst.served = true
		p.failures = 0
		delete(p.timeouts, inst)
	}
	if inst.retiring && inst.inflight == 0 {
		p.retiring = slices.DeleteFunc(p.retiring, func(i *instance) bool { return i == inst })
		inst.retiring = false
		p.killLocked(inst)
	}
	p.broadcastLocked()
}

// hungAfter is how many calls in a row may run out of time on one process,
// with none answered in between, before it is taken as hung and replaced: a
// process that still runs but no longer answers (a deadlocked handler, a
// stream it stopped reading) would otherwise keep every call that reaches
// it waiting until its timeout, for good.
const hungAfter = 3

// timedOut counts a call on inst, sent at sent, that ran out of its time and
// replaces inst after hungAfter of them in a row. Its calls in flight fail as
// in a crash and are retried on another process. A call during which the
// process answered another is not counted: the process is alive and the call
// only slow (calls sent together, a burst's, run out of time together).
func (p *Pool) timedOut(inst *instance, sent time.Time) {
	p.mu.Lock()
	if inst.dead || inst.answered.After(sent) {
		p.mu.Unlock()
		return
	}
	if p.timeouts == nil {
		p.timeouts = make(map[*instance]int)
	}
	p.timeouts[inst]++
	n := p.timeouts[inst]
	p.mu.Unlock()
	if n >= hungAfter {
		p.markDead(inst, fmt.Errorf("%d calls in a row got no answer within %s (plugins.%s.timeout)", n, p.cfg.Timeout.D(), p.name))
	}
}

// markDead removes an instance taken as hung (timedOut), and stops its
// process at once.
func (p *Pool) markDead(inst *instance, cause error) {
	p.replace(inst, cause, "plugin process unreachable; replacing it", true)
}

// retire takes out of the pool an instance whose call failed because of the
// instance (see instanceFailed). A process that is still running and
// reachable refused the call (it is stopping: SIGTERM) or failed it at the
// transport; its other calls in flight may still be answered, so it is
// stopped only once they ended (or failed, at the latest at their
// deadline), not cut off with them: a call torn off a process that was
// finishing it would be handled a second time elsewhere. A process that is
// gone, or whose connection is closing, is stopped at once.
func (p *Pool) retire(inst *instance, cause error) {
	p.replace(inst, cause, "plugin process unreachable or stopping; replacing it", false)
}

// replace takes inst out of the pool, as a restart, and stops its process:
// at once when now, else as retire says.
func (p *Pool) replace(inst *instance, cause error, msg string, now bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if inst.dead {
		return
	}
	p.log.Warn(msg, "pid", inst.pid, "error", cause)
	p.removeLocked(inst, true)
	if now || inst.inflight == 0 || p.closed || inst.closing() {
		p.killLocked(inst)
		return
	}
	inst.retiring = true
	p.retiring = append(p.retiring, inst)
}

// removeLocked takes an instance out of the pool. A crashed one counts as
// a restart and delays the next start (exponential backoff).
func (p *Pool) removeLocked(inst *instance, crashed bool) {
	if inst.dead {
		return
	}
	inst.dead = true
	delete(p.timeouts, inst)
	p.instances = slices.DeleteFunc(p.instances, func(i *instance) bool { return i == inst })
	if crashed {
		p.stats.Restarts++
		p.noteFailureLocked()
		inst.crashed = true // killLocked says so once it is stopped
	}
	p.broadcastLocked()
}

// noteFailureLocked pushes the next start back: RestartBackoff doubled per
// consecutive failure, at most MaxRestartBackoff.
func (p *Pool) noteFailureLocked() {
	p.failures++
	d := p.opts.MaxRestartBackoff
	if p.failures <= 30 {
		d = min(p.opts.RestartBackoff<<(p.failures-1), p.opts.MaxRestartBackoff)
	}
	p.notBefore = time.Now().Add(d)
}

// broadcastLocked wakes every acquire waiting for a change.
func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// startLocked starts a process in the background; the channel receives the
// outcome once the process joined the pool (or failed to). Called with the
// pool open.
func (p *Pool) startLocked(cold bool) <-chan error {
	errc := make(chan error, 1)
	p.starting++
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		inst, err := p.spawn()
		p.mu.Lock()
		p.starting--
		closed := p.closed
		switch {
		case closed: // Close stopped it (see abortStartsLocked), or it started too late
			err = fmt.Errorf("plugin %s: %w", p.name, ErrClosed)
		case err != nil:
			p.stats.StartFailures++
			p.startErr = err
			p.noteFailureLocked()
		default:
			p.startErr = nil
			p.instances = append(p.instances, inst)
			p.stats.Started++
			if cold {
				p.stats.ColdStarts++
			}
		}
		p.broadcastLocked()
		p.mu.Unlock()
		switch {
		case err == nil:
			p.log.Info("plugin process started", "pid", inst.pid, "cold", cold)
		case closed:
			if inst != nil {
				inst.kill()
			}
		default:
			p.log.Error("plugin process failed to start", "error", err)
		}
		errc <- err
	}()
	return errc
}

// trackStart registers the abort of a process about to be started (see
// spawn), unless the pool is closed: then it reports false, and nothing
// may be started.
func (p *Pool) trackStart(cmd *exec.Cmd, abort context.CancelFunc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.aborts == nil {
		p.aborts = make(map[*exec.Cmd]context.CancelFunc)
	}
	p.aborts[cmd] = abort
	return true
}

// untrackStart forgets the abort of a process whose start ended: from
// then on the process is stopped as an instance, gracefully.
func (p *Pool) untrackStart(cmd *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.aborts, cmd)
}

// abortStartsLocked kills the processes still starting, with their process
// groups: go-plugin bounds a start only by the start timeout (start_timeout), and a
// process that hangs while it starts (before its handshake, in its health
// check) would hold Close that long, or outlive a bridge that stopped
// before. Their starts fail at once, and startLocked sees the pool closed.
func (p *Pool) abortStartsLocked() {
	for cmd, abort := range p.aborts {
		abort()
		delete(p.aborts, cmd)
	}
}

// killLocked stops an instance's process in the background, once its calls
// in flight ended or failed. After Close began stopping processes, it
// kills in the caller's goroutine instead: nothing may join p.bg then.
func (p *Pool) killLocked(inst *instance) {
	if p.closed {
		go p.kill(inst) // Close kills every process it knows; this one left the pool before
		return
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		p.kill(inst)
	}()
}

// kill stops inst's process and, when it crashed, warns once it is gone:
// by then go-plugin has read all the process wrote to its standard error,
// and the warning quotes the plain lines it wrote last (a Python traceback,
// a fatal error), which the log has only at debug level otherwise.
func (p *Pool) kill(inst *instance) {
	inst.kill()
	if !inst.crashed {
		return
	}
	if said := inst.said.String(); said != "" {
		p.log.Warn("plugin process died", "pid", inst.pid, "stderr_tail", said)
		return
	}
	p.log.Warn("plugin process died", "pid", inst.pid)
}

// startSupervisorLocked starts the supervisor once.
func (p *Pool) startSupervisorLocked() {
	p.superOnce.Do(func() {
		p.bg.Add(1)
		go p.supervise()
	})
}

// supervise checks the pool every CheckInterval until Close.
func (p *Pool) supervise() {
	defer p.bg.Done()
	t := time.NewTicker(p.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.check(time.Now())
		}
	}
}

// check removes exited processes, stops processes idle for longer than
// idle_timeout (the longest idle first) down to instances.min, and starts
// processes up to instances.min once the restart backoff allows.
func (p *Pool) check(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, inst := range slices.Clone(p.instances) {
		if inst.gone() {
			p.removeLocked(inst, true)
			p.killLocked(inst)
		}
	}
	idle := slices.DeleteFunc(slices.Clone(p.instances), func(i *instance) bool {
		return i.inflight > 0 || now.Sub(i.lastUsed) < p.cfg.IdleTimeout.D()
	})
	slices.SortFunc(idle, func(a, b *instance) int { return a.lastUsed.Compare(b.lastUsed) })
	for _, inst := range idle {
		if len(p.instances) <= p.cfg.Instances.Min {
			break
		}
		p.removeLocked(inst, false)
		p.stats.ScaledDown++
		p.log.Info("plugin process idle; stopping it", "pid", inst.pid, "idle", now.Sub(inst.lastUsed).Round(time.Millisecond).String())
		p.killLocked(inst)
	}
	if now.Before(p.notBefore) {
		return
	}
	missing := p.cfg.Instances.Min - len(p.instances) - p.starting
	if missing > 0 && p.failures > 0 {
		missing = 1 // after failures, one at a time
	}
	for range missing {
		p.startLocked(false)
	}
}

// Stats returns the pool's current gauges and counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Instances = len(p.instances)
	s.Starting = p.starting
	s.InFlight = p.inflight
	for _, inst := range p.instances {
		if inst.stream != nil && inst.stream.open() {
			s.Streams++
		}
	}
	return s
}

// Health returns nil unless the plugin cannot run: its last start failed and
// no process of it is running. A pool scaled to zero is healthy; one whose
// processes crash is healthy while it restarts them successfully.
func (p *Pool) Health() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.startErr != nil && len(p.instances) == 0 {
		return fmt.Errorf("cannot start: %w", p.startErr)
	}
	return nil
}

// PluginStats reports the pool to the bridge's metrics.
func (p *Pool) PluginStats() telemetry.PluginStats {
	s := p.Stats()
	return telemetry.PluginStats{Instances: int64(s.Instances), InFlight: int64(s.InFlight),
		Started: s.Started, ColdStarts: s.ColdStarts, Restarts: s.Restarts}
}

var _ telemetry.PluginStatser = (*Pool)(nil)

// Close stops the pool: it refuses new calls, waits for the calls in flight
// to finish (bounded by ctx), then stops every process and waits for them
// to exit (bounded by ctx). It may be called more than once.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	p.mu.Unlock()

	var errs []error
	if err := waitCtx(ctx, &p.calls); err != nil {
		errs = append(errs, fmt.Errorf("plugin %s: calls still in flight: %w", p.name, err))
	}
	p.mu.Lock()
	p.closed = true
	for _, inst := range p.retiring {
		inst.retiring = false // release must not kill it again
	}
	for _, inst := range append(p.instances, p.retiring...) {
		inst.dead = true
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			p.kill(inst) // a retiring one may have crashed
		}()
	}
	p.instances = nil
	p.retiring = nil
	p.abortStartsLocked()
	p.broadcastLocked()
	p.mu.Unlock()
	close(p.done)
	if err := waitCtx(ctx, &p.bg); err != nil {
		errs = append(errs, fmt.Errorf("plugin %s: processes still stopping: %w", p.name, err))
	}
	return errors.Join(errs...)
}

// waitCtx waits for wg, or until ctx ends.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopping reports whether the bridge began to shut down (the stop channel
// of ctx, dispatch.WithStop, is closed).
func stopping(ctx context.Context) bool {
	select {
	case <-dispatch.Stopping(ctx):
		return true
	default:
		return false
	}
}
