package bridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/codes"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// metricSum sums the samples of a metric family whose labels include want.
func metricSum(t *testing.T, m *telemetry.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range f.GetMetric() {
			for k, v := range want {
				if labelOf(mt, k) != v {
					continue metrics
				}
			}
			switch {
			case mt.Counter != nil:
				sum += mt.Counter.GetValue()
			case mt.Gauge != nil:
				sum += mt.Gauge.GetValue()
			case mt.Histogram != nil:
				sum += float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// startAccountingBridge runs a bridge with the route orders-billing on cluster
// until the test ends.
func startAccountingBridge(t *testing.T, cluster *kfake.Cluster, url string, logs *syncBuffer, route func(*config.Route)) (*telemetry.Metrics, *Bridge) {
	t.Helper()
	r := config.Route{Name: "orders-billing", Topics: []string{"orders"},
		Target:     config.RouteTarget{Webhook: &config.Webhook{URL: url}},
		Filter:     config.Filter{KeyPrefix: "k"},
		Retry:      config.Retry{MaxAttempts: 5, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(5 * time.Millisecond)},
		Breaker:    config.Breaker{ConsecutiveFailures: 1000, FailureRatio: 1, MinRequests: 1000},
		DeadLetter: config.DeadLetter{Topic: "orders.dlq"}}
	if route != nil {
		route(&r)
	}
	cfg := &config.Config{
		Kafka:  config.Kafka{Brokers: cluster.ListenAddrs()},
		Admin:  config.Admin{Listen: config.AdminOff},
		Routes: []config.Route{r},
	}
	cfg.ApplyDefaults()
	m, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	b := New(cfg, Options{Version: "test", Metrics: m, Logger: telemetry.NewLogger(logs, "json", "debug")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, b
}

// accountingRig is a whole bridge on kfake with one route, orders-billing, on
// topic orders (2 partitions) posting to handler.
type accountingRig struct {
	cluster *kfake.Cluster
	m       *telemetry.Metrics
	b       *Bridge
	cl      *kgo.Client
	logs    *syncBuffer
	url     string
}

func newAccountingRig(t *testing.T, handler http.HandlerFunc, setup func(*kfake.Cluster), route func(*config.Route)) *accountingRig {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	if setup != nil {
		setup(cluster)
	}
	rig := &accountingRig{cluster: cluster, logs: &syncBuffer{}, url: srv.URL}
	rig.m, rig.b = startAccountingBridge(t, cluster, srv.URL, rig.logs, route)
	rig.cl, err = kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rig.cl.Close)
	return rig
}

func (rig *accountingRig) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	if err := rig.cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

var accountingRoute = map[string]string{"route": "orders-billing"}

func (rig *accountingRig) sum(t *testing.T, name string) float64 {
	t.Helper()
	return metricSum(t, rig.m, name, accountingRoute)
}

// waitUntil polls cond; the deadline is a hang guard only.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check compares the route's metrics with want, and checks that its gauges
// are back at 0: nothing in flight, paused or stuck.
func (rig *accountingRig) check(t *testing.T, want map[string]float64) {
	t.Helper()
	for _, gauge := range []string{"hookbridge_inflight_records", "hookbridge_inflight_bytes",
		"hookbridge_partitions_paused", "hookbridge_partitions_stuck"} {
		if _, ok := want[gauge]; !ok {
			want[gauge] = 0
		}
	}
	for name, w := range want {
		if got := rig.sum(t, name); got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
}

// countingReceiver answers each request with answer, given its body and how
// many times that body has come so far (1 the first time).
func countingReceiver(answer func(w http.ResponseWriter, body string, n int)) http.HandlerFunc {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(body)]++
		n := seen[string(body)]
		mu.Unlock()
		answer(w, string(body), n)
	}
}

// TestMetricsAccountForEveryRecord runs a whole bridge on kfake: records delivered at
// once, after retries, dead-lettered, and filtered; once all are done the
// counters add up and the gauges are back at 0.
func TestMetricsAccountForEveryRecord(t *testing.T) {
	rig := newAccountingRig(t, countingReceiver(func(w http.ResponseWriter, v string, n int) {
		switch {
		case strings.HasPrefix(v, "retry") && n < 3:
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasPrefix(v, "bad"):
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}), nil, nil)
	var recs []*kgo.Record
	for i, v := range []string{"ok-1", "ok-2", "retry-1", "retry-2", "bad-1", "ok-3"} {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte("k" + string(rune('a'+i))), Value: []byte(v)})
	}
	recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte("x1"), Value: []byte("filtered-1")},
		&kgo.Record{Topic: "orders", Key: []byte("x2"), Value: []byte("filtered-2")})
	rig.produce(t, recs...)
	waitUntil(t, "records done", func() bool {
		return rig.sum(t, "hookbridge_records_delivered_total")+rig.sum(t, "hookbridge_records_dead_lettered_total") >= 5 &&
			rig.sum(t, "hookbridge_records_filtered_total") >= 2 && rig.sum(t, "hookbridge_inflight_records") == 0
	})
	rig.check(t, map[string]float64{
		"hookbridge_records_consumed_total":      8,
		"hookbridge_records_delivered_total":     5,
		"hookbridge_records_dead_lettered_total": 1,
		"hookbridge_records_filtered_total":      2,
		"hookbridge_records_retried_total":       4,
		"hookbridge_records_failed_total":        5,
		"hookbridge_delivery_duration_seconds":   10,
	})
}

// TestMetricsOfAStuckDeadLetterWrite: the dead-letter topic refuses writes for a
// while; the record is stuck, then dead-lettered, and the gauges recover.
func TestMetricsOfAStuckDeadLetterWrite(t *testing.T) {
	var refuse atomic.Int32
	refuse.Store(1)
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(string(body), "bad") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}, refuseDeadLetters(&refuse), nil)
	rig.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("ka"), Value: []byte("bad-1")},
		&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("kb"), Value: []byte("ok-1")})
	waitUntil(t, "the partition to be stuck", func() bool { return rig.sum(t, "hookbridge_partitions_stuck") == 1 })
	refuse.Store(0)
	waitUntil(t, "records done", func() bool {
		return rig.sum(t, "hookbridge_records_dead_lettered_total") == 1 && rig.sum(t, "hookbridge_records_delivered_total") == 1 &&
			rig.sum(t, "hookbridge_inflight_records") == 0
	})
	waitUntil(t, "the stuck gauge to clear", func() bool { return rig.sum(t, "hookbridge_partitions_stuck") == 0 })
	rig.check(t, map[string]float64{
		"hookbridge_records_consumed_total": 2,
	})
}

// TestMetricsOfAParkedRecord: no dead-letter topic; a record refused twice is parked,
// then delivered.
func TestMetricsOfAParkedRecord(t *testing.T) {
	sawStuck := make(chan struct{})
	rig := newAccountingRig(t, countingReceiver(func(w http.ResponseWriter, v string, n int) {
		if strings.HasPrefix(v, "bad") && n == 3 {
			<-sawStuck // parked: the partition counts as stuck meanwhile
		}
		if strings.HasPrefix(v, "bad") && n < 3 {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), nil, func(r *config.Route) {
		r.DeadLetter.Topic = ""
		r.Ordering = "partition"
	})
	rig.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("ka"), Value: []byte("bad-1")},
		&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("kb"), Value: []byte("ok-1")},
		&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("kc"), Value: []byte("ok-2")})
	waitUntil(t, "the parked record's partition to count as stuck", func() bool { return rig.sum(t, "hookbridge_partitions_stuck") == 1 })
	close(sawStuck)
	waitUntil(t, "records done", func() bool {
		return rig.sum(t, "hookbridge_records_delivered_total") == 3 && rig.sum(t, "hookbridge_inflight_records") == 0
	})
	waitUntil(t, "the stuck gauge to clear", func() bool { return rig.sum(t, "hookbridge_partitions_stuck") == 0 })
	rig.check(t, map[string]float64{
		"hookbridge_records_consumed_total": 3,
		"hookbridge_records_failed_total":   2,
	})
}

// unended returns the spans started since from that have not ended.
func unended(from int) []string {
	var out []string
	for _, s := range recordSpans().Started()[from:] {
		if s.EndTime().IsZero() {
			out = append(out, s.Name())
		}
	}
	return out
}

// TestMetricsAndSpansOfABreakerOutage: the target is down long enough for its breaker to open,
// then up again; every gauge returns to rest and every span ended.
func TestMetricsAndSpansOfABreakerOutage(t *testing.T) {
	sr := recordSpans()
	from := len(sr.Started())
	var down atomic.Bool
	down.Store(true)
	var calls atomic.Int32
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if calls.Add(1) > 6 {
			down.Store(false)
		}
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}, nil, func(r *config.Route) {
		r.Retry.MaxAttempts = 100
		r.Breaker = config.Breaker{ConsecutiveFailures: 3, FailureRatio: 1, MinRequests: 1000, OpenTimeout: config.Duration(100 * time.Millisecond)}
	})
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte("k" + string(rune('a'+i))), Value: []byte("v")})
	}
	rig.produce(t, recs...)
	waitUntil(t, "records done", func() bool {
		return rig.sum(t, "hookbridge_records_delivered_total") == 6 && rig.sum(t, "hookbridge_inflight_records") == 0
	})
	waitUntil(t, "gauges at rest", func() bool {
		return rig.sum(t, "hookbridge_partitions_paused") == 0 && metricSum(t, rig.m, "hookbridge_breaker_state", nil) == 0
	})
	failed, delivered := rig.sum(t, "hookbridge_records_failed_total"), rig.sum(t, "hookbridge_records_delivered_total")
	if got := rig.sum(t, "hookbridge_delivery_duration_seconds"); got != failed+delivered {
		t.Errorf("duration observations = %v, want failed %v + delivered %v", got, failed, delivered)
	}
	if n := metricSum(t, rig.m, "hookbridge_breaker_transitions_total", map[string]string{"state": "open"}); n < 1 {
		t.Errorf("open transitions = %v", n)
	}
	if u := unended(from); len(u) > 0 {
		t.Errorf("spans not ended: %q", u)
	}
}

// TestMetricsAndSpansAcrossARebalance: a second member joins while the first has a request
// in flight on each partition; the moved partition's record is canceled and
// delivered again by the new owner.
func TestMetricsAndSpansAcrossARebalance(t *testing.T) {
	sr := recordSpans()
	from := len(sr.Started())
	release := make(chan struct{})
	var inFlight atomic.Int32
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		inFlight.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}, nil, func(r *config.Route) { r.Ordering = "partition" })
	rig.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("ka"), Value: []byte("a")},
		&kgo.Record{Topic: "orders", Partition: 1, Key: []byte("kb"), Value: []byte("b")})
	waitUntil(t, "two requests in flight", func() bool { return inFlight.Load() == 2 })
	m2, _ := startAccountingBridge(t, rig.cluster, rig.url, &syncBuffer{}, func(r *config.Route) { r.Ordering = "partition" })
	both := func(name string) float64 { return rig.sum(t, name) + metricSum(t, m2, name, accountingRoute) }
	waitUntil(t, "the moved record redelivered", func() bool { return inFlight.Load() >= 3 })
	close(release)
	waitUntil(t, "records done", func() bool {
		return both("hookbridge_records_delivered_total") == 2 && both("hookbridge_inflight_records") == 0
	})
	t.Logf("consumed %v delivered %v failed %v", both("hookbridge_records_consumed_total"), both("hookbridge_records_delivered_total"),
		both("hookbridge_records_failed_total"))
	for _, name := range []string{"hookbridge_inflight_bytes", "hookbridge_partitions_paused", "hookbridge_partitions_stuck"} {
		if got := both(name); got != 0 {
			t.Errorf("%s = %v", name, got)
		}
	}
	if u := unended(from); len(u) > 0 {
		t.Errorf("spans not ended: %q", u)
	}
	var abandoned int
	for _, s := range sr.Ended() {
		if s.Name() == "process orders" && attrOf(s, telemetry.KeyOutcome).AsString() == telemetry.OutcomeAbandoned {
			abandoned++
			if s.Status().Code != codes.Error {
				t.Errorf("abandoned process span status %v", s.Status())
			}
		}
	}
	t.Logf("abandoned %d", abandoned)
	series := func(m *telemetry.Metrics) (n int) {
		fams, _ := m.Gatherer().Gather()
		for _, f := range fams {
			if f.GetName() == "hookbridge_consumer_lag" || f.GetName() == "hookbridge_consumer_oldest_unacked_age_seconds" {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	if a, b := series(rig.m), series(m2); a+b != 4 {
		t.Errorf("per-partition series: %d and %d, want 4 in all (one each per partition owned)", a, b)
	}
}

// refuseDeadLetters makes the cluster answer NOT_ENOUGH_REPLICAS to every
// write to orders.dlq while refuse is not 0.
func refuseDeadLetters(refuse *atomic.Int32) func(*kfake.Cluster) {
	return func(c *kfake.Cluster) {
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			req := kreq.(*kmsg.ProduceRequest)
			if refuse.Load() == 0 {
				return nil, nil, false
			}
			for _, tp := range req.Topics {
				if tp.Topic != "orders.dlq" {
					return nil, nil, false
				}
			}
			return refusedWrite(req, kerr.NotEnoughReplicas.Code), nil, true
		})
	}
}

// refusedWrite is the answer to req that refuses each of its partitions'
// records with code.
func refusedWrite(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
