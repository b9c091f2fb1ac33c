package scenario

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// A route delivering 20k keyed records delivers each exactly once, in order
// per key, and commits every partition to its end.
func TestHappyPathKeyedRecords(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	rcv := newReceiver(t, nil)
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))

	recs := keyed(20000, 200)
	produced := b.produce(t, topic, recs)
	waitFor(t, 3*time.Minute, "20k deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	// Once drained, the lag gauge of every partition comes back to 0 (the
	// commit follows within a second).
	waitFor(t, time.Minute, "consumer lag 0 at /metrics", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_records_delivered_total") >= float64(len(recs)) &&
			metricSum(t, p.Admin(), "hookbridge_consumer_lag") == 0
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if dup := checkDelivered(t, rcv, recs); dup != 0 {
		t.Fatalf("%d duplicate deliveries on the happy path", dup)
	}
	assertCommittedToEnd(t, b, group, topic, produced)
}

func assertCommittedToEnd(t *testing.T, b *broker, group, topic string, produced []sarampm) {
	t.Helper()
	end := map[int32]int64{}
	for _, m := range produced {
		end[m.Partition] = max(end[m.Partition], m.Offset+1)
	}
	got := b.Committed(t, group, topic, 6)
	for p, want := range end {
		if got[p] != want {
			t.Fatalf("partition %d committed at %d, want %d (all: %v)", p, got[p], want, got)
		}
	}
}

// kill -9 in the middle of a stream loses nothing: after a restart every
// record is delivered, first deliveries keep per-key order, and duplicates
// are only what was in flight.
func TestKillMinus9MidStreamThenRestart(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	rcv := newReceiver(t, func(d delivery, n int) int { time.Sleep(2 * time.Millisecond); return 200 })
	cfg := b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()})
	p := startBridge(t, cfg)

	recs := keyed(10000, 100)
	produced := b.produce(t, topic, recs)
	// Kill once something was committed, so the restart resumes from a
	// commit rather than from the beginning.
	waitFor(t, 2*time.Minute, "some deliveries and a commit", func() bool {
		if rcv.uniqueAccepted() < 2000 {
			return false
		}
		var sum int64
		for _, off := range b.Committed(t, group, topic, 6) {
			sum += max(off, 0)
		}
		return sum > 0
	})
	p.Kill()
	before := rcv.uniqueAccepted()

	p2 := startBridge(t, cfg)
	waitFor(t, 3*time.Minute, "all deliveries after restart", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	dup := checkDelivered(t, rcv, recs)
	t.Logf("kill -9 after %d of %d delivered: %d duplicate deliveries after restart", before, len(recs), dup)
	assertCommittedToEnd(t, b, group, topic, produced)
}

// SIGTERM drains: exit 0, and a restart redelivers nothing.
func TestSigtermDrainsWithoutDuplicates(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	// A slow receiver keeps records in flight when SIGTERM arrives.
	rcv := newReceiver(t, func(d delivery, n int) int { time.Sleep(2 * time.Millisecond); return 200 })
	cfg := b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()})
	p := startBridge(t, cfg)

	recs := keyed(5000, 50)
	b.produce(t, topic, recs)
	waitFor(t, 2*time.Minute, "some deliveries", func() bool { return rcv.uniqueAccepted() >= 1000 })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	p2 := startBridge(t, cfg)
	waitFor(t, 3*time.Minute, "all deliveries after restart", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if dup := checkDelivered(t, rcv, recs); dup != 0 {
		t.Fatalf("%d duplicates after a graceful stop and restart, want 0", dup)
	}
}

// While SIGTERM drains a record in flight, the admin endpoint still answers:
// /livez 200, /readyz 503 "shutting down".
func TestAdminAnswersWhileDraining(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	rcv, arrived, unblock := holdingReceiver(t)
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))
	recs := keyed(1, 1)
	b.produce(t, topic, recs)
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the record never reached the receiver")
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "/readyz to say shutting down", func() bool {
		err := p.Ready()
		return err != nil && strings.Contains(err.Error(), "shutting down")
	})
	resp, err := http.Get("http://" + p.Admin() + "/livez")
	if err != nil {
		t.Fatalf("/livez while draining: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/livez while draining: %d", resp.StatusCode)
	}
	unblock()
	if code := p.Wait(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	checkDelivered(t, rcv, recs)
}

// Against a broker that accepts connections and never answers, the admin
// endpoint answers from the start (/livez 200, /readyz 503 "connecting to
// Kafka"), so that a startup probe does not kill the pod while sarama waits;
// SIGTERM then ends the process without waiting for sarama to give up, exit 0.
func TestAdminAnswersWhileKafkaDoesNot(t *testing.T) {
	silent := silentBroker(t)
	cfg := silent.config(t, routeSpec{Topic: "in", Group: "g", URL: "http://127.0.0.1:9/hook"})
	p := testkit.LaunchBridge(t, bridgeBin, cfg)
	waitFor(t, 30*time.Second, "/livez to answer", func() bool {
		resp, err := http.Get("http://" + p.Admin() + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "503 connecting to Kafka") {
		t.Fatalf("/readyz while connecting: %v, want 503 connecting to Kafka", err)
	}
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM while connecting, want 0", code)
	}
	if !strings.Contains(p.Log(), "nothing was consumed") {
		t.Fatalf("log does not say the bridge stopped while connecting:\n%s", p.Log())
	}
}

// silentBroker listens on a port, accepts connections and reads what is sent,
// and never answers: a broker behind a firewall that drops replies.
func silentBroker(t *testing.T) *broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			})
		}
	}()
	return &broker{&testkit.Broker{Addrs: []string{ln.Addr().String()}}}
}

// A poison record answered 400 goes to the dead-letter topic once, byte for
// byte with error headers, and nothing else does.
func TestPoisonRecordDeadLetteredOnce(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 3)
	rcv := newReceiver(t, func(d delivery, n int) int {
		if d.Rec.Tag == "poison" {
			return 400
		}
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()}))

	recs := keyed(1000, 20)
	recs[500].Tag = "poison"
	produced := b.produce(t, topic, recs)
	waitFor(t, 2*time.Minute, "999 deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs)-1 })
	waitFor(t, time.Minute, "the dead-letter record", func() bool { return len(b.readAll(t, dlq)) >= 1 })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	msgs := b.readAll(t, dlq)
	if len(msgs) != 1 {
		t.Fatalf("%d dead-letter records, want 1", len(msgs))
	}
	m := msgs[0]
	var poison sarampm
	for _, pm := range produced {
		v, _ := pm.Value.Encode()
		if string(v) == `{"key":"k0","seq":25,"tag":"poison"}` {
			poison = pm
		}
	}
	if string(m.Key) != "k0" || string(m.Value) != `{"key":"k0","seq":25,"tag":"poison"}` {
		t.Fatalf("dead-letter record key %q value %q", m.Key, m.Value)
	}
	h := map[string]string{}
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	want := map[string]string{
		"content-type":               "application/json",
		"hookbridge-error-route":     "scenario",
		"hookbridge-error-topic":     topic,
		"hookbridge-error-partition": strconv.Itoa(int(poison.Partition)),
		"hookbridge-error-offset":    strconv.FormatInt(poison.Offset, 10),
		"hookbridge-error-attempts":  "1",
		"hookbridge-error-status":    "400",
		"hookbridge-error-kind":      "permanent",
	}
	for k, v := range want {
		if h[k] != v {
			t.Fatalf("dead-letter header %s = %q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	// 400 is not retried: the poison record was requested exactly once.
	n := 0
	for _, d := range rcv.requests() {
		if d.Rec.Tag == "poison" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("poison record requested %d times, want 1", n)
	}
	checkDelivered(t, rcv, append(append([]rec{}, recs[:500]...), recs[501:]...))
}

// Random 503s on 20% of requests: with ordering key, every key's records are
// accepted in order, none is dead-lettered, none lost.
func TestRandom5xxKeepsPerKeyOrder(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	b.CreateTopic(t, dlq, 1)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	rcv := newReceiver(t, func(d delivery, n int) int {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(5) == 0 {
			return 503
		}
		return 200
	})
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url(),
		MaxAttempts: 50}))
	recs := keyed(5000, 100)
	b.produce(t, topic, recs)
	waitFor(t, 3*time.Minute, "all deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if dup := checkDelivered(t, rcv, recs); dup != 0 {
		t.Fatalf("%d duplicates", dup)
	}
	// Strict order: each key's accepted sequence is exactly 0,1,2,...
	next := map[string]int{}
	failed := 0
	for _, d := range rcv.requests() {
		if d.Status != 200 {
			failed++
			continue
		}
		if d.Rec.Seq != next[d.Rec.Key] {
			t.Fatalf("key %s accepted seq %d after %d", d.Rec.Key, d.Rec.Seq, next[d.Rec.Key]-1)
		}
		next[d.Rec.Key]++
	}
	if failed == 0 {
		t.Fatal("the receiver never failed: the scenario tested nothing")
	}
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
}

// Two bridges share a group; one is stopped mid-stream (SIGTERM) and the
// other takes over its partitions: nothing is lost.
func TestTwoInstancesOneStoppedMidStream(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	rcv := newReceiver(t, func(d delivery, n int) int { time.Sleep(time.Millisecond); return 200 })
	spec := routeSpec{Topic: topic, Group: group, URL: rcv.url()}
	p1 := startBridge(t, b.config(t, spec))
	p2 := startBridge(t, b.config(t, spec))

	recs := keyed(10000, 100)
	produced := b.produce(t, topic, recs)
	waitFor(t, 2*time.Minute, "some deliveries", func() bool { return rcv.uniqueAccepted() >= 2000 })
	if code := p1.Stop(); code != 0 {
		t.Fatalf("first instance exit code %d", code)
	}
	waitFor(t, 3*time.Minute, "all deliveries", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("second instance exit code %d", code)
	}
	dup := checkDelivered(t, rcv, recs)
	t.Logf("two instances, one stopped mid-stream: %d duplicates", dup)
	assertCommittedToEnd(t, b, group, topic, produced)
}

// When the dead-letter write fails, the partition does not commit past the
// record, /readyz turns false, and once the topic is back the record is
// dead-lettered and the partition moves on.
func TestDeadLetterWriteFailureStopsPartition(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.CreateTopic(t, dlq, 1)
	rcv := newReceiver(t, func(d delivery, n int) int {
		if d.Rec.Tag == "poison" {
			return 422
		}
		return 200
	})
	cfg := b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()})
	p := startBridge(t, cfg)
	b.deleteTopic(t, dlq) // the dead-letter write will fail

	recs := keyed(200, 10)
	recs[50].Tag = "poison" // offset 50 of the single partition
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "/readyz to report the stuck partition", func() bool { return p.Ready() != nil })
	if got := rcv.uniqueAccepted(); got < 50 {
		t.Fatalf("only %d records before the poison one were delivered", got)
	}
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := b.Committed(t, group, topic, 1)[0]; got != 50 {
		t.Fatalf("committed offset %d; want 50, the stuck record's offset", got)
	}

	b.CreateTopic(t, dlq, 1)
	p2 := startBridge(t, cfg)
	waitFor(t, time.Minute, "the dead-letter record", func() bool { return len(b.readAll(t, dlq)) == 1 })
	waitFor(t, time.Minute, "the other records", func() bool { return rcv.uniqueAccepted() >= len(recs)-1 })
	waitFor(t, time.Minute, "commit to the end", func() bool {
		return b.Committed(t, group, topic, 1)[0] == int64(len(recs))
	})
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if msgs := b.readAll(t, dlq); len(msgs) != 1 || string(msgs[0].Value) != fmt.Sprintf(`{"key":"k0","seq":5,"tag":"poison"}`) {
		t.Fatalf("dead-letter topic holds %d records", len(msgs))
	}
}
