// Package bridge wires the engine together: for every route a consumer group
// (bridge/kafka), a dispatch chain (bridge/dispatch) and a target (a webhook,
// or a plugin supplied by the caller), plus the producer for dead-letter and
// reply records and the admin endpoint.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

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
	cfg  *config.Config
	opts Options
	log  *slog.Logger

	stopping  atomic.Bool
	consumers []*kafka.Consumer
}

// New prepares a bridge; it connects to nothing until Run.
func New(cfg *config.Config, opts Options) *Bridge {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Bridge{cfg: cfg, opts: opts, log: log}
}

// Ready returns nil when every route joined its group and nothing is stuck,
// disabled or shutting down.
func (b *Bridge) Ready() error {
	if b.stopping.Load() {
		return errors.New("shutting down")
	}
	if len(b.consumers) == 0 {
		return errors.New("starting")
	}
	var errs []error
	for _, c := range b.consumers {
		if err := c.Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run starts everything and blocks until ctx ends; then it drains every route
// (see kafka.Consumer.Run), closes targets and the producer, and returns.
func (b *Bridge) Run(ctx context.Context) (err error) {
	cfg := b.cfg
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	brokers := cfg.Kafka.Brokers
	if cfg.Kafka.Embedded {
		listen := ""
		if len(brokers) > 0 {
			listen = brokers[0]
		}
		emb, err := kafka.StartEmbedded(listen, cfg.Kafka.EmbeddedPartitions, embeddedTopics(cfg)...)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, emb.Close)
		brokers = emb.Addrs()
		b.log.Warn("embedded Kafka broker started: in memory, for demos and tests only", "addrs", brokers)
	}

	metrics := b.opts.Metrics
	if metrics == nil {
		if metrics, err = telemetry.NewMetrics(); err != nil {
			return err
		}
		cleanups = append(cleanups, func() { _ = metrics.Shutdown(context.WithoutCancel(ctx)) })
	}

	scfg, err := kafka.NewConfig(cfg.Kafka)
	if err != nil {
		return err
	}
	client, err := sarama.NewClient(brokers, scfg)
	if err != nil {
		return fmt.Errorf("kafka: connect %v: %w", brokers, err)
	}
	cleanups = append(cleanups, func() { _ = client.Close() })
	if err := kafka.CheckTopics(client, outputTopics(cfg)); err != nil {
		return err
	}
	producer, err := kafka.NewProducer(client)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = producer.Close() })

	consumers := make([]*kafka.Consumer, 0, len(cfg.Routes))
	targets := &sharedTargets{m: map[string]*shared{}, metrics: metrics, log: b.log}
	for _, r := range cfg.Routes {
		sh := targets.get(ctx, r)
		tg, err := b.buildTarget(ctx, r, sh, metrics)
		if err != nil {
			return err
		}
		if cl, ok := tg.(target.Closer); ok {
			cleanups = append(cleanups, func() {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = cl.Close(cctx)
			})
		}
		rcfg, err := kafka.NewConfig(cfg.Kafka)
		if err != nil {
			return err
		}
		ev := &routeEvents{log: b.log.With("route", r.Name)}
		chain := buildChain(r, tg, producer, ev, sh.breaker)
		c := kafka.NewConsumer(kafka.ConsumerOptions{
			Route: r, Brokers: brokers, Sarama: rcfg, Target: chain,
			Logger: b.log, ShutdownTimeout: cfg.ShutdownTimeout.D(),
		})
		ev.consumer = c
		sh.breaker.Subscribe(func(to dispatch.BreakerState) { c.PauseAll("breaker", to != dispatch.BreakerClosed) })
		ev.metrics = metrics.Route(r.Name, r.GroupID(), c.Stats)
		cleanups = append(cleanups, ev.metrics.Close)
		c.SetMetrics(ev.metrics)
		consumers = append(consumers, c)
	}
	b.consumers = consumers

	var wg sync.WaitGroup
	adminAddr := ""
	if cfg.Admin.Listen != "off" {
		srv, err := admin.Listen(cfg.Admin.Listen, b.Ready, metrics.Handler(), b.log)
		if err != nil {
			return err
		}
		adminAddr = srv.Addr()
		wg.Go(func() {
			if err := srv.Run(ctx); err != nil {
				b.log.Warn("admin endpoint stopped", "error", err)
			}
		})
	}

	errs := make(chan error, len(consumers))
	for _, c := range consumers {
		wg.Go(func() { errs <- c.Run(ctx) })
	}
	b.log.Info("hookbridge running", "routes", len(consumers), "brokers", brokers, "admin", adminAddr)
	if b.opts.Ready != nil {
		b.opts.Ready(adminAddr, brokers)
	}
	<-ctx.Done()
	b.stopping.Store(true)
	b.log.Info("shutting down: draining in-flight records", "timeout", cfg.ShutdownTimeout.D().String())
	wg.Wait()
	close(errs)
	var runErrs []error
	for e := range errs {
		if e != nil {
			runErrs = append(runErrs, e)
		}
	}
	return errors.Join(runErrs...)
}

func (b *Bridge) buildTarget(ctx context.Context, r config.Route, sh *shared, m *telemetry.Metrics) (target.Target, error) {
	if r.Target.Webhook != nil {
		return webhook.New(webhook.Options{Route: r.Name, Group: r.GroupID(), Config: *r.Target.Webhook,
			Version: b.opts.Version, CaptureReply: r.Reply.Topic != "", Logger: b.log,
			Limiter: sh.limiter, RateLimited: sh.rateLimited(ctx, m)})
	}
	if b.opts.Plugins == nil {
		return nil, fmt.Errorf("route %s: plugin targets are not available in this build", r.Name)
	}
	p, ok := b.cfg.Plugins[r.Target.Plugin]
	if !ok {
		return nil, fmt.Errorf("route %s: unknown plugin %q", r.Name, r.Target.Plugin)
	}
	return b.opts.Plugins(r.Target.Plugin, p)
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
