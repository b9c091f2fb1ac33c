package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/detach"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// runtime is what every route of a running bridge shares: the Kafka client
// and producer, the metrics, the per-target breakers and limiters, and the
// plugin pools.
type runtime struct {
	brokers  []string
	embedded *kafka.Embedded // kafka.embedded's broker, or nil
	client   sarama.Client
	producer *kafka.Producer
	metrics  *telemetry.Metrics
	log      *slog.Logger
	targets  *sharedTargets
	plugins  map[string]*pluginPool
	cleanups []func()
}

type pluginPool struct {
	cfg config.Plugin
	tg  target.Target
}

// prepare starts what the bridge needs before it can talk to Kafka for cfg:
// the embedded broker when asked, and the metrics (which the admin endpoint
// serves while the bridge connects).
func (b *Bridge) prepare(ctx context.Context, cfg *config.Config) (_ *runtime, err error) {
	rt := &runtime{plugins: map[string]*pluginPool{}, log: b.log}
	defer func() {
		if err != nil {
			rt.close()
		}
	}()
	rt.brokers = cfg.Kafka.Brokers
	if cfg.Kafka.Embedded {
		listen := ""
		if len(rt.brokers) > 0 {
			listen = rt.brokers[0]
		}
		emb, err := kafka.StartEmbedded(listen, cfg.Kafka.EmbeddedPartitions, embeddedTopics(cfg)...)
		if err != nil {
			return nil, err
		}
		rt.cleanups = append(rt.cleanups, emb.Close)
		rt.embedded, rt.brokers = emb, emb.Addrs()
		b.log.Warn("embedded Kafka broker started: in memory, for demos and tests only", "addrs", rt.brokers)
	}
	rt.metrics = b.opts.Metrics
	if rt.metrics == nil {
		if rt.metrics, err = telemetry.NewMetrics(); err != nil {
			return nil, err
		}
		m := rt.metrics
		rt.cleanups = append(rt.cleanups, func() { _ = m.Shutdown(context.WithoutCancel(ctx)) })
	}
	rt.targets = &sharedTargets{m: map[string]*shared{}, metrics: rt.metrics, log: b.log}
	return rt, nil
}

// start prepares the runtime and connects it to Kafka for the routes of cfg,
// whose output topics must exist (dlq replay uses it, with its one route;
// Run serves the admin endpoint between the two).
func (b *Bridge) start(ctx context.Context, cfg *config.Config) (*runtime, error) {
	rt, err := b.prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := rt.connect(ctx, cfg); err != nil {
		rt.close()
		return nil, err
	}
	return rt, nil
}

// connect connects to Kafka, checks that the output topics exist and opens
// the producer. Against brokers that do not answer, sarama's dial and
// metadata retries take about 90 s and cannot be cancelled, so connect
// returns ctx's error as soon as ctx ends (a SIGTERM while starting) and lets
// the attempt finish on its own; nothing has been consumed by then.
func (rt *runtime) connect(ctx context.Context, cfg *config.Config) error {
	type conn struct {
		client   sarama.Client
		producer *kafka.Producer
	}
	c, err := detach.Call(ctx, func() (c conn, err error) {
		c.client, c.producer, err = dial(rt.brokers, cfg, rt.log, rt.metrics)
		return c, err
	}, func(c conn) {
		_ = c.producer.Close()
		_ = c.client.Close()
	})
	if err != nil {
		return err
	}
	rt.client, rt.producer = c.client, c.producer
	// Plugins are closed before the producer and client (cleanups run in
	// reverse), after every route drained.
	rt.cleanups = append(rt.cleanups,
		func() { _ = rt.client.Close() },
		func() { _ = rt.producer.Close() },
		func() {
			for name := range rt.plugins {
				rt.closePlugin(ctx, name)
			}
		})
	return nil
}

// dial opens the client and producer that every route shares.
func dial(brokers []string, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics) (_ sarama.Client, _ *kafka.Producer, err error) {
	scfg, err := kafka.NewConfig(cfg.Kafka)
	if err != nil {
		return nil, nil, err
	}
	kafka.ReportThrottles(scfg, log.With("client", telemetry.ClientProducer), m.ProducerThrottled)
	client, err := kafka.NewClient(brokers, cfg.Kafka, scfg)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			_ = client.Close()
		}
	}()
	if err := kafka.CheckTopics(client, outputTopics(cfg)); err != nil {
		return nil, nil, err
	}
	if err := kafka.CheckDeadLetterTopics(client, deadLetterTopics(cfg)); err != nil {
		return nil, nil, err
	}
	producer, err := kafka.NewProducer(client)
	if err != nil {
		return nil, nil, err
	}
	return client, producer, nil
}

func (rt *runtime) close() {
	for i := len(rt.cleanups) - 1; i >= 0; i-- {
		rt.cleanups[i]()
	}
	rt.cleanups = nil
}

// plugin returns the pool of the named plugin, starting it on first use.
// Every route that uses a plugin shares its pool.
func (rt *runtime) plugin(cfg *config.Config, name string, factory PluginFactory) (target.Target, error) {
	pc, ok := cfg.Plugins[name]
	if !ok {
		return nil, fmt.Errorf("unknown plugin %q", name)
	}
	if p, ok := rt.plugins[name]; ok && reflect.DeepEqual(p.cfg, pc) {
		return p.tg, nil
	}
	if factory == nil {
		return nil, fmt.Errorf("plugin %q: plugin targets are not available in this build", name)
	}
	tg, err := factory(name, pc)
	if err != nil {
		return nil, err
	}
	rt.plugins[name] = &pluginPool{cfg: pc, tg: tg}
	if st, ok := tg.(telemetry.PluginStatser); ok {
		rt.metrics.Plugin(name, st.PluginStats)
	}
	return tg, nil
}

// dropUnusedPlugins closes the pools whose plugin is gone from cfg, whose
// configuration changed, or that none of routes uses (the routes using them
// were stopped first): as after a restart with cfg, where a pool exists only
// for a plugin some route uses.
func (rt *runtime) dropUnusedPlugins(ctx context.Context, cfg *config.Config, routes []config.Route) {
	for name, p := range rt.plugins {
		used := slices.ContainsFunc(routes, func(r config.Route) bool { return r.Target.Plugin == name })
		if pc, ok := cfg.Plugins[name]; !ok || !used || !reflect.DeepEqual(pc, p.cfg) {
			rt.closePlugin(ctx, name)
		}
	}
}

// closePlugin closes a pool and removes its series from the metrics.
func (rt *runtime) closePlugin(ctx context.Context, name string) {
	p := rt.plugins[name]
	delete(rt.plugins, name)
	rt.metrics.Plugin(name, nil)
	if cl, ok := p.tg.(target.Closer); ok {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cl.Close(cctx)
	}
}
