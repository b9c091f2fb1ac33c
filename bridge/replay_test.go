package bridge

// Bridge.Replay against franz-go's kfake broker over TCP and a real webhook
// receiver: where a first replay starts, and where every replay stops.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

const (
	replaySource = "orders"
	replayDLQ    = "orders.dlq"
)

// replayRig is a broker holding the source and dead-letter topics of two
// routes, orders-billing and orders-shipping, which share both, and the
// receiver both post to; it answers every request with one status.
type replayRig struct {
	cluster *kfake.Cluster
	addrs   []string
	bridge  *Bridge

	mu     sync.Mutex
	bodies []string     // in the order received
	onBody func(string) // if set, called with each body before the answer
}

func newReplayRig(t *testing.T, status int, initialOffset string) *replayRig {
	t.Helper()
	rig := &replayRig{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rig.mu.Lock()
		rig.bodies = append(rig.bodies, string(body))
		onBody := rig.onBody
		rig.mu.Unlock()
		if onBody != nil {
			onBody(string(body))
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, replaySource, replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	rig.cluster, rig.addrs = cluster, cluster.ListenAddrs()

	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: rig.addrs, InitialOffset: initialOffset},
		Routes: []config.Route{{Name: "orders-billing", Topics: []string{replaySource},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}},
			Retry:      config.Retry{MaxAttempts: 1},
			DeadLetter: config.DeadLetter{Topic: replayDLQ}}, {Name: "orders-shipping", Topics: []string{replaySource},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: srv.URL}},
			Retry:      config.Retry{MaxAttempts: 1},
			DeadLetter: config.DeadLetter{Topic: replayDLQ}}},
	}
	cfg.ApplyDefaults()
	rig.bridge = New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(io.Discard, "json", "info")})
	return rig
}

// received returns the bodies the receiver got.
func (rig *replayRig) received() []string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return slices.Clone(rig.bodies)
}

// deadLetter appends records to the dead-letter topic as something other
// than a route would have written them: the value, and where the original
// record was, but no hookbridge-error-route.
func (rig *replayRig) deadLetter(t *testing.T, values ...string) {
	t.Helper()
	rig.deadLetterOf(t, "", values...)
}

// deadLetterOf appends records to the dead-letter topic as route would have
// written them ("": with no hookbridge-error-route header).
func (rig *replayRig) deadLetterOf(t *testing.T, route string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, v := range values {
		r := &kgo.Record{Topic: replayDLQ, Value: []byte(v), Headers: []kgo.RecordHeader{
			{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
			{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
			{Key: dispatch.HeaderErrorOffset, Value: []byte(strconv.Itoa(i))},
			{Key: dispatch.HeaderErrorKind, Value: []byte("permanent")},
		}}
		if route != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: dispatch.HeaderErrorRoute, Value: []byte(route)})
		}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// endOffset returns the offset the next record of the dead-letter topic gets.
func (rig *replayRig) endOffset(t *testing.T) int64 {
	t.Helper()
	c, err := sarama.NewClient(rig.addrs, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	end, err := c.GetOffset(replayDLQ, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return end
}

// replay runs Bridge.Replay of every record and returns its report; then the
// dead-letter topic has one more record, "late". It is produced after the
// replay returned, or, when the replay has not returned after a while (it
// waits for a record it will never get), while it runs: the replay must not
// replay it either way.
func (rig *replayRig) replay(t *testing.T) *ReplayReport {
	t.Helper()
	return rig.replayRoute(t, "orders-billing")
}

// replayRoute is replay of route.
func (rig *replayRig) replayRoute(t *testing.T, route string) *ReplayReport {
	t.Helper()
	return rig.replayWith(t, ReplayOptions{Route: route, Partition: -1, FromOffset: -1, ToOffset: -1})
}

// replayWith is replay with the options o.
func (rig *replayRig) replayWith(t *testing.T, o ReplayOptions) *ReplayReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard only
	defer cancel()
	type result struct {
		rep *ReplayReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := rig.bridge.Replay(ctx, o)
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
		rig.deadLetter(t, "late")
	case <-time.After(15 * time.Second):
		rig.deadLetter(t, "late")
		res = <-done
	}
	if res.err != nil {
		t.Fatalf("Replay: %v", res.err)
	}
	return res.rep
}

// A first replay starts at the oldest offset even with kafka.initial_offset
// newest, returns once it replayed what the topic held when it started, and
// commits there: a record dead-lettered later is for the next replay.
func TestReplayFirstRunStartsAtOldestWithInitialOffsetNewest(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "newest")
	rig.deadLetter(t, "a", "b")

	rep := rig.replay(t)
	if got := rig.received(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("receiver got %q, want [a b]", got)
	}
	if rep.Seen != 2 || rep.Replayed != 2 || rep.Delivered != 2 || rep.DeadLettered != 0 || rep.Committed[0] != 2 {
		t.Fatalf("report %+v, want 2 seen, replayed and delivered, committed 2", rep)
	}

	// The next replay starts where this one committed: only "late".
	rep = rig.replay(t)
	if got := rig.received(); !slices.Equal(got, []string{"a", "b", "late"}) {
		t.Fatalf("after the second replay the receiver got %q, want [a b late]", got)
	}
	if rep.Seen != 1 || rep.Replayed != 1 || rep.Committed[0] != 3 {
		t.Fatalf("second report %+v, want 1 seen and replayed, committed 3", rep)
	}
}

// The dead-letter topic ends with a transaction's commit marker, an offset
// no consumer receives: the replay replays the record before it once and
// returns without waiting for a record at the marker's offset.
func TestReplayEndsAtTransactionMarker(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		wantDLQEnd  int64 // the record, the marker, and a record dead-lettered again
		wantDeadLet int
	}{
		{"delivered", http.StatusOK, 2, 0},
		{"dead-lettered again", http.StatusBadRequest, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newReplayRig(t, tc.status, "oldest")
			rig.deadLetterInTransaction(t, kgo.StringRecord("txn"))
			if end := rig.endOffset(t); end != 2 {
				t.Fatalf("the dead-letter topic ends at %d, want 2 (the record and the commit marker)", end)
			}

			rep := rig.replay(t)
			if got := rig.received(); !slices.Equal(got, []string{"txn"}) {
				t.Fatalf("receiver got %q, want [txn] (replayed once, nothing produced later)", got)
			}
			if rep.Seen != 1 || rep.Replayed != 1 || rep.DeadLettered != tc.wantDeadLet || rep.Committed[0] != 2 {
				t.Fatalf("report %+v, want 1 seen and replayed, %d dead-lettered, committed 2", rep, tc.wantDeadLet)
			}
			// "late" came after the replay returned, or while it ran.
			if end := rig.endOffset(t); end != tc.wantDLQEnd+1 {
				t.Fatalf("the dead-letter topic ends at %d, want %d", end, tc.wantDLQEnd+1)
			}
		})
	}
}

// Two routes share a dead-letter topic: a replay of one delivers its own
// dead letters and those no route claims, never the other route's, and
// commits past the other route's (the last record included), which that
// route's replay group still holds for it.
func TestReplayOfOneRouteLeavesAnotherRoutesDeadLetters(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "billing-1")
	rig.deadLetterOf(t, "orders-shipping", "shipping-1")
	rig.deadLetterOf(t, "orders-billing", "billing-2")
	rig.deadLetterOf(t, "orders-shipping", "shipping-2")

	rep := rig.replayRoute(t, "orders-billing")
	if got := rig.received(); !slices.Equal(got, []string{"billing-1", "billing-2"}) {
		t.Fatalf("replaying orders-billing, the receiver got %q, want [billing-1 billing-2]", got)
	}
	if rep.Seen != 4 || rep.Replayed != 2 || rep.Delivered != 2 || rep.OtherRoute != 2 || rep.Skipped != 0 || rep.Committed[0] != 4 {
		t.Fatalf("report %+v, want 4 seen, 2 replayed and delivered, 2 of another route, committed 4", rep)
	}

	// "late" has no hookbridge-error-route: the replay of orders-shipping
	// takes it as its own.
	rep = rig.replayRoute(t, "orders-shipping")
	want := []string{"billing-1", "billing-2", "shipping-1", "shipping-2", "late"}
	if got := rig.received(); !slices.Equal(got, want) {
		t.Fatalf("after replaying orders-shipping the receiver got %q, want %q", got, want)
	}
	if rep.Group != "hookbridge.orders-shipping.replay" || rep.Seen != 5 || rep.Replayed != 3 || rep.Delivered != 3 ||
		rep.OtherRoute != 2 || rep.Committed[0] != 5 {
		t.Fatalf("report %+v, want group hookbridge.orders-shipping.replay, 5 seen, 3 replayed and delivered, "+
			"2 of another route, committed 5", rep)
	}
}

// The original coordinates of a dead letter are taken from its headers all
// or nothing: when one is missing or unusable, the record is replayed under
// the dead-letter record's own topic, partition and offset, never under a mix
// that names another record.
func TestReplayRecordCoordinates(t *testing.T) {
	const (
		topic, part, off = dispatch.HeaderErrorTopic, dispatch.HeaderErrorPartition, dispatch.HeaderErrorOffset
	)
	type coords struct {
		topic     string
		partition int32
		offset    int64
	}
	own := coords{replayDLQ, 2, 40}
	for _, tc := range []struct {
		name    string
		headers []*sarama.RecordHeader
		want    coords
		problem bool
	}{
		{"all three", hdr(topic, "orders", part, "5", off, "17"), coords{"orders", 5, 17}, false},
		{"the dead-lettering route's set is the last", hdr(topic, "a", part, "1", off, "1", topic, "orders", part, "5", off, "17"),
			coords{"orders", 5, 17}, false},
		{"none", nil, own, true},
		{"partition missing", hdr(topic, "orders", off, "17"), own, true},
		{"partition malformed", hdr(topic, "orders", part, "five", off, "17"), own, true},
		{"partition negative", hdr(topic, "orders", part, "-1", off, "17"), own, true},
		{"partition over int32", hdr(topic, "orders", part, "2147483648", off, "17"), own, true},
		{"offset malformed", hdr(topic, "orders", part, "5", off, "17x"), own, true},
		{"offset negative", hdr(topic, "orders", part, "5", off, "-3"), own, true},
		{"topic missing", hdr(part, "5", off, "17"), own, true},
		{"topic empty", hdr(topic, "", part, "5", off, "17"), own, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &sarama.ConsumerMessage{Topic: own.topic, Partition: own.partition, Offset: own.offset, Value: []byte("v"),
				Headers: append(tc.headers, hdr("content-type", "application/json", dispatch.HeaderErrorKind, "permanent")...)}
			rec, problem := replayRecord(m)
			if got := (coords{rec.Topic, rec.Partition, rec.Offset}); got != tc.want {
				t.Errorf("coordinates %+v, want %+v", got, tc.want)
			}
			if (problem != "") != tc.problem {
				t.Errorf("problem %q, want one: %v", problem, tc.problem)
			}
			var keys []string
			for _, h := range rec.Headers {
				keys = append(keys, h.Key+"="+string(h.Value))
			}
			if want := []string{"content-type=application/json", HeaderReplay + "=1"}; !slices.Equal(keys, want) {
				t.Errorf("headers %q, want %q", keys, want)
			}
		})
	}
}

// A rebalance in the middle of a replay ends its group session, and the next
// session reads on from the committed offset. With a record left in place
// (here by --key), that offset lies before records the replay already
// delivered: the next session neither delivers nor counts them again. The
// delivery the rebalance cut short is not an error: the next session makes
// it again.
func TestReplayGoesOnAcrossARebalance(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	if rig.bridge.cfg.Kafka.Balance != "cooperative-sticky" {
		t.Fatalf("kafka.balance %q: the replay group must rebalance eagerly whatever the routes use", rig.bridge.cfg.Kafka.Balance)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...), kgo.DefaultProduceTopic(replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, kv := range [][2]string{{"x", "a"}, {"y", "b"}, {"x", "c"}, {"x", "d"}} {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Key: []byte(kv[0]), Value: []byte(kv[1])}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// At the first request for "d", another member joins the replay group,
	// which ends the replay's session, and leaves once it is in.
	sc, err := kafka.NewConfig(rig.bridge.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = replayStrategies() // as another replay's
	var once sync.Once
	rig.onBody = func(body string) {
		if body != "d" {
			return
		}
		once.Do(func() { joinReplayGroupOnce(t, rig.addrs, sc) })
	}

	key := "x"
	rep := rig.replayWith(t, ReplayOptions{Route: "orders-billing", Key: &key, Partition: -1, FromOffset: -1, ToOffset: -1})
	got := rig.received()
	// "d" was cut short by the rebalance, at least once, and then delivered.
	if len(got) < 4 || !slices.Equal(got[:3], []string{"a", "c", "d"}) || slices.ContainsFunc(got[3:], func(b string) bool { return b != "d" }) {
		t.Fatalf("receiver got %q, want a, c, then d at least twice; report %+v", got, rep)
	}
	if rep.Seen != 4 || rep.Replayed != 3 || rep.Delivered != 3 || rep.Skipped != 1 || rep.DeadLettered != 0 || rep.Committed[0] != 1 {
		t.Fatalf("report %+v, want 4 seen, 3 replayed and delivered, 1 left in place, committed 1 (before b)", rep)
	}
}

// joinOnly is a group member that says when it got into a session, and
// holds its claims until the session ends.
type joinOnly struct{ joined chan struct{} }

func (j *joinOnly) Setup(sarama.ConsumerGroupSession) error {
	select {
	case <-j.joined:
	default:
		close(j.joined)
	}
	return nil
}

func (j *joinOnly) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (j *joinOnly) ConsumeClaim(sess sarama.ConsumerGroupSession, _ sarama.ConsumerGroupClaim) error {
	<-sess.Context().Done()
	return nil
}

// joinReplayGroupOnce has another member join the replay group of route
// orders-billing, which rebalances it, and leave again once it joined.
func joinReplayGroupOnce(t *testing.T, addrs []string, sc *sarama.Config) {
	t.Helper()
	joined := make(chan struct{})
	other, err := sarama.NewConsumerGroup(addrs, ReplayGroup("hookbridge.orders-billing"), sc)
	if err != nil {
		t.Error(err)
		return
	}
	defer other.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = other.Consume(ctx, []string{replayDLQ}, &joinOnly{joined: joined}) }()
	select {
	case <-joined:
	case <-time.After(time.Minute): // a hang guard only
		t.Error("the other member never joined the replay group")
	}
}

// deadLetterInTransaction writes recs to the dead-letter topic in one
// committed transaction, so that the partition ends with its commit marker.
func (r *replayRig) deadLetterInTransaction(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addrs...), kgo.TransactionalID("replay-test"), kgo.DefaultProduceTopic(replayDLQ))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}
