package scenario

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const breakerYAML = "    breaker: {consecutive_failures: 5, min_requests: 20, failure_ratio: 0.5, open_timeout: 1s}\n"

// A receiver that answers 503 for 15 s: the route pauses instead of
// draining. Everything is delivered afterwards, nothing is dead-lettered, the
// requests made during the outage stay within what the breaker settings
// allow, and the paused-partitions gauge goes up and back to 0.
func TestOutagePausesInsteadOfDraining(t *testing.T) {
	const (
		outage              = 15 * time.Second
		openTimeout         = time.Second
		consecutiveFailures = 5
		concurrency         = 8
	)
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	var mu sync.Mutex
	var downSince time.Time
	rcv := newReceiver(t, func(d delivery, n int) int {
		mu.Lock()
		defer mu.Unlock()
		if downSince.IsZero() {
			downSince = time.Now()
		}
		if time.Since(downSince) < outage {
			return 503
		}
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url(),
		Concurrency: concurrency, MaxAttempts: 3, Extra: breakerYAML}))
	recs := keyed(2000, 100)
	b.produce(t, topic, recs)

	// Backpressure pauses partitions too (the retrying records fill the
	// route before the breaker trips): wait for the breaker's pause, of
	// every partition while it is open.
	waitFor(t, 30*time.Second, "the breaker to open and pause every partition", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_breaker_state") == 2 &&
			metricSum(t, p.Admin(), "hookbridge_partitions_paused") == 6
	})
	waitFor(t, 2*time.Minute, "all deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	waitFor(t, 30*time.Second, "partitions to resume", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_partitions_paused") == 0
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered during an outage, want 0", n)
	}
	failed := 0
	for _, d := range rcv.requests() {
		if d.Status != 200 {
			failed++
		}
	}
	// Before it trips: consecutive_failures, plus what was in flight. While
	// open: one probe per open_timeout (and one more at each edge).
	bound := consecutiveFailures + concurrency + int(outage/openTimeout) + 2
	t.Logf("outage of %s: %d failed requests (bound %d) for %d records", outage, failed, bound, len(recs))
	if failed > bound {
		t.Fatalf("%d requests failed during the outage; the breaker allows at most %d", failed, bound)
	}
	if failed < consecutiveFailures {
		t.Fatalf("only %d failed requests: the outage was not exercised", failed)
	}
}

// The breaker opens and then the route holds nothing: its one record waited
// past max_age and was dead-lettered (as the operator asked). Nothing asks
// the breaker any more, yet the route must not stay paused: once the target
// is back, a record produced later is delivered.
func TestOutageWithNothingHeldResumes(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.CreateTopic(t, dlq, 1)
	rcv, up := downUntilUp(t)
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url(),
		MaxAttempts: 10, MaxAge: "2s",
		Extra: "    breaker: {consecutive_failures: 3, min_requests: 20, failure_ratio: 0.5, open_timeout: 1s}\n"}))
	recs := keyed(2, 1)
	b.produce(t, topic, recs[:1])
	waitFor(t, 30*time.Second, "the first record to be dead-lettered by max_age", func() bool {
		return len(b.readAll(t, dlq)) == 1
	})
	up.Store(true)
	b.produce(t, topic, recs[1:])
	waitFor(t, 30*time.Second, "the record produced after the outage", func() bool { return rcv.uniqueAccepted() >= 1 })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs[1:])
	var got rec
	if err := json.Unmarshal(b.readAll(t, dlq)[0].Value, &got); err != nil || got != recs[0] {
		t.Fatalf("dead-lettered %+v (%v), want %+v", got, err, recs[0])
	}
}

// downUntilUp starts a receiver that answers 503 until up is set.
func downUntilUp(t *testing.T) (*receiver, *atomic.Bool) {
	t.Helper()
	up := new(atomic.Bool)
	return newReceiver(t, func(d delivery, n int) int {
		if up.Load() {
			return 200
		}
		return 503
	}), up
}

// Two routes read the same topic; one's target is down. The other keeps
// delivering; the broken one pauses and catches up once its target is back.
func TestBrokenTargetDoesNotHoldBackAnotherRoute(t *testing.T) {
	b := newBroker(t)
	topic, dlq := topicName(t, "in"), topicName(t, "dlq")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	down, up := downUntilUp(t)
	ok := newReceiver(t, nil)
	cfg := b.configRoutes(t,
		routeSpec{Name: "broken", Topic: topic, DLQ: dlq, Group: topicName(t, "g1"), URL: down.url(), MaxAttempts: 3, Extra: breakerYAML},
		routeSpec{Name: "healthy", Topic: topic, Group: topicName(t, "g2"), URL: ok.url()})
	p := startBridge(t, cfg)

	recs := keyed(3000, 100)
	b.produce(t, topic, recs[:1000])
	waitFor(t, time.Minute, "the healthy route's first deliveries", func() bool { return ok.uniqueAccepted() >= 1000 })
	b.produce(t, topic, recs[1000:]) // produced while the other target is down
	waitFor(t, time.Minute, "the healthy route to deliver everything", func() bool { return ok.uniqueAccepted() >= len(recs) })
	if n := down.uniqueAccepted(); n != 0 {
		t.Fatalf("the broken target accepted %d records", n)
	}
	up.Store(true)
	waitFor(t, 2*time.Minute, "the broken route to catch up", func() bool { return down.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, ok, recs)
	checkDelivered(t, down, recs)
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
}

// A receiver flapping 2.5 s up, 2.5 s down for 20 s while records keep
// coming: no loss, nothing dead-lettered, per-key order kept. Each down spell
// outlasts the breaker's open_timeout (1 s plus its jitter), so the breaker
// opens, probes and reopens within it.
func TestFlappingReceiver(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	start := time.Now()
	rcv := newReceiver(t, func(d delivery, n int) int {
		el := time.Since(start)
		if el < 20*time.Second && (el/(2500*time.Millisecond))%2 == 1 {
			return 503
		}
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url(),
		MaxAttempts: 3, Extra: breakerYAML}))
	recs := keyed(4000, 100)
	for i := 0; i < len(recs); i += 100 { // a steady stream over about 20 s
		b.produce(t, topic, recs[i:i+100])
		time.Sleep(time.Until(start.Add(time.Duration(i/100+1) * 500 * time.Millisecond)))
	}
	waitFor(t, 2*time.Minute, "all deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
	next := map[string]int{}
	failed := 0
	for _, d := range rcv.requests() {
		if d.Status != 200 {
			failed++
			continue
		}
		if d.Rec.Seq < next[d.Rec.Key] {
			continue // a redelivery
		}
		if d.Rec.Seq != next[d.Rec.Key] {
			t.Fatalf("key %s: seq %d accepted before %d", d.Rec.Key, d.Rec.Seq, next[d.Rec.Key])
		}
		next[d.Rec.Key]++
	}
	if failed == 0 {
		t.Fatal("the receiver never failed: nothing was tested")
	}
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
}

// 410 Gone disables the route: its partitions pause, /readyz names it,
// nothing is dead-lettered; after a restart with a fixed URL everything is
// delivered.
func TestGoneDisablesRoute(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	gone := newReceiver(t, func(d delivery, n int) int { return 410 })
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: gone.url()}))
	recs := keyed(500, 20)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "/readyz to report the disabled route", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), "route scenario disabled")
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered after 410, want 0", n)
	}
	if !strings.Contains(p.Log(), "route disabled") {
		t.Fatal("no error log names the disabled route")
	}

	fixed := newReceiver(t, nil)
	p2 := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: fixed.url()}))
	waitFor(t, time.Minute, "all deliveries after the fix", func() bool { return fixed.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, fixed, recs)
}

// A route disabled by 410 Gone starts again on a reload of an unchanged
// file, once its receiver is back: everything is delivered, nothing is
// dead-lettered, and /readyz is 200 again, with no restart.
func TestGoneRouteResumesOnReload(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 3)
	b.CreateTopic(t, dlq, 1)
	var gone atomic.Bool
	gone.Store(true)
	rcv := newReceiver(t, func(d delivery, n int) int {
		if gone.Load() {
			return 410
		}
		return 200
	})
	path := b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()})
	p := startBridge(t, path)
	recs := keyed(300, 10)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "/readyz to report the disabled route", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), "route scenario disabled")
	})

	gone.Store(false)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reloadConfig(t, p, path, string(cfg))
	waitFor(t, time.Minute, "every record after the reload", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	waitFor(t, 30*time.Second, "/readyz 200", func() bool { return p.Ready() == nil })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
	checkDelivered(t, rcv, recs)
}

// batchReceiver parses cloudevents batches, fails each record once when
// failFirst says so, and records every event it saw.
type batchReceiver struct {
	srv       *httptest.Server
	mu        sync.Mutex
	seen      map[string]int // webhook-id -> times received
	accepted  []rec          // in order
	batches   int
	failFirst func(r rec) bool
}

func newBatchReceiver(t *testing.T, failFirst func(rec) bool) *batchReceiver {
	r := &batchReceiver{seen: map[string]int{}, failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Header.Get("Content-Type") != "application/cloudevents-batch+json" {
			w.WriteHeader(415)
			return
		}
		var evs []struct {
			ID   string `json:"id"`
			Data rec    `json:"data"`
		}
		if err := json.Unmarshal(body, &evs); err != nil {
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.batches++
		var failed []string
		for _, e := range evs {
			r.seen[e.ID]++
			if r.seen[e.ID] == 1 && r.failFirst(e.Data) {
				failed = append(failed, e.ID)
				continue
			}
			r.accepted = append(r.accepted, e.Data)
		}
		_ = json.NewEncoder(w).Encode(map[string][]string{"failed": failed})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// Batch mode: partial failures are retried alone, per-key order holds, every
// record is delivered.
func TestBatchModePartialFailures(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	rcv := newBatchReceiver(t, func(r rec) bool { return r.Seq%7 == 3 })
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.srv.URL, Concurrency: 64,
		Webhook: "        batch: {max_messages: 50, max_wait: 20ms}\n"}))
	recs := keyed(5000, 200)
	b.produce(t, topic, recs)
	waitFor(t, 2*time.Minute, "all deliveries", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.accepted) >= len(recs)
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	next := map[string]int{}
	for _, a := range rcv.accepted {
		if a.Seq != next[a.Key] {
			t.Fatalf("key %s: seq %d accepted before %d", a.Key, a.Seq, next[a.Key])
		}
		next[a.Key]++
	}
	retried, once := 0, 0
	for _, n := range rcv.seen {
		switch n {
		case 1:
			once++
		case 2:
			retried++
		default:
			t.Fatalf("a record was sent %d times", n)
		}
	}
	wantRetried := 0
	for _, r := range recs {
		if r.Seq%7 == 3 {
			wantRetried++
		}
	}
	if retried != wantRetried || once != len(recs)-wantRetried {
		t.Fatalf("%d records sent twice (want %d, the ones reported failed), %d once", retried, wantRetried, once)
	}
	if rcv.batches >= len(recs)/2 {
		t.Fatalf("%d requests for %d records: not batching", rcv.batches, len(recs))
	}
	t.Logf("%d records in %d batch requests", len(recs), rcv.batches)
}

// rate_limit paces requests: over the whole run the receiver sees no more
// than rate_limit per second, plus the 10% burst. (The one-second-window
// bound is asserted in bridge/webhook against the send times, where
// scheduling delays at the receiver cannot bunch requests together.)
func TestRateLimit(t *testing.T) {
	const limit = 20
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	var mu sync.Mutex
	var at []time.Time
	rcv := newReceiver(t, func(d delivery, n int) int {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url(),
		Webhook: "        rate_limit: " + strconv.Itoa(limit) + "\n"}))
	recs := keyed(100, 50)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "all deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	waited := metricSum(t, p.Admin(), "hookbridge_ratelimit_waits_total")
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
	burst := max(1, limit/10)
	mu.Lock()
	defer mu.Unlock()
	worst := 0
	for i := range at {
		n := 0
		for j := i; j < len(at) && at[j].Sub(at[i]) < time.Second; j++ {
			n++
		}
		worst = max(worst, n)
	}
	span := at[len(at)-1].Sub(at[0])
	rate := float64(len(at)-burst) / span.Seconds()
	t.Logf("rate_limit %d/s: %d requests in %s (%.1f/s after the burst); busiest one-second window at the receiver: %d",
		limit, len(at), span.Round(time.Millisecond), rate, worst)
	// The token bucket allows burst requests at once, then one per 1/limit.
	// The span is measured at the receiver, from the first arrival to the
	// last: a first request slower on its way (a new connection, a loaded
	// machine) than the last shortens it, so a tenth of it is slack. A
	// missing limiter or one off by more than that still fails.
	if least := time.Duration(0.9 * float64(len(at)-burst-1) / limit * float64(time.Second)); span < least {
		t.Fatalf("%d requests arrived within %s; rate_limit %d/s with burst %d needs at least %s", len(at), span, limit, burst, least)
	}
	if waited == 0 {
		t.Fatal("hookbridge_ratelimit_waits_total is 0: the limiter never held a request back")
	}
}
