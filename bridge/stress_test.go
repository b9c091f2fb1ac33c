package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// The stress test runs every failure mode at once on one run of the bridge:
// keyed records over several partitions and three routes (ordering key,
// partition and none), receivers that answer 5xx and 429 with Retry-After at
// random and go down (503, or a closed connection) long enough to open their
// breakers and through the event that comes next, a second bridge
// joining and leaving the groups, a reload that changes concurrency, ordering
// and retry, and a clean shutdown and restart. Then it checks the data: every
// record delivered on every route, the first deliveries of each key in order
// where the route orders by key or partition, nothing dead-lettered (no
// receiver refused anything for good), no committed offset ever past a record
// not delivered, and no goroutine of the bridge left after it stopped.
//
// HOOKBRIDGE_STRESS_SEEDS runs other seeds (comma-separated).
func TestStressEverythingAtOnce(t *testing.T) {
	seeds := []uint64{1}
	if s := os.Getenv("HOOKBRIDGE_STRESS_SEEDS"); s != "" {
		seeds = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatalf("HOOKBRIDGE_STRESS_SEEDS: %v", err)
			}
			seeds = append(seeds, n)
		}
	}
	for _, seed := range seeds {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) { runStress(t, seed) })
	}
}

// stressRecord is the value of a record: its key and its sequence within the key.
type stressRecord struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// stressReceiver is one route's webhook endpoint. While up it answers 500 or
// 429 (Retry-After: 1) to a few requests, drawn from its seeded source, and
// 204 to the others; while down, 503 to all, or it closes the connection.
type stressReceiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	rng     *rand.Rand
	down    bool
	drop    bool             // while down, close the connection rather than answer 503
	refused int              // requests refused while down
	failed  int              // requests answered 500 or 429 while up
	again   int              // 2xx answers to a webhook-id answered 2xx before
	ok      map[string]bool  // webhook-ids answered 2xx
	firsts  map[string][]int // per key, the sequences of first 2xx answers, in order
}

func newStressReceiver(seed uint64) *stressReceiver {
	rc := &stressReceiver{rng: rand.New(rand.NewPCG(seed, 7)), ok: map[string]bool{}, firsts: map[string][]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.down {
			rc.refused++
			if rc.drop {
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
					return
				}
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		switch n := rc.rng.IntN(100); {
		case n < 3:
			rc.failed++
			w.WriteHeader(http.StatusInternalServerError)
			return
		case n < 5:
			rc.failed++
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if rc.ok[id] {
			rc.again++
		} else {
			rc.ok[id] = true
			var v stressRecord
			if err := json.Unmarshal(body, &v); err == nil {
				rc.firsts[v.Key] = append(rc.firsts[v.Key], v.Seq)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return rc
}

func (rc *stressReceiver) setDown(down, drop bool) {
	rc.mu.Lock()
	rc.down, rc.drop = down, drop
	rc.mu.Unlock()
}

func (rc *stressReceiver) refusedCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.refused
}

// missing returns how many of ids were not answered 2xx yet, and the first.
func (rc *stressReceiver) missing(ids []string) (int, string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n, first := 0, ""
	for _, id := range ids {
		if !rc.ok[id] {
			if n == 0 {
				first = id
			}
			n++
		}
	}
	return n, first
}

// stressBridge is one running bridge.
type stressBridge struct {
	b      *Bridge
	cancel context.CancelFunc
	err    func() error // waits for Run's error
}

// startStressBridge runs a bridge with cfg until stop or the test's end.
func startStressBridge(t *testing.T, cfg *config.Config) *stressBridge {
	t.Helper()
	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(io.Discard, "json", "info")})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	sb := &stressBridge{b: b, cancel: cancel, err: sync.OnceValue(func() error { return <-done })}
	t.Cleanup(func() { cancel(); _ = sb.err() })
	waitUntil(t, "the bridge ready", func() bool { return b.Ready() == nil })
	return sb
}

func (sb *stressBridge) stop(t *testing.T) {
	t.Helper()
	sb.cancel()
	if err := sb.err(); err != nil {
		t.Errorf("bridge stopped with %v", err)
	}
}

func runStress(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	goroutinesBefore := bridgeGoroutines()
	if len(goroutinesBefore) > 0 {
		t.Logf("goroutines of the bridge before the test (left by another): %d", len(goroutinesBefore))
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.SeedTopics(4, "orders", "orders.dlq"), kfake.SeedTopics(3, "events", "events.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	rcBilling, rcAudit, rcEvents := newStressReceiver(seed*3+1), newStressReceiver(seed*3+2), newStressReceiver(seed*3+3)
	receivers := []*stressReceiver{rcBilling, rcAudit, rcEvents}

	route := func(name, topic, ordering string, concurrency int, rc *stressReceiver) config.Route {
		return config.Route{Name: name, Topics: []string{topic}, Ordering: ordering, Concurrency: concurrency,
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: rc.srv.URL}},
			Retry:      config.Retry{MaxAttempts: 10, InitialBackoff: config.Duration(time.Millisecond), MaxBackoff: config.Duration(20 * time.Millisecond)},
			Breaker:    config.Breaker{ConsecutiveFailures: 5, FailureRatio: 0.9, MinRequests: 200, OpenTimeout: config.Duration(100 * time.Millisecond)},
			DeadLetter: config.DeadLetter{Topic: topic + ".dlq"}}
	}
	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: cluster.ListenAddrs(), SessionTimeout: config.Duration(3 * time.Second)},
		Admin: config.Admin{Listen: config.AdminOff},
		Routes: []config.Route{
			route("billing", "orders", config.OrderingKey, 8, rcBilling),
			route("audit", "orders", config.OrderingPartition, 0, rcAudit),
			route("events", "events", config.OrderingNone, 16, rcEvents),
		},
	}
	cfg.ApplyDefaults()
	routeReceiver := map[string]*stressReceiver{"billing": rcBilling, "audit": rcAudit, "events": rcEvents}
	routeTopic := map[string]string{"billing": "orders", "audit": "orders", "events": "events"}

	// produce writes n records to topic over keys keys (prefix p) and
	// remembers their webhook-ids.
	ids := map[string][]string{}
	seq := map[string]int{}
	produce := func(topic, p string, keys, n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			k := p + strconv.Itoa(rng.IntN(keys))
			v, _ := json.Marshal(stressRecord{Key: k, Seq: seq[k]})
			seq[k]++
			recs[i] = &kgo.Record{Topic: topic, Key: []byte(k), Value: v}
		}
		res := cl.ProduceSync(t.Context(), recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			ids[topic] = append(ids[topic], fmt.Sprintf("%s-%d-%d", topic, r.Record.Partition, r.Record.Offset))
		}
	}
	batch := func() {
		produce("orders", "o", 40, 150+rng.IntN(200))
		produce("events", "e", 30, 80+rng.IntN(100))
	}

	// The sampler reads the committed offsets of every group all along and
	// checks that each record below one was delivered on its route.
	var (
		samplerMu  sync.Mutex
		violations []string
		samples    int
	)
	groups := map[string]string{} // route: group (a reload changes neither)
	for _, r := range cfg.Routes {
		groups[r.Name] = r.GroupID()
	}
	samplerCtx, stopSampler := context.WithCancel(t.Context())
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for samplerCtx.Err() == nil && len(violations) < 20 {
			for name, group := range groups {
				committed := committedOffsets(samplerCtx, cl, group, routeTopic[name])
				rc := routeReceiver[name]
				rc.mu.Lock()
				for p, o := range committed {
					for off := int64(0); off < o; off++ {
						id := fmt.Sprintf("%s-%d-%d", routeTopic[name], p, off)
						if !rc.ok[id] {
							v := fmt.Sprintf("group %s committed %d on partition %d, but %s was not delivered", group, o, p, id)
							samplerMu.Lock()
							if !slices.Contains(violations, v) {
								violations = append(violations, v)
							}
							samplerMu.Unlock()
							break
						}
					}
				}
				rc.mu.Unlock()
			}
			samplerMu.Lock()
			samples++
			samplerMu.Unlock()
			select {
			case <-samplerCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	b1 := startStressBridge(t, cfg)
	var b2 *stressBridge

	events := []string{"outage", "outage", "join", "leave", "reload", "restart"}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	if j, l := slices.Index(events, "join"), slices.Index(events, "leave"); l < j {
		events[j], events[l] = events[l], events[j]
	}
	t.Logf("seed %d: events %v", seed, events)
	start := time.Now()
	var down []*stressReceiver // receivers down until the next event that is not an outage has run
	for _, ev := range events {
		batch()
		switch ev {
		case "outage":
			// One or more receivers go down; records come while they
			// are, so each is tried until its breaker opens and then
			// probed a few times. They come back after the next event.
			var now []*stressReceiver
			for len(now) == 0 {
				for _, rc := range receivers {
					if rng.IntN(2) == 0 && !slices.Contains(down, rc) {
						now = append(now, rc)
					}
				}
			}
			before := make([]int, len(now))
			for i, rc := range now {
				before[i] = rc.refusedCount()
				rc.setDown(true, rng.IntN(2) == 0)
			}
			batch()
			for i, rc := range now {
				waitUntil(t, "the receiver's breaker opened and probed", func() bool { return rc.refusedCount() >= before[i]+12 })
			}
			down = append(down, now...)
			continue
		case "join":
			b2 = startStressBridge(t, cfg)
		case "leave":
			b2.stop(t)
			b2 = nil
		case "reload":
			next := *cfg
			next.Routes = slices.Clone(cfg.Routes)
			next.Routes[0].Concurrency = 3
			next.Routes[0].Retry = config.Retry{MaxAttempts: 8, InitialBackoff: config.Duration(2 * time.Millisecond), MaxBackoff: config.Duration(10 * time.Millisecond)}
			next.Routes[1].Ordering = config.OrderingKey
			next.Routes[1].Concurrency = 4
			next.Routes[2].Ordering = config.OrderingPartition
			next.Routes[2].Concurrency = 5
			if err := b1.b.Reload(t.Context(), &next); err != nil {
				t.Fatalf("reload: %v", err)
			}
			cfg = &next
		case "restart":
			b1.stop(t)
			b1 = startStressBridge(t, cfg)
		}
		for _, rc := range down {
			rc.setDown(false, false)
		}
		down = nil
	}
	for _, rc := range down {
		rc.setDown(false, false)
	}
	batch()

	// Records lost (an offset committed past one not delivered) are never
	// delivered: the sampler says which commit lost them.
	reportSampler := func() {
		stopSampler()
		<-samplerDone
		samplerMu.Lock()
		defer samplerMu.Unlock()
		for _, v := range violations {
			t.Error(v)
		}
	}
	for name, rc := range routeReceiver {
		deadline := time.Now().Add(2 * time.Minute) // a bound on a hang, not a timing check
		for {
			n, first := rc.missing(ids[routeTopic[name]])
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				reportSampler()
				t.Fatalf("route %s: %d records never delivered, %s the first", name, n, first)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hwm := endOffsets(t, cl, "orders", "events", "orders.dlq", "events.dlq")
	for _, r := range cfg.Routes {
		topic := routeTopic[r.Name]
		waitUntil(t, "route "+r.Name+" committed everything", func() bool {
			committed := committedOffsets(t.Context(), cl, r.GroupID(), topic)
			for p, end := range hwm[topic] {
				if committed[p] != end {
					return false
				}
			}
			return true
		})
	}
	reportSampler()
	b1.stop(t)
	t.Logf("seed %d: %d orders and %d events records in %s, %d samples of the committed offsets",
		seed, len(ids["orders"]), len(ids["events"]), time.Since(start).Round(time.Millisecond), samples)
	for name, rc := range routeReceiver {
		rc.mu.Lock()
		t.Logf("route %s: %d refused while down, %d answered 500 or 429, %d delivered again", name, rc.refused, rc.failed, rc.again)
		rc.mu.Unlock()
	}

	for _, dlq := range []string{"orders.dlq", "events.dlq"} {
		for p, end := range hwm[dlq] {
			if end != 0 {
				t.Errorf("%s partition %d holds %d records; no receiver refused anything for good", dlq, p, end)
			}
		}
	}
	for _, name := range []string{"billing", "audit"} {
		rc := routeReceiver[name]
		rc.mu.Lock()
		for k, seqs := range rc.firsts {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Errorf("route %s key %s: first deliveries out of order: %v", name, k, seqs)
					break
				}
			}
		}
		rc.mu.Unlock()
	}

	cl.Close()
	for _, rc := range receivers {
		rc.srv.Close()
	}
	cluster.Close()
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = bridgeGoroutines()
		if len(left) <= len(goroutinesBefore) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > len(goroutinesBefore) {
		t.Errorf("%d goroutines of the bridge left after it stopped (%d before):\n%s",
			len(left), len(goroutinesBefore), strings.Join(left, "\n\n"))
	}
}

// bridgeGoroutines returns the stacks of the goroutines running code of the
// bridge or of sarama, other than the caller's.
func bridgeGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:goruntime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "runtime.Stack") || strings.Contains(g, "bridge.TestStress") || strings.Contains(g, "bridge.runStress") {
			continue
		}
		if strings.Contains(g, "hookbridge/hookbridge/bridge") || strings.Contains(g, "github.com/IBM/sarama") {
			out = append(out, g)
		}
	}
	return out
}

// committedOffsets returns the committed offset of each partition of topic
// in group (none: absent).
func committedOffsets(ctx context.Context, cl *kgo.Client, group, topic string) map[int32]int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{0, 1, 2, 3}
	req.Topics = append(req.Topics, rt)
	out := map[int32]int64{}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return out
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}

// endOffsets returns the end offset of every partition of topics.
func endOffsets(t *testing.T, cl *kgo.Client, topics ...string) map[string]map[int32]int64 {
	t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		meta.Topics = append(meta.Topics, mt)
	}
	mresp, err := meta.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	for _, mt := range mresp.Topics {
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = *mt.Topic
		for _, p := range mt.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lp.Timestamp = -1
			lt.Partitions = append(lt.Partitions, lp)
		}
		req.Topics = append(req.Topics, lt)
	}
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32]int64{}
	for _, tp := range resp.Topics {
		out[tp.Topic] = map[int32]int64{}
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("list offsets %s/%d: error code %d", tp.Topic, p.Partition, p.ErrorCode)
			}
			out[tp.Topic][p.Partition] = p.Offset
		}
	}
	return out
}
