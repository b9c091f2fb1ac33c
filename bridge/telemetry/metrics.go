package telemetry

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Label keys of every metric.
const (
	LabelRoute     = "route"
	LabelGroup     = "group"
	LabelTopic     = "topic"
	LabelPartition = "partition"
	LabelOutcome   = "outcome"
	LabelTarget    = "target"
	LabelState     = "state"
	LabelPlugin    = "plugin"
	LabelClient    = "client"
)

// Values of LabelClient: whose Kafka requests a broker throttled.
const (
	ClientConsumer = "consumer" // a route's fetches and group requests
	ClientProducer = "producer" // dead letters and replies
)

// PartitionStats is a snapshot of one partition a route owns.
type PartitionStats struct {
	Topic     string
	Partition int32
	Lag       int64         // high watermark minus the next offset to commit
	OldestAge time.Duration // age of the oldest unacknowledged record, 0 if none
	Paused    bool
	Stuck     bool
}

// RouteStats is a snapshot of one route, read by the metrics callbacks.
type RouteStats struct {
	InFlightRecords int64
	InFlightBytes   int64
	Partitions      []PartitionStats
}

// Metrics holds the instruments. Create one per process with NewMetrics.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	registry *prometheus.Registry

	failed                   metric.Int64Counter
	duration                 metric.Float64Histogram
	transitions, rateLimited metric.Int64Counter
	rateLimitedWait          metric.Float64Counter
	kafkaThrottle            metric.Float64Counter

	// counts holds the per-record counters of every route and topic, keyed
	// by countsKey. They are plain atomics, read at collection time: adding
	// to an SDK counter costs a few hundred nanoseconds, several times per
	// record. An entry is never removed, so a route that a reload rebuilds
	// keeps counting up from where it was, as an SDK counter would.
	counts sync.Map

	mu       sync.Mutex
	sources  map[*Route]func() RouteStats
	breakers map[string]func() int64
	plugins  map[string]func() PluginStats
	// readiness is the source of the readiness gauges (Readiness), read
	// without mu: it takes the bridge's locks, which never wait for mu.
	readiness atomic.Pointer[func() Readiness]

	// pluginBase holds, per plugin name, the counts of the pools it had
	// before, so that the counters of a plugin whose pool a reload rebuilt
	// go on from where they were, as the per-record counters do.
	pluginBase map[string]PluginStats
}

// Readiness is what /readyz answers, and each route's part in it, read by
// the readiness gauges at every scrape.
type Readiness struct {
	Ready  bool
	Routes []RouteReadiness
}

// RouteReadiness is one route's readiness.
type RouteReadiness struct {
	Route, Group string
	Ready        bool
}

// PluginStats is a snapshot of one plugin's process pool.
type PluginStats struct {
	Instances  int64  // processes running
	InFlight   int64  // calls in flight
	Started    uint64 // processes started, in total
	ColdStarts uint64 // of those, started because a call found no free process
	Restarts   uint64 // processes found dead and replaced
}

// PluginStatser is implemented by plugin targets that report their pool.
type PluginStatser interface {
	PluginStats() PluginStats
}

// NewMetrics builds the meter provider and its Prometheus registry.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, err
	}
	m := &Metrics{
		// /metrics serves the Prometheus text format, which carries no
		// exemplars: offering every sampled measurement to a reservoir
		// would be work that nothing reads.
		//
		// Every label value comes from the configuration (routes, groups,
		// topics, targets, plugins), from the partitions a route owns, or
		// from a fixed set (outcome, state), never from a record or an
		// answer: the series are bounded without the SDK's limit, which
		// keeps 2000 series per instrument and folds the others into one
		// unlabelled series. A replica owning 2000 partitions or more lost
		// the lag of the others.
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
			sdkmetric.WithCardinalityLimit(0)),
		registry: reg,
		sources:  make(map[*Route]func() RouteStats),
		breakers: make(map[string]func() int64),
		plugins:  make(map[string]func() PluginStats),

		pluginBase: make(map[string]PluginStats),
	}
	meter := m.provider.Meter("github.com/hookbridge/hookbridge")
	if m.failed, err = meter.Int64Counter("hookbridge.records.failed", metric.WithUnit("{record}"),
		metric.WithDescription("Failed delivery attempts, by outcome.")); err != nil {
		return nil, err
	}
	if err := m.registerRecordCounters(meter); err != nil {
		return nil, err
	}
	m.duration, err = meter.Float64Histogram("hookbridge.delivery.duration",
		metric.WithDescription("Duration of one delivery attempt."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		return nil, err
	}
	if m.transitions, err = meter.Int64Counter("hookbridge.breaker.transitions", metric.WithUnit("{transition}"),
		metric.WithDescription("Circuit breaker state transitions, by target and new state.")); err != nil {
		return nil, err
	}
	if m.rateLimited, err = meter.Int64Counter("hookbridge.ratelimit.waits", metric.WithUnit("{wait}"),
		metric.WithDescription("Requests that waited for the target's rate limiter.")); err != nil {
		return nil, err
	}
	if m.rateLimitedWait, err = meter.Float64Counter("hookbridge.ratelimit.wait", metric.WithUnit("s"),
		metric.WithDescription("Total time requests waited for the target's rate limiter.")); err != nil {
		return nil, err
	}
	if m.kafkaThrottle, err = meter.Float64Counter("hookbridge.kafka.throttle", metric.WithUnit("s"),
		metric.WithDescription("Time Kafka brokers throttled the bridge's requests (client quotas), by client.")); err != nil {
		return nil, err
	}
	m.kafkaThrottle.Add(context.Background(), 0, metric.WithAttributes(attribute.String(LabelClient, ClientProducer)))
	if err := m.registerGauges(meter); err != nil {
		return nil, err
	}
	return m, nil
}

// recordCounts are the per-record counters of one route and topic.
type recordCounts struct {
	attrs                                                attribute.Set // route, group, topic
	consumed, delivered, retried, deadLettered, filtered atomic.Int64

	// the attributes of a successful attempt's duration, passed as a
	// slice that exists already, so recording allocates nothing
	success []metric.RecordOption
}

type countsKey struct{ route, group, topic string }

// registerRecordCounters registers the counters of records consumed,
// delivered, retried, dead-lettered and filtered, observed from m.counts.
// Every counter of an entry is exported, at 0 until it counts: rate() and
// increase() read a series that first shows up at 1 as no increase, so an
// alert on dead letters would miss the first ones (see Route.Topics).
func (m *Metrics) registerRecordCounters(meter metric.Meter) error {
	type counter struct {
		name, desc string
		read       func(*recordCounts) int64
		inst       metric.Int64ObservableCounter
	}
	counters := []*counter{
		{name: "hookbridge.records.consumed", desc: "Records read from Kafka.",
			read: func(c *recordCounts) int64 { return c.consumed.Load() }},
		{name: "hookbridge.records.delivered", desc: "Records the target accepted.",
			read: func(c *recordCounts) int64 { return c.delivered.Load() }},
		{name: "hookbridge.records.retried", desc: "Retries scheduled after a retryable failure.",
			read: func(c *recordCounts) int64 { return c.retried.Load() }},
		{name: "hookbridge.records.dead_lettered", desc: "Records written to the dead-letter topic.",
			read: func(c *recordCounts) int64 { return c.deadLettered.Load() }},
		{name: "hookbridge.records.filtered", desc: "Records acknowledged without delivery because the route filter did not match.",
			read: func(c *recordCounts) int64 { return c.filtered.Load() }},
	}
	insts := make([]metric.Observable, len(counters))
	for i, c := range counters {
		inst, err := meter.Int64ObservableCounter(c.name, metric.WithDescription(c.desc), metric.WithUnit("{record}"))
		if err != nil {
			return err
		}
		c.inst, insts[i] = inst, inst
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.counts.Range(func(_, v any) bool {
			rc := v.(*recordCounts)
			for _, c := range counters {
				o.ObserveInt64(c.inst, c.read(rc), metric.WithAttributeSet(rc.attrs))
			}
			return true
		})
		return nil
	}, insts...)
	return err
}

func (m *Metrics) registerGauges(meter metric.Meter) error {
	lag, err := meter.Int64ObservableGauge("hookbridge.consumer.lag", metric.WithUnit("{record}"),
		metric.WithDescription("High watermark minus the next offset to commit, per partition."))
	if err != nil {
		return err
	}
	age, err := meter.Float64ObservableGauge("hookbridge.consumer.oldest_unacked_age", metric.WithUnit("s"),
		metric.WithDescription("Time since the bridge read the oldest record not yet acknowledged, per partition."))
	if err != nil {
		return err
	}
	paused, err := meter.Int64ObservableGauge("hookbridge.partitions.paused", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions whose fetching is paused (backpressure, open breaker, stuck, disabled)."))
	if err != nil {
		return err
	}
	stuck, err := meter.Int64ObservableGauge("hookbridge.partitions.stuck", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions that cannot commit past a record (its dead-letter or reply write fails, or it failed with no dead-letter topic) or cannot be read (a batch too large)."))
	if err != nil {
		return err
	}
	inRecs, err := meter.Int64ObservableGauge("hookbridge.inflight.records", metric.WithUnit("{record}"),
		metric.WithDescription("Records held by a route, queued or being delivered."))
	if err != nil {
		return err
	}
	inBytes, err := meter.Int64ObservableGauge("hookbridge.inflight.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes of records held by a route."))
	if err != nil {
		return err
	}
	breaker, err := meter.Int64ObservableGauge("hookbridge.breaker.state", metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state per target: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return err
	}
	pInstances, err := meter.Int64ObservableGauge("hookbridge.plugin.instances", metric.WithUnit("{process}"),
		metric.WithDescription("Plugin processes running, per plugin."))
	if err != nil {
		return err
	}
	pInFlight, err := meter.Int64ObservableGauge("hookbridge.plugin.inflight", metric.WithUnit("{call}"),
		metric.WithDescription("Plugin calls in flight, per plugin."))
	if err != nil {
		return err
	}
	pStarts, err := meter.Int64ObservableCounter("hookbridge.plugin.starts", metric.WithUnit("{process}"),
		metric.WithDescription("Plugin processes started."))
	if err != nil {
		return err
	}
	pCold, err := meter.Int64ObservableCounter("hookbridge.plugin.cold_starts", metric.WithUnit("{process}"),
		metric.WithDescription("Plugin processes started because a call found none free (scale up or from zero)."))
	if err != nil {
		return err
	}
	pRestarts, err := meter.Int64ObservableCounter("hookbridge.plugin.restarts", metric.WithUnit("{process}"),
		metric.WithDescription("Plugin processes found dead (crashed, killed, unreachable) and replaced."))
	if err != nil {
		return err
	}
	ready, err := meter.Int64ObservableGauge("hookbridge.ready", metric.WithUnit("{status}"),
		metric.WithDescription("1 when the bridge is ready (GET /readyz answers 200), else 0."))
	if err != nil {
		return err
	}
	routeReady, err := meter.Int64ObservableGauge("hookbridge.route.ready", metric.WithUnit("{status}"),
		metric.WithDescription("1 when the route is ready (joined its group, nothing stuck, unreadable or disabled, offsets committed, its plugin can start), else 0."))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		src := m.readiness.Load()
		if src == nil {
			return nil
		}
		r := (*src)()
		o.ObserveInt64(ready, boolInt(r.Ready))
		for _, rr := range r.Routes {
			o.ObserveInt64(routeReady, boolInt(rr.Ready), metric.WithAttributes(attribute.String(LabelRoute, rr.Route),
				attribute.String(LabelGroup, rr.Group)))
		}
		return nil
	}, ready, routeReady)
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for name, stats := range m.plugins {
			st := stats()
			base := m.pluginBase[name]
			st.Started += base.Started
			st.ColdStarts += base.ColdStarts
			st.Restarts += base.Restarts
			a := metric.WithAttributes(attribute.String(LabelPlugin, name))
			o.ObserveInt64(pInstances, st.Instances, a)
			o.ObserveInt64(pInFlight, st.InFlight, a)
			o.ObserveInt64(pStarts, int64(st.Started), a)
			o.ObserveInt64(pCold, int64(st.ColdStarts), a)
			o.ObserveInt64(pRestarts, int64(st.Restarts), a)
		}
		return nil
	}, pInstances, pInFlight, pStarts, pCold, pRestarts)
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for name, state := range m.breakers {
			o.ObserveInt64(breaker, state(), metric.WithAttributes(attribute.String(LabelTarget, name)))
		}
		for r, src := range m.sources {
			st := src()
			o.ObserveInt64(inRecs, st.InFlightRecords, metric.WithAttributeSet(r.attrs))
			o.ObserveInt64(inBytes, st.InFlightBytes, metric.WithAttributeSet(r.attrs))
			var np, ns int64
			for _, p := range st.Partitions {
				a := metric.WithAttributes(attribute.String(LabelRoute, r.name), attribute.String(LabelGroup, r.group),
					attribute.String(LabelTopic, p.Topic), attribute.String(LabelPartition, strconv.Itoa(int(p.Partition))))
				o.ObserveInt64(lag, p.Lag, a)
				o.ObserveFloat64(age, p.OldestAge.Seconds(), a)
				if p.Paused {
					np++
				}
				if p.Stuck {
					ns++
				}
			}
			o.ObserveInt64(paused, np, metric.WithAttributeSet(r.attrs))
			o.ObserveInt64(stuck, ns, metric.WithAttributeSet(r.attrs))
		}
		return nil
	}, lag, age, paused, stuck, inRecs, inBytes, breaker)
	return err
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Gatherer exposes the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Shutdown stops the meter provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }

// SetReadiness registers the source of the readiness gauges, called at
// every scrape without any lock of m held.
func (m *Metrics) SetReadiness(src func() Readiness) { m.readiness.Store(&src) }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Breaker registers the state gauge of a target's breaker; a nil state
// removes it (a target no route uses any more).
func (m *Metrics) Breaker(targetName string, state func() int64) {
	m.mu.Lock()
	if state == nil {
		delete(m.breakers, targetName)
	} else {
		m.breakers[targetName] = state
	}
	m.mu.Unlock()
}

// Plugin registers the pool gauges and counters of a plugin; a later call
// for the same name replaces the source (a reloaded plugin), and a nil stats
// removes the plugin's series (a plugin whose pool was closed). The counters
// of a name go on from the counts of its earlier sources.
func (m *Metrics) Plugin(name string, stats func() PluginStats) {
	m.mu.Lock()
	if old, ok := m.plugins[name]; ok {
		st, base := old(), m.pluginBase[name]
		base.Started += st.Started
		base.ColdStarts += st.ColdStarts
		base.Restarts += st.Restarts
		m.pluginBase[name] = base
	}
	if stats == nil {
		delete(m.plugins, name)
	} else {
		m.plugins[name] = stats
	}
	m.mu.Unlock()
}

// BreakerTransition counts a breaker's move to state.
func (m *Metrics) BreakerTransition(ctx context.Context, targetName, state string) {
	m.transitions.Add(ctx, 1, metric.WithAttributes(attribute.String(LabelTarget, targetName), attribute.String(LabelState, state)))
}

// RateLimited counts a request that waited for its target's rate limiter.
func (m *Metrics) RateLimited(ctx context.Context, targetName string, wait time.Duration) {
	a := metric.WithAttributes(attribute.String(LabelTarget, targetName))
	m.rateLimited.Add(ctx, 1, a)
	m.rateLimitedWait.Add(ctx, wait.Seconds(), a)
}

// ProducerThrottled adds the time a broker throttled an answer to the
// producer of dead letters and replies.
func (m *Metrics) ProducerThrottled(d time.Duration) {
	m.kafkaThrottle.Add(context.Background(), d.Seconds(), metric.WithAttributes(attribute.String(LabelClient, ClientProducer)))
}

// Route returns the instruments of one route. stats, when not nil, is polled
// for the gauges at every scrape; it must be cheap and safe for concurrent use.
func (m *Metrics) Route(name, group string, stats func() RouteStats) *Route {
	r := &Route{m: m, name: name, group: group,
		attrs: attribute.NewSet(attribute.String(LabelRoute, name), attribute.String(LabelGroup, group))}
	r.throttle = metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelRoute, name),
		attribute.String(LabelGroup, group), attribute.String(LabelClient, ClientConsumer)))
	m.kafkaThrottle.Add(context.Background(), 0, r.throttle)
	if stats != nil {
		m.mu.Lock()
		m.sources[r] = stats
		m.mu.Unlock()
	}
	return r
}

// Route records the metrics of one route.
type Route struct {
	m           *Metrics
	name, group string
	attrs       attribute.Set

	// topics maps a topic to its counters. It is copied on write (a route
	// sees a handful of topics) so that a lookup takes no lock and, unlike a
	// sync.Map keyed by the record's topic string, allocates nothing.
	topics   atomic.Pointer[map[string]*recordCounts]
	topicsMu sync.Mutex // serializes the copies
	opts     sync.Map   // "topic\x00outcome" -> metric.MeasurementOption, for failed attempts
	throttle metric.AddOption
}

// topic returns the record counters of topic.
func (r *Route) topic(topic string) *recordCounts {
	if m := r.topics.Load(); m != nil {
		if c := (*m)[topic]; c != nil {
			return c
		}
	}
	r.topicsMu.Lock()
	defer r.topicsMu.Unlock()
	old := r.topics.Load()
	if old != nil {
		if c := (*old)[topic]; c != nil {
			return c
		}
	}
	attrs := []attribute.KeyValue{attribute.String(LabelRoute, r.name), attribute.String(LabelGroup, r.group),
		attribute.String(LabelTopic, topic)}
	v, _ := r.m.counts.LoadOrStore(countsKey{r.name, r.group, topic}, &recordCounts{attrs: attribute.NewSet(attrs...),
		success: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(append(attrs,
			attribute.String(LabelOutcome, "success"))...))}})
	c := v.(*recordCounts)
	next := make(map[string]*recordCounts, 1)
	if old != nil {
		maps.Copy(next, *old)
	}
	next[topic] = c
	r.topics.Store(&next)
	return c
}

// with returns the (cached) attributes of a failed attempt on topic with its
// outcome.
func (r *Route) with(topic, outcome string) metric.MeasurementOption {
	key := topic + "\x00" + outcome
	if o, ok := r.opts.Load(key); ok {
		return o.(metric.MeasurementOption)
	}
	o, _ := r.opts.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attribute.String(LabelRoute, r.name),
		attribute.String(LabelGroup, r.group), attribute.String(LabelTopic, topic), attribute.String(LabelOutcome, outcome))))
	return o.(metric.MeasurementOption)
}

// Topics exports the record counters of the route's topics, and their
// failed attempts by outcome, from now on, at 0: a scrape before the route's
// first records then sees them, and rate() and increase() count those
// records (a dead letter alerts).
func (r *Route) Topics(topics []string) {
	for _, t := range topics {
		r.topic(t)
		for _, k := range []target.Kind{target.Retryable, target.Permanent, target.Gone, target.Canceled} {
			r.m.failed.Add(context.Background(), 0, r.with(t, k.String()))
		}
	}
}

// Consumed counts a record read from topic.
func (r *Route) Consumed(_ context.Context, topic string) { r.topic(topic).consumed.Add(1) }

// Filtered counts a record acknowledged without delivery.
func (r *Route) Filtered(_ context.Context, topic string) { r.topic(topic).filtered.Add(1) }

// Delivered counts a record the target accepted.
func (r *Route) Delivered(_ context.Context, topic string) { r.topic(topic).delivered.Add(1) }

// Retried counts a scheduled retry.
func (r *Route) Retried(_ context.Context, topic string) { r.topic(topic).retried.Add(1) }

// DeadLettered counts a record written to the dead-letter topic.
func (r *Route) DeadLettered(_ context.Context, topic string) { r.topic(topic).deadLettered.Add(1) }

// Attempt records one attempt's duration and, when it failed, its outcome
// ("retryable", "permanent", "gone", "canceled").
func (r *Route) Attempt(ctx context.Context, topic string, took time.Duration, failure string) {
	if failure == "" {
		r.m.duration.Record(ctx, took.Seconds(), r.topic(topic).success...)
		return
	}
	o := r.with(topic, failure)
	r.m.duration.Record(ctx, took.Seconds(), o)
	r.m.failed.Add(ctx, 1, o)
}

// KafkaThrottled adds the time a broker throttled an answer to the route's
// fetches or group requests.
func (r *Route) KafkaThrottled(d time.Duration) {
	r.m.kafkaThrottle.Add(context.Background(), d.Seconds(), r.throttle)
}

// Close stops polling the route's stats.
func (r *Route) Close() {
	r.m.mu.Lock()
	delete(r.m.sources, r)
	r.m.mu.Unlock()
}
