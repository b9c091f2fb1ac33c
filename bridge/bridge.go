// Package bridge wires the engine together: for every route a consumer group
// (bridge/kafka), a dispatch chain (bridge/dispatch) and a target (a webhook,
// or a plugin supplied by the caller), plus the producer for dead-letter and
// reply records and the admin endpoint.
package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookbridge/hookbridge/bridge/admin"
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
	"github.com/hookbridge/hookbridge/bridge/webhook"
)

// PluginFactory builds the target of a named plugin. The bridge never imports
// the plugin host; cmd/ supplies it.
type PluginFactory func(name string, p config.Plugin) (target.Target, error)

// Options configure a Bridge.
type Options struct {
	Version string
	Logger  *slog.Logger
	Metrics *telemetry.Metrics // nil: a private one is created
	Plugins PluginFactory      // nil: routes with a plugin target are refused
	// Ready, when set, receives the admin address and the broker addresses
	// once the bridge is consuming (the demo and tests use it).
	Ready func(adminAddr string, brokers []string)
}

// Bridge is the running engine.
type Bridge struct {
	opts Options
	log  *slog.Logger

	connected atomic.Bool // the shared Kafka client is up
	stopping  atomic.Bool
	reloads   chan reload

	mu     sync.Mutex
	cfg    *config.Config
	routes map[string]*runningRoute
}

type reload struct {
	cfg    *config.Config
	result chan error
}

// runningRoute is one route's consumer and what it owns.
type runningRoute struct {
	cfg      config.Route
	plugin   *config.Plugin    // the plugin's config when the target is a plugin
	files    [sha256.Size]byte // what startFiles found when the route started
	health   func() error      // the target's own health, when it reports one (a plugin)
	failed   error             // why the route could not start (then it has no consumer)
	consumer *kafka.Consumer
	cancel   context.CancelFunc
	done     chan error
}

// halted reports whether the route does not run until it is started again:
// it could not start, or its receiver disabled it (410 Gone). A reload starts
// such a route anew even when its configuration did not change, so that an
// operator whose receiver is back need not restart the bridge.
func (rr *runningRoute) halted() bool {
	return rr.failed != nil || rr.consumer.Disabled() != nil
}

// New prepares a bridge; it connects to nothing until Run.
func New(cfg *config.Config, opts Options) *Bridge {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Bridge{cfg: cfg, opts: opts, log: log, reloads: make(chan reload)}
}

// Ready returns nil when every route joined its group, nothing is stuck or
// disabled, every plugin can run, and the bridge is not shutting down.
func (b *Bridge) Ready() error {
	if b.stopping.Load() {
		return errors.New("shutting down")
	}
	_, err := b.routesReady()
	return err
}

// readiness is Ready's verdict and each route's, for the readiness gauges.
func (b *Bridge) readiness() telemetry.Readiness {
	routes, err := b.routesReady()
	return telemetry.Readiness{Ready: err == nil && !b.stopping.Load(), Routes: routes}
}

// routesReady returns each route's readiness and why the routes that are
// not ready are not (nil when every one is, and the routes have started).
func (b *Bridge) routesReady() ([]telemetry.RouteReadiness, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.routes == nil {
		if !b.connected.Load() {
			return nil, errors.New("connecting to Kafka")
		}
		return nil, errors.New("starting")
	}
	var routes []telemetry.RouteReadiness
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.routes)) {
		rr := b.routes[name]
		err := rr.ready()
		routes = append(routes, telemetry.RouteReadiness{Route: name, Group: rr.cfg.GroupID(), Ready: err == nil})
		errs = append(errs, err)
	}
	return routes, errors.Join(errs...)
}

// ready returns nil when the route is ready, else why not.
func (rr *runningRoute) ready() error {
	if rr.failed != nil {
		return rr.failed
	}
	err := rr.consumer.Ready()
	if rr.health != nil {
		if herr := rr.health(); herr != nil {
			err = errors.Join(err, fmt.Errorf("route %s: %w", rr.cfg.Name, herr))
		}
	}
	return err
}

// Run starts everything and blocks until ctx ends; then it drains every route
// (see kafka.Consumer.Run), closes targets and the producer, and returns.
// While it runs, Reload swaps the configuration of routes.
func (b *Bridge) Run(ctx context.Context) error {
	rt, err := b.prepare(ctx, b.cfg)
	if err != nil {
		return err
	}
	abandoned := false // the shutdown ran past its bound: leave rt to the process's exit
	defer func() {
		if !abandoned {
			rt.close()
		}
	}()
	b.mu.Lock()
	cfg := b.cfg
	b.mu.Unlock()
	// /readyz turns 503 as soon as the shutdown starts, also while the loop
	// below is busy with a reload that drains a changed route (which may
	// take up to shutdown_timeout) and has not seen ctx end yet.
	stopWatch := context.AfterFunc(ctx, func() { b.stopping.Store(true) })
	defer stopWatch()

	// The admin endpoint comes first and outlives the drain: /livez answers
	// while the bridge connects to Kafka (which takes up to about 90 s against
	// brokers that drop packets) and until every route has stopped; /readyz
	// says what it waits for.
	var wg sync.WaitGroup
	defer wg.Wait()
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	adminAddr := ""
	rt.metrics.SetReadiness(b.readiness)
	if cfg.Admin.Listen != config.AdminOff {
		srv, err := admin.Listen(cfg.Admin.Listen, b.Ready, rt.metrics.Handler(), b.log)
		if err != nil {
			return err
		}
		adminAddr = srv.Addr()
		wg.Go(func() {
			if err := srv.Run(adminCtx); err != nil {
				b.log.Warn("admin endpoint stopped", "error", err)
			}
		})
	}

	b.log.Info("connecting to Kafka", "brokers", rt.brokers, "admin", adminAddr)
	if err := rt.connect(ctx, cfg); err != nil {
		if ctx.Err() != nil {
			b.log.Info("stopped while connecting to Kafka; nothing was consumed")
			return nil
		}
		return err
	}
	b.connected.Store(true)
	routes := make(map[string]*runningRoute, len(cfg.Routes))
	for _, r := range cfg.Routes {
		rr, err := b.startRoute(ctx, rt, cfg, r)
		if err != nil {
			serr := stopRoutes(routes)
			if ctx.Err() != nil {
				// The signal came while a route started (its plugin's
				// processes, which wait for ctx): a shutdown, as while
				// connecting, not a failure to start. The routes started
				// already drained and committed.
				b.log.Info("stopped while starting the routes", "route", r.Name, "error", err)
				return serr
			}
			return err
		}
		routes[r.Name] = rr
	}
	b.mu.Lock()
	b.routes = routes
	b.mu.Unlock()

	b.log.Info("hookbridge running", "routes", len(routes), "brokers", rt.brokers, "admin", adminAddr)
	if b.opts.Ready != nil {
		b.opts.Ready(adminAddr, rt.brokers)
	}

	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case req := <-b.reloads:
			if ctx.Err() != nil {
				// The shutdown came with the reload (select picks either
				// at random): the routes drain as they are.
				req.result <- context.Cause(ctx)
				running = false
				continue
			}
			req.result <- b.apply(ctx, rt, req.cfg)
		}
	}
	b.stopping.Store(true)
	b.log.Info("shutting down: draining in-flight records", "timeout", cfg.ShutdownTimeout.D().String())
	b.mu.Lock()
	routes = b.routes
	b.mu.Unlock()
	// The drain is bounded by shutdown_timeout; the final commits, leaving
	// the groups and closing the producer and plugins are not, inside
	// sarama, against brokers that accept connections but do not answer.
	// Past the bound Run returns, and what still waits is left to the
	// process's exit, as after kill -9: nothing uncommitted is lost, it is
	// delivered again.
	bound := cfg.ShutdownTimeout.D() + shutdownFinish
	finished := make(chan error, 1)
	go func() {
		err := stopRoutes(routes)
		rt.close()
		finished <- err
	}()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case err = <-finished:
	case <-t.C:
		abandoned = true
		err = fmt.Errorf("%w (%s): the final offset commits, leaving the consumer groups or closing the producer "+
			"did not finish, as with brokers that do not answer or a group rebalance that waits for a member that is gone; "+
			"records not committed are delivered again", ErrShutdownTimedOut, bound)
	}
	stopAdmin()
	return err
}

// shutdownFinish is how long Run waits, past shutdown_timeout, for the
// commits, group leaves and closes that follow the drain.
const shutdownFinish = 5 * time.Second

// ErrShutdownTimedOut is returned by Run when the shutdown did not finish
// within shutdown_timeout plus shutdownFinish.
var ErrShutdownTimedOut = errors.New("shutdown did not finish within shutdown_timeout + 5s")

// stopRoutes cancels every route, waits for each to drain, and returns their
// errors.
func stopRoutes(routes map[string]*runningRoute) error {
	for _, rr := range routes {
		rr.cancel()
	}
	var errs []error
	for _, rr := range routes {
		if err := <-rr.done; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reload replaces the configuration of a running bridge: routes whose
// configuration (or plugin's, or a file their target reads only when it
// starts: startFiles) changed are drained and restarted, new routes
// start, removed ones drain and stop, and unchanged routes keep running,
// except those disabled by their receiver or that could not start: those
// start anew.
// Changes outside routes and plugins need a restart and are ignored with a
// warning. On error the old configuration stays in force.
func (b *Bridge) Reload(ctx context.Context, cfg *config.Config) error {
	req := reload{cfg: cfg, result: make(chan error, 1)}
	select {
	case b.reloads <- req:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return <-req.result
}

func (b *Bridge) apply(ctx context.Context, rt *runtime, cfg *config.Config) error {
	b.mu.Lock()
	old := b.cfg
	b.mu.Unlock()
	b.log.Info("applying a new configuration", "file", cfg.File)
	for _, s := range restartOnly(old, cfg) {
		b.log.Warn("reload: this setting changes only at restart; keeping the running value", "key", s)
	}
	for _, g := range movedGroups(old, cfg) {
		b.log.Warn("reload: a route reads its topics in a consumer group no route used before; it starts at "+
			"kafka.initial_offset, not where the old group committed (oldest: the retained records are delivered again; "+
			"newest: the records the old group had not delivered are skipped)",
			"route", g.route, "group", g.group, "old_group", g.old, "initial_offset", old.Kafka.InitialOffset)
	}
	if rt.embedded != nil {
		// The embedded broker created the topics the configuration of its
		// start named; it creates those a reload names first, as it
		// would have at a start.
		created, err := rt.embedded.CreateTopics(old.Kafka.EmbeddedPartitions, embeddedTopics(cfg)...)
		if len(created) > 0 {
			b.log.Info("reload: the embedded broker created the new configuration's topics", "topics", created)
		}
		if err != nil {
			return err
		}
	}
	if err := kafka.CheckTopics(rt.client, outputTopics(cfg)); err != nil {
		return err
	}
	if err := kafka.CheckDeadLetterTopics(rt.client, deadLetterTopics(cfg)); err != nil {
		return err
	}
	b.mu.Lock()
	routes := b.routes
	b.mu.Unlock()

	next := make(map[string]*runningRoute, len(cfg.Routes))
	stop := make(map[string]*runningRoute)
	var start []config.Route
	for _, r := range cfg.Routes {
		rr, ok := routes[r.Name]
		if ok && !rr.halted() && reflect.DeepEqual(rr.cfg, r) && reflect.DeepEqual(rr.plugin, pluginOf(cfg, r)) &&
			rr.files == startFiles(r) {
			next[r.Name] = rr
			continue
		}
		if ok {
			stop[r.Name] = rr
		}
		start = append(start, r)
	}
	for name, rr := range routes {
		if _, kept := next[name]; !kept {
			stop[name] = rr
		}
	}
	if len(stop) == 0 && len(start) == 0 {
		b.log.Info("reload: no route changed")
		return nil
	}
	// Drain the changed routes first, so a restarted route never runs
	// twice in one group.
	if err := stopRoutes(stop); err != nil {
		b.log.Warn("reload: a stopped route reported an error", "error", err)
	}
	if ctx.Err() != nil {
		// The shutdown came while they drained: they stay stopped (they
		// committed what they delivered), and the shutdown drains the
		// routes the reload kept.
		b.mu.Lock()
		b.routes = next
		b.mu.Unlock()
		b.log.Info("reload: shutting down; the changed routes drained and stay stopped", "stopped", len(stop))
		return context.Cause(ctx)
	}
	merged := *cfg
	merged.Kafka, merged.Admin, merged.Telemetry, merged.Log, merged.ShutdownTimeout =
		old.Kafka, old.Admin, old.Telemetry, old.Log, old.ShutdownTimeout
	started, err := b.switchRoutes(ctx, rt, &merged, next, start)
	if err == nil {
		b.mu.Lock()
		b.routes = next
		b.cfg = &merged
		b.mu.Unlock()
		b.log.Info("reload: routes restarted", "started", started, "stopped", len(stop))
		return nil
	}
	// A route of the new configuration could not start (its plugin fails
	// its checksum or its handshake, say): the old configuration stays in
	// force. The routes this reload started stop, and the ones it stopped
	// start again as they were.
	for _, r := range start {
		if rr := next[r.Name]; rr.failed == nil {
			stopRoutes(map[string]*runningRoute{r.Name: rr})
		}
		delete(next, r.Name)
	}
	var again []config.Route
	for _, rr := range stop {
		again = append(again, rr.cfg)
	}
	restarted, rerr := b.switchRoutes(ctx, rt, old, next, again)
	b.mu.Lock()
	b.routes = next
	b.mu.Unlock()
	b.log.Warn("reload: a route of the new configuration could not start; the old one stays in force",
		"error", err, "restarted", restarted)
	return errors.Join(err, rerr)
}

// switchRoutes makes next the routes of cfg: it closes the plugin pools and
// shared targets that neither next's routes nor start's use, or whose
// configuration changed, then starts every route of start and adds it to
// next. It returns the names of the routes it started. A route that cannot
// start goes in next all the same, as one that reports why to Ready, so that
// /readyz shows it until a reload or restart starts it.
func (b *Bridge) switchRoutes(ctx context.Context, rt *runtime, cfg *config.Config, next map[string]*runningRoute, start []config.Route) (started []string, err error) {
	running := make([]config.Route, 0, len(next)+len(start))
	for _, rr := range next {
		running = append(running, rr.cfg)
	}
	rt.dropUnusedPlugins(ctx, cfg, append(running, start...))
	rt.targets.dropUnused(running, start)
	var errs []error
	for _, r := range start {
		rr, err := b.startRoute(ctx, rt, cfg, r)
		if err != nil {
			err = fmt.Errorf("route %s: cannot start: %w", r.Name, err)
			errs = append(errs, err)
			next[r.Name] = failedRoute(r, err)
			continue
		}
		next[r.Name] = rr
		started = append(started, r.Name)
	}
	return started, errors.Join(errs...)
}

// failedRoute stands for a route that could not start: it consumes nothing,
// and Ready reports err.
func failedRoute(r config.Route, err error) *runningRoute {
	done := make(chan error, 1)
	done <- nil
	return &runningRoute{cfg: r, failed: err, cancel: func() {}, done: done}
}

// restartOnly names the settings that differ between a and b but only take
// effect at restart.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for name, same := range map[string]bool{
		"kafka":            reflect.DeepEqual(a.Kafka, b.Kafka),
		"admin":            reflect.DeepEqual(a.Admin, b.Admin),
		"telemetry":        reflect.DeepEqual(a.Telemetry, b.Telemetry),
		"log":              reflect.DeepEqual(a.Log, b.Log),
		"shutdown_timeout": a.ShutdownTimeout == b.ShutdownTimeout,
	} {
		if !same {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// movedGroup is a route of a new configuration that reads a topic in a
// consumer group no route of the old one used, while the group an old route
// read that topic in is no longer used: a route renamed (its default group
// hookbridge.<name> changes with it) or given another group.
type movedGroup struct{ route, group, old string }

func movedGroups(a, b *config.Config) []movedGroup {
	used := func(c *config.Config, group string) bool {
		return slices.ContainsFunc(c.Routes, func(r config.Route) bool { return r.GroupID() == group })
	}
	var out []movedGroup
	for _, r := range b.Routes {
		if used(a, r.GroupID()) {
			continue
		}
		for _, o := range a.Routes {
			if !used(b, o.GroupID()) && slices.ContainsFunc(r.Topics, func(t string) bool { return slices.Contains(o.Topics, t) }) {
				out = append(out, movedGroup{route: r.Name, group: r.GroupID(), old: o.GroupID()})
				break
			}
		}
	}
	return out
}

func pluginOf(cfg *config.Config, r config.Route) *config.Plugin {
	if r.Target.Plugin == "" {
		return nil
	}
	p, ok := cfg.Plugins[r.Target.Plugin]
	if !ok {
		return nil
	}
	return &p
}

// startFiles fingerprints the files that r's target reads only when it
// starts (signing_secrets_file, tls.ca_file, tls.cert_file, tls.key_file),
// so that a reload restarts a route whose files changed while its
// configuration did not: a signing secret added to the file, a renewed
// client certificate. A file that cannot be read counts as its error.
func startFiles(r config.Route) [sha256.Size]byte {
	h := sha256.New()
	if w := r.Target.Webhook; w != nil {
		for _, name := range []string{w.SigningSecretsFile, w.TLS.CAFile, w.TLS.CertFile, w.TLS.KeyFile} {
			if name == "" {
				continue
			}
			// Validation refuses a file that is not regular (a pipe
			// would block the read); one swapped in since counts as such.
			var data []byte
			fi, err := os.Stat(name)
			if err == nil && fi.Mode().IsRegular() {
				data, err = os.ReadFile(name)
			} else if err == nil {
				err = fmt.Errorf("%s is not a regular file", name)
			}
			if err != nil {
				data = []byte(err.Error())
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(h, "%s\x00%x\x00", name, sum)
		}
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// startRoute builds a route's target and chain and runs its consumer until
// its own context (a child of ctx) is canceled.
func (b *Bridge) startRoute(ctx context.Context, rt *runtime, cfg *config.Config, r config.Route) (*runningRoute, error) {
	log := b.log.With("route", r.Name)
	// Before the target reads them: a file that changes meanwhile then
	// differs at the next reload, which starts the route again.
	files := startFiles(r)
	ev := &routeEvents{log: log}
	chain, sh, closeTarget, err := b.routeChain(ctx, rt, cfg, r, ev)
	if err != nil {
		return nil, err
	}
	var health func() error
	if r.Target.Plugin != "" {
		if h, ok := rt.plugins[r.Target.Plugin].tg.(target.Healther); ok {
			health = h.Health
		}
	}
	scfg, err := kafka.NewConfig(cfg.Kafka)
	if err != nil {
		closeTarget()
		return nil, err
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{
		Route: r, Brokers: rt.brokers, Sarama: scfg, Target: chain,
		Logger: b.log, ShutdownTimeout: cfg.ShutdownTimeout.D(),
	})
	ev.consumer = c
	ev.metrics = rt.metrics.Route(r.Name, r.GroupID(), c.Stats)
	ev.metrics.Topics(r.Topics)
	c.SetMetrics(ev.metrics)
	// Paused while open; fetching again in half-open state, so that there is
	// a record to probe with even if the route held none (the budget bounds
	// what is fetched; those records wait for the probe's outcome). A route
	// started while its target's breaker is open already (a reload, a route
	// added next to one that tripped it) starts paused.
	unsubscribe := sh.breaker.Follow(func(to dispatch.BreakerState) { c.PauseAll("breaker", to == dispatch.BreakerOpen) })

	rctx, cancel := context.WithCancel(ctx)
	rr := &runningRoute{cfg: r, plugin: pluginOf(cfg, r), files: files, health: health, consumer: c, cancel: cancel,
		done: make(chan error, 1)}
	go func() {
		err := c.Run(rctx)
		unsubscribe()
		ev.close()
		ev.metrics.Close()
		closeTarget()
		rr.done <- err
	}()
	return rr, nil
}

// routeChain builds the target of route r wrapped in its dispatch chain. The
// returned close func releases what belongs to the route alone.
// A target that reports its health (a plugin's pool: target.Healther) is
// asked by Ready.
func (b *Bridge) routeChain(ctx context.Context, rt *runtime, cfg *config.Config, r config.Route, ev dispatch.Events) (target.Target, *shared, func(), error) {
	sh := rt.targets.get(ctx, r)
	var tg target.Target
	closeTarget := func() {}
	if w := r.Target.Webhook; w != nil {
		wt, err := webhook.New(webhook.Options{Route: r.Name, Group: r.GroupID(), Config: *w,
			Version: b.opts.Version, CaptureReply: r.Reply.Topic != "", Logger: b.log,
			Limiter: sh.limiter, RateLimited: sh.rateLimited(ctx, rt.metrics)})
		if err != nil {
			return nil, nil, nil, err
		}
		tg = wt
		closeTarget = func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = wt.Close(cctx)
		}
	} else {
		pt, err := rt.plugin(cfg, r.Target.Plugin, b.opts.Plugins)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		tg = pt
	}
	return buildChain(r, tg, rt.producer, ev, sh.breaker), sh, closeTarget, nil
}

// outputTopics are the topics the bridge produces to; they must exist.
func outputTopics(cfg *config.Config) []string {
	var ts []string
	for _, r := range cfg.Routes {
		for _, t := range []string{r.DeadLetter.Topic, r.Reply.Topic} {
			if t != "" && !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// deadLetterTopics are the dead-letter topics of the config's routes.
func deadLetterTopics(cfg *config.Config) []string {
	var ts []string
	for _, r := range cfg.Routes {
		if t := r.DeadLetter.Topic; t != "" && !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// embeddedTopics are every topic the config names, created by the embedded broker.
func embeddedTopics(cfg *config.Config) []string {
	ts := outputTopics(cfg)
	for _, r := range cfg.Routes {
		for _, t := range r.Topics {
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}
