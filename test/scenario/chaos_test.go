package scenario

// Combined failures: an outage with SIGTERM, kill -9, a rebalance or a
// reload; plugin processes killed or hanging; a reply topic deleted. Every
// test asserts on data: what was delivered, dead-lettered, committed.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

var (
	testPluginOnce sync.Once
	testPluginBin  string
	testPluginErr  error
)

// buildTestPlugin builds plugins/host/testdata/testplugin once.
func buildTestPlugin(t *testing.T) string {
	t.Helper()
	testPluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookbridge-testplugin")
		if err != nil {
			testPluginErr = err
			return
		}
		testPluginBin = filepath.Join(dir, "testplugin")
		build := exec.Command("go", "build", "-o", testPluginBin, "github.com/hookbridge/hookbridge/plugins/host/testdata/testplugin")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		testPluginErr = build.Run()
	})
	if testPluginErr != nil {
		t.Fatalf("building testplugin: %v", testPluginErr)
	}
	return testPluginBin
}

// processesOf returns the pids of running processes whose argv[0] is bin
// (processes started, through the bridge, by this test).
func processesOf(bin string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cl) == 0 {
			continue
		}
		arg0, _, _ := strings.Cut(string(cl), "\x00")
		if arg0 != bin {
			continue
		}
		st, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// produceWithBehaviour produces recs with the x-test header set to verb (none when "").
func produceWithBehaviour(t *testing.T, b *broker, topic string, recs []rec, verb func(rec) string) []testkit.Produced {
	t.Helper()
	msgs := make([]testkit.Message, len(recs))
	for i, r := range recs {
		v, _ := json.Marshal(r)
		m := testkit.Message{Key: []byte(r.Key), Value: v}
		if verb != nil {
			if x := verb(r); x != "" {
				m.Headers = []sarama.RecordHeader{{Key: []byte("x-test"), Value: []byte(x)}}
			}
		}
		msgs[i] = m
	}
	return b.Produce(t, topic, msgs)
}

// pluginRouteConfig writes a config with one plugin route.
func pluginRouteConfig(t *testing.T, b *broker, bin, pluginExtra, topic, group, dlq, reply, routeExtra string) string {
	t.Helper()
	brokers, _ := json.Marshal(b.Addrs)
	cfg := fmt.Sprintf(`kafka: {brokers: %s, session_timeout: 6s}
admin: {listen: %s}
shutdown_timeout: 10s
plugins:
  tp:
    command: [%q]
%sroutes:
  - name: scenario
    topics: [%s]
    group: %s
    concurrency: 32
    target: {plugin: tp}
    retry: {max_attempts: 20, initial_backoff: 10ms, max_backoff: 200ms}
    breaker: {consecutive_failures: 5, min_requests: 20, failure_ratio: 0.5, open_timeout: 1s}
`, brokers, anyPort, bin, pluginExtra, topic, group)
	if dlq != "" {
		cfg += "    dead_letter: {topic: " + dlq + "}\n"
	}
	if reply != "" {
		cfg += "    reply: {topic: " + reply + "}\n"
	}
	cfg += routeExtra
	return writeConfig(t, cfg)
}

// recsIn returns the set of record values (as rec) found in topic.
func recsIn(t *testing.T, b *broker, topic string) map[rec]int {
	t.Helper()
	out := map[rec]int{}
	for _, m := range b.readAll(t, topic) {
		var r rec
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("topic %s holds a value that is not a rec: %q", topic, m.Value)
		}
		r.Tag = ""
		out[r]++
	}
	return out
}

func countIn(t *testing.T, b *broker, topic string) int { return len(b.readAll(t, topic)) }

// assertCommittedOnlyDone checks that every offset below each partition's
// committed offset belongs to a record in done.
func assertCommittedOnlyDone(t *testing.T, b *broker, group, topic string, parts int32, produced []sarampm, done func(rec) bool) map[int32]int64 {
	t.Helper()
	got := b.Committed(t, group, topic, parts)
	for _, m := range produced {
		v, _ := m.Value.Encode()
		var r rec
		_ = json.Unmarshal(v, &r)
		r.Tag = ""
		if m.Offset < got[m.Partition] && !done(r) {
			t.Fatalf("partition %d committed at %d, but offset %d (%s/%d) was neither delivered nor dead-lettered (all: %v)",
				m.Partition, got[m.Partition], m.Offset, r.Key, r.Seq, got)
		}
	}
	return got
}

func acceptedSet(r *receiver) map[rec]bool {
	out := map[rec]bool{}
	for _, d := range r.accepted() {
		out[rec{Key: d.Rec.Key, Seq: d.Rec.Seq}] = true
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// pluginScenario is a plugin route (the test plugin) over a new topic, with
// a dead-letter and a reply topic, its configuration written.
type pluginScenario struct {
	b                                  *broker
	bin, topic, dlq, reply, group, cfg string
}

func newPluginScenario(t *testing.T, partitions, replyPartitions int32, pluginExtra, routeExtra string) *pluginScenario {
	t.Helper()
	s := &pluginScenario{b: newBroker(t), bin: buildTestPlugin(t)}
	s.topic, s.dlq, s.reply, s.group = topicName(t, "in"), topicName(t, "dlq"), topicName(t, "out"), topicName(t, "g")
	s.b.CreateTopic(t, s.topic, partitions)
	s.b.CreateTopic(t, s.dlq, 1)
	s.b.CreateTopic(t, s.reply, replyPartitions)
	s.cfg = pluginRouteConfig(t, s.b, s.bin, pluginExtra, s.topic, s.group, s.dlq, s.reply, routeExtra)
	return s
}

// assertReplied checks, after the bridge stopped, that each of recs got a
// reply, that nothing was dead-lettered and that the group committed every
// record produced.
func (s *pluginScenario) assertReplied(t *testing.T, recs []rec, produced []testkit.Produced) {
	t.Helper()
	vals := recsIn(t, s.b, s.reply)
	for _, r := range recs {
		if vals[r] == 0 {
			t.Fatalf("no reply for %s/%d", r.Key, r.Seq)
		}
	}
	if n := countIn(t, s.b, s.dlq); n != 0 {
		t.Fatalf("%d records dead-lettered", n)
	}
	pm := make([]sarampm, len(produced))
	for i, m := range produced {
		pm[i] = sarampm{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	}
	assertCommittedToEnd(t, s.b, s.group, s.topic, pm)
}

// outageScenario is a webhook route over a new topic of 6 partitions with a
// dead-letter topic and a breaker that opens fast (breakerYAML); its
// receiver answers 503 while up is false.
type outageScenario struct {
	b                 *broker
	topic, dlq, group string
	rcv               *receiver
	up                *atomic.Bool
	spec              routeSpec
}

func newOutageScenario(t *testing.T) *outageScenario {
	t.Helper()
	o := &outageScenario{b: newBroker(t)}
	o.topic, o.dlq, o.group = topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	o.b.CreateTopic(t, o.topic, 6)
	o.b.CreateTopic(t, o.dlq, 1)
	o.rcv, o.up = downUntilUp(t)
	o.up.Store(true)
	o.spec = routeSpec{Topic: o.topic, DLQ: o.dlq, Group: o.group, URL: o.rcv.url(), MaxAttempts: 20, Extra: breakerYAML}
	return o
}

// outage delivers the first half of recs, takes the receiver down, produces
// the rest, and waits until the route of the bridge p paused and probed the
// receiver twice. It returns what it produced.
func (o *outageScenario) outage(t *testing.T, p *testkit.Bridge, recs []rec) []sarampm {
	t.Helper()
	half := len(recs) / 2
	produced := o.b.produce(t, o.topic, recs[:half])
	waitFor(t, time.Minute, "first half delivered", func() bool { return o.rcv.uniqueAccepted() >= half })
	o.up.Store(false)
	produced = append(produced, o.b.produce(t, o.topic, recs[half:])...)
	waitForBreakerPause(t, p, 6)
	// Requests are no measure of probes: a record that failed before the
	// breaker opened may still be retried. Count the half-open transitions.
	probes := func() float64 {
		return testkit.MetricValue(p.Admin(), "hookbridge_breaker_transitions_total", `state="half-open"`)
	}
	n0 := probes()
	waitFor(t, time.Minute, "a couple of half-open probes", func() bool { return probes() >= n0+2 })
	return produced
}

// waitForBreakerPause waits until the breaker of the bridge p is open and
// its route has paused partitions of its own (0: at least one), every one it
// owns while open. Backpressure pauses partitions too: the records retried
// before the breaker trips fill the route, on a real broker often before it
// trips, and a wait for any pause let a test act with the breaker closed.
func waitForBreakerPause(t *testing.T, p *testkit.Bridge, partitions float64) {
	t.Helper()
	waitFor(t, time.Minute, "the breaker to open and pause the route's partitions", func() bool {
		paused := metricSum(t, p.Admin(), "hookbridge_partitions_paused")
		return metricSum(t, p.Admin(), "hookbridge_breaker_state") == 2 &&
			(paused == partitions || partitions == 0 && paused > 0)
	})
}

// finish waits for every rec at rcv, stops p (exit 0 on SIGTERM) and checks
// that recs were delivered in order per key, that the group committed every
// record produced and that none was dead-lettered.
func (o *outageScenario) finish(t *testing.T, p *testkit.Bridge, rcv *receiver, recs []rec, produced []sarampm) {
	t.Helper()
	waitFor(t, 2*time.Minute, "every record delivered", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	time.Sleep(2 * time.Second) // a periodic commit
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
	assertCommittedToEnd(t, o.b, o.group, o.topic, produced)
	if n := countIn(t, o.b, o.dlq); n != 0 {
		t.Fatalf("%d records dead-lettered", n)
	}
}

// SIGTERM while the breaker is open and records are held: exit 0, commits
// cover only delivered records, nothing dead-lettered; a restart with the
// receiver healthy delivers the rest and commits to the end.
func TestChaosSigtermDuringOutage(t *testing.T) {
	o := newOutageScenario(t)
	b, topic, dlq, group, rcv := o.b, o.topic, o.dlq, o.group, o.rcv
	cfg := b.config(t, o.spec)
	p := startBridge(t, cfg)

	recs := keyed(1200, 60)
	produced := o.outage(t, p, recs)
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM during an outage, want 0", code)
	}
	acc := acceptedSet(rcv)
	got := assertCommittedOnlyDone(t, b, group, topic, 6, produced, func(r rec) bool { return acc[r] })
	t.Logf("committed after SIGTERM during outage: %v; %d unique accepted", got, len(acc))
	if n := countIn(t, b, dlq); n != 0 {
		t.Fatalf("%d records dead-lettered during an outage", n)
	}

	o.up.Store(true)
	o.finish(t, startBridge(t, cfg), rcv, recs, produced)
}

// kill -9 during an outage, restart with the receiver healthy: no gap.
func TestChaosKill9DuringOutage(t *testing.T) {
	o := newOutageScenario(t)
	b, topic, group, rcv, up := o.b, o.topic, o.group, o.rcv, o.up
	cfg := b.config(t, o.spec)
	p := startBridge(t, cfg)

	recs := keyed(1200, 60)
	produced := o.outage(t, p, recs)
	// let a periodic commit happen while paused
	time.Sleep(2 * time.Second)
	p.Kill()
	acc := acceptedSet(rcv)
	assertCommittedOnlyDone(t, b, group, topic, 6, produced, func(r rec) bool { return acc[r] })

	up.Store(true)
	o.finish(t, startBridge(t, cfg), rcv, recs, produced)
}

// A second instance joins while the first is paused on an open breaker
// (rebalance while paused), then the first is stopped with SIGTERM; once the
// target is back, everything is delivered, nothing dead-lettered, commits
// reach the end.
func TestChaosRebalanceDuringOutage(t *testing.T) {
	o := newOutageScenario(t)
	b, topic, group, rcv, up, spec := o.b, o.topic, o.group, o.rcv, o.up, o.spec
	p1 := startBridge(t, b.config(t, spec))

	recs := keyed(1200, 60)
	produced := b.produce(t, topic, recs[:400])
	waitFor(t, time.Minute, "first part delivered", func() bool { return rcv.uniqueAccepted() >= 400 })
	up.Store(false)
	produced = append(produced, b.produce(t, topic, recs[400:800])...)
	waitForBreakerPause(t, p1, 6)
	p2 := startBridge(t, b.config(t, spec))
	produced = append(produced, b.produce(t, topic, recs[800:])...)
	waitForBreakerPause(t, p2, 0) // the second instance's own breaker, on the partitions it owns
	acc := acceptedSet(rcv)
	assertCommittedOnlyDone(t, b, group, topic, 6, produced, func(r rec) bool { return acc[r] })
	if code := p1.Stop(); code != 0 {
		t.Fatalf("first instance exit code %d after SIGTERM during outage", code)
	}
	acc = acceptedSet(rcv)
	assertCommittedOnlyDone(t, b, group, topic, 6, produced, func(r rec) bool { return acc[r] })
	up.Store(true)
	o.finish(t, p2, rcv, recs, produced)
}

// SIGHUP while the route's target is down and records are held: the route
// is drained and restarted (its URL changes to a healthy receiver); every
// record is delivered exactly where the new config says, nothing is
// dead-lettered, commits reach the end.
func TestChaosSighupDuringOutage(t *testing.T) {
	o := newOutageScenario(t)
	o.up.Store(false)
	b, topic, spec := o.b, o.topic, o.spec
	healthy := newReceiver(t, nil)
	path := b.config(t, spec)
	p := startBridge(t, path)
	recs := keyed(1000, 50)
	produced := b.produce(t, topic, recs[:500])
	waitForBreakerPause(t, p, 6)
	spec.URL = healthy.url()
	data, _ := os.ReadFile(b.config(t, spec))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGHUP)
	waitFor(t, time.Minute, "the reload", func() bool { return strings.Contains(p.Log(), "configuration reloaded") })
	produced = append(produced, b.produce(t, topic, recs[500:])...)
	o.finish(t, p, healthy, recs, produced)
}

// Batch mode: SIGTERM while the breaker is open, then restart with the
// receiver up: every record delivered, none dead-lettered, commits at end.
func TestChaosBatchSigtermDuringOutage(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	var up atomic.Bool
	up.Store(true)
	rcv := newBatchReceiver(t, func(rec) bool { return false })
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !up.Load() {
			w.WriteHeader(503)
			return
		}
		rcv.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	path := b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: front.URL, MaxAttempts: 20, Concurrency: 64,
		Webhook: "        batch: {max_messages: 20, max_wait: 20ms}\n", Extra: breakerYAML})
	p := startBridge(t, path)
	recs := keyed(2000, 100)
	produced := b.produce(t, topic, recs[:1000])
	accepted := func() map[rec]bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		out := map[rec]bool{}
		for _, a := range rcv.accepted {
			out[rec{Key: a.Key, Seq: a.Seq}] = true
		}
		return out
	}
	waitFor(t, time.Minute, "first half", func() bool { return len(accepted()) >= 1000 })
	up.Store(false)
	produced = append(produced, b.produce(t, topic, recs[1000:])...)
	waitForBreakerPause(t, p, 6)
	time.Sleep(2 * time.Second)
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM during a batch outage", code)
	}
	acc := accepted()
	assertCommittedOnlyDone(t, b, group, topic, 6, produced, func(r rec) bool { return acc[r] })
	up.Store(true)
	p2 := startBridge(t, path)
	waitFor(t, 2*time.Minute, "every record", func() bool { return len(accepted()) >= len(recs) })
	time.Sleep(2 * time.Second)
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	assertCommittedToEnd(t, b, group, topic, produced)
	if n := countIn(t, b, dlq); n != 0 {
		t.Fatalf("%d dead-lettered", n)
	}
}

// The plugin process is killed with kill -9 repeatedly mid-stream: every
// record gets its reply, nothing is dead-lettered, commits reach the end.
func TestChaosPluginKill9MidStream(t *testing.T) {
	sc := newPluginScenario(t, 6, 3, "    instances: {min: 1, max: 2}\n    timeout: 5s\n", "")
	b := sc.b
	p := startBridge(t, sc.cfg)

	recs := keyed(3000, 100)
	produced := produceWithBehaviour(t, b, sc.topic, recs, func(rec) string { return "sleep:3ms" })
	kills := 0
	for _, at := range []int{300, 900, 1500, 2100} {
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d replies", at), func() bool { return countIn(t, b, sc.reply) >= at })
		for _, pid := range processesOf(sc.bin) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				kills++
			}
		}
	}
	if kills == 0 {
		t.Fatal("no plugin process was killed")
	}
	waitFor(t, 3*time.Minute, "every reply", func() bool { return len(recsIn(t, b, sc.reply)) >= len(recs) })
	time.Sleep(2 * time.Second)
	t.Logf("killed %d plugin processes; restarts metric %v", kills, metricSum(t, p.Admin(), "hookbridge_plugin_restarts_total"))
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	sc.assertReplied(t, recs, produced)
}

// SIGTERM while a plugin call hangs (ignoring cancellation): exit 0 once
// shutdown_timeout ran out, nothing committed past what was replied.
func TestChaosSigtermWhilePluginHangs(t *testing.T) {
	sc := newPluginScenario(t, 1, 1, "    instances: {min: 1, max: 1}\n    timeout: 30s\n", "    ordering: partition\n")
	b, topic, dlq, reply, group := sc.b, sc.topic, sc.dlq, sc.reply, sc.group
	p := startBridge(t, sc.cfg)
	recs := keyed(20, 2)
	produced := produceWithBehaviour(t, b, topic, recs, func(r rec) string {
		if r.Key == "k1" && r.Seq == 5 {
			return "hang"
		}
		return ""
	})
	waitFor(t, time.Minute, "the records before the hanging one", func() bool { return countIn(t, b, reply) >= 10 })
	time.Sleep(time.Second)
	start := time.Now()
	code := p.Stop()
	t.Logf("stopped after %s with %d", time.Since(start), code)
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM while a plugin call hangs", code)
	}
	vals := recsIn(t, b, reply)
	got := b.Committed(t, group, topic, 1)
	for _, m := range produced {
		var r rec
		_ = json.Unmarshal(m.Value, &r)
		r.Tag = ""
		if m.Offset < got[0] && vals[r] == 0 {
			t.Fatalf("offset %d committed (at %d) without a reply", m.Offset, got[0])
		}
	}
	if n := countIn(t, b, dlq); n != 0 {
		t.Fatalf("%d dead-lettered", n)
	}
}

// The reply topic is deleted mid-stream on a plugin route: records whose
// reply cannot be written are not committed and not dead-lettered; once the
// topic is back every record gets its reply.
func TestChaosReplyTopicDeletedMidStream(t *testing.T) {
	sc := newPluginScenario(t, 6, 1, "    instances: {min: 1, max: 2}\n    timeout: 5s\n", "")
	b, topic, dlq, reply, group := sc.b, sc.topic, sc.dlq, sc.reply, sc.group
	p := startBridge(t, sc.cfg)
	recs := keyed(1000, 50)
	produced := produceWithBehaviour(t, b, topic, recs[:300], nil)
	waitFor(t, time.Minute, "first replies", func() bool { return countIn(t, b, reply) >= 300 })
	b.deleteTopic(t, reply)
	produced = append(produced, produceWithBehaviour(t, b, topic, recs[300:], nil)...)
	waitFor(t, time.Minute, "/readyz false", func() bool { return p.Ready() != nil })
	time.Sleep(3 * time.Second)
	got := b.Committed(t, group, topic, 6)
	if n := countIn(t, b, dlq); n != 0 {
		t.Fatalf("%d dead-lettered while the reply topic was missing", n)
	}
	for _, m := range produced[300:] {
		if m.Offset < got[m.Partition] {
			t.Fatalf("partition %d committed at %d past offset %d whose reply was never written", m.Partition, got[m.Partition], m.Offset)
		}
	}
	b.CreateTopic(t, reply, 1)
	waitFor(t, 2*time.Minute, "every later reply", func() bool { return len(recsIn(t, b, reply)) >= len(recs)-300 })
	time.Sleep(2 * time.Second)
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	sc.assertReplied(t, recs[300:], produced)
}

// A record that kills every plugin process it reaches, alone on its route
// (one partition, ordering: partition), cannot be told from a plugin that
// is down: the breaker opens and the route pauses on it. Nothing is
// dead-lettered, nothing after it is committed, and the log line of the
// breaker opening names the record, carries its trace_id (so that an
// operator can find it and its trace) and says when the breaker half-opens.
// SIGTERM still exits 0.
func TestChaosPluginPoisonAlonePausesAndIsNamed(t *testing.T) {
	sc := newPluginScenario(t, 1, 1, "    instances: {min: 1, max: 2}\n    timeout: 5s\n", "    ordering: partition\n")
	b, topic, dlq, reply, group, cfg := sc.b, sc.topic, sc.dlq, sc.reply, sc.group, sc.cfg
	raw := mustRead(t, cfg)
	// The first failure opens the breaker: process restarts back off up to
	// 10 s, and a failed attempt costs four of them.
	raw = strings.Replace(raw, "consecutive_failures: 5", "consecutive_failures: 1", 1)
	raw = strings.Replace(raw, "max_attempts: 20", "max_attempts: 3", 1) // above consecutive_failures, as the README asks
	if err := os.WriteFile(cfg, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBridge(t, cfg)
	recs := keyed(10, 1)
	produceWithBehaviour(t, b, topic, recs, func(r rec) string {
		if r.Seq == 4 {
			return "exit"
		}
		return ""
	})
	poison := topic + "-0-4"
	waitFor(t, 2*time.Minute, "the breaker-open line naming "+poison+" and its trace", func() bool {
		for _, line := range strings.Split(p.Log(), "\n") {
			if strings.Contains(line, "circuit breaker open") && strings.Contains(line, poison) && strings.Contains(line, "processes died") &&
				strings.Contains(line, `"trace_id":"`) && strings.Contains(line, `"half_open_in":"`) {
				return true
			}
		}
		return false
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if n := countIn(t, b, dlq); n != 0 {
		t.Fatalf("%d records dead-lettered: the route should pause on a record it cannot tell from an outage", n)
	}
	if got := b.Committed(t, group, topic, 1); got[0] > 4 {
		t.Fatalf("committed %d, past the poison record at offset 4", got[0])
	}
	vals := recsIn(t, b, reply)
	for _, r := range recs[:4] {
		if vals[r] == 0 {
			t.Fatalf("no reply for %s/%d, before the poison record", r.Key, r.Seq)
		}
	}
}
