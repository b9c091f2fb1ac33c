package bridge

// `hookbridge dlq replay` (Bridge.Replay): a hostile topic header, the
// record's own error headers, its timestamp, the report's counts and the
// --limit budget across a rebalance. Each of these tests failed before its
// fix.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// docs/operations.md, "Dead-letter replay": a record whose
// hookbridge-error-topic is "not a topic name" is replayed under the
// dead-letter record's own coordinates (before, only an empty topic was).
func TestReplayRecordIllegalTopicName(t *testing.T) {
	own := struct {
		topic     string
		partition int32
		offset    int64
	}{replayDLQ, 2, 40}
	for _, topic := range []string{
		"orders\r\nX-Evil: 1", // control characters: not a header value either
		"orders billing",      // a space
		"..",                  // Kafka refuses "." and ".."
		"orders/../x",         // '/'
		strings.Repeat("a", 250),
	} {
		t.Run(topic[:min(len(topic), 12)], func(t *testing.T) {
			m := &sarama.ConsumerMessage{Topic: own.topic, Partition: own.partition, Offset: own.offset, Value: []byte("v"),
				Headers: []*sarama.RecordHeader{
					{Key: []byte(dispatch.HeaderErrorTopic), Value: []byte(topic)},
					{Key: []byte(dispatch.HeaderErrorPartition), Value: []byte("0")},
					{Key: []byte(dispatch.HeaderErrorOffset), Value: []byte("7")},
				}}
			if err := config.CheckTopicName(topic); err == nil {
				t.Fatalf("%q is a legal topic name; the test is wrong", topic)
			}
			rec, problem := replayRecord(m)
			if rec.Topic != own.topic || rec.Partition != own.partition || rec.Offset != own.offset || problem == "" {
				t.Errorf("replayed as %s/%d@%d (problem %q); want the dead-letter record's own %s/%d@%d and a problem",
					rec.Topic, rec.Partition, rec.Offset, problem, own.topic, own.partition, own.offset)
			}
		})
	}
}

// A dead letter whose hookbridge-error-topic holds a CR/LF is delivered by a
// replay, under its own coordinates. Before, its kafka-topic and webhook-id
// header values were illegal, which the webhook target reports as a
// retryable failure: it went back to the dead-letter topic with the same
// unusable header, replay after replay.
func TestReplayIllegalTopicHeaderIsDelivered(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	cl, err := kgo.NewClient(kgo.SeedBrokers(rig.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Topic: replayDLQ, Value: []byte("hostile"), Headers: []kgo.RecordHeader{
		{Key: dispatch.HeaderErrorRoute, Value: []byte("orders-billing")},
		{Key: dispatch.HeaderErrorTopic, Value: []byte("orders\r\nX-Evil: 1")},
		{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
		{Key: dispatch.HeaderErrorOffset, Value: []byte("0")},
		{Key: dispatch.HeaderErrorKind, Value: []byte("permanent")},
	}}
	if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rep := rig.replay(t)
	if got := rig.received(); !slices.Equal(got, []string{"hostile"}) || rep.Delivered != 1 {
		t.Fatalf("receiver got %q, report %+v; want the record delivered once under %s-0-0 (the receiver answers 200)",
			got, rep, replayDLQ)
	}
}

// A record whose target accepted it but whose reply the broker refuses for
// good (1 MiB reply body: over the broker's message.max.bytes once framed) is
// dead-lettered. The replay report counts it once, as dead-lettered again
// (before: as delivered and dead-lettered, so the interrupted summary's
// "replayed - delivered - dead-lettered", records cut short, was off by one).
func TestReplayReportCountsReplyRefusedOnce(t *testing.T) {
	const replies = "orders.replies"
	big := strings.Repeat("r", 1<<20) // webhook.MaxResponseBody: captured whole
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, big)
	}))
	t.Cleanup(srv.Close)
	cfg := embeddedReplayRoute(t, srv.URL, replies)
	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(io.Discard, "json", "info")})

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: replayDLQ, Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: dispatch.HeaderErrorRoute, Value: []byte("orders-billing")},
		{Key: dispatch.HeaderErrorTopic, Value: []byte(replaySource)},
		{Key: dispatch.HeaderErrorPartition, Value: []byte("0")},
		{Key: dispatch.HeaderErrorOffset, Value: []byte("0")},
	}}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard only
	defer cancel()
	rep, err := b.Replay(ctx, ReplayOptions{Route: "orders-billing", Partition: -1, FromOffset: -1, ToOffset: -1})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if rep.DeadLettered != 1 {
		t.Fatalf("report %+v: want the record dead-lettered again (its reply was refused)", rep)
	}
	if rep.Replayed != 1 || rep.Delivered+rep.DeadLettered != rep.Replayed {
		t.Fatalf("report %+v: one record replayed, and it was delivered %d time(s) and dead-lettered %d time(s); "+
			"want delivered + dead-lettered again = replayed", rep, rep.Delivered, rep.DeadLettered)
	}
}

// A route that consumes another route's dead-letter topic receives records
// that carry the first route's hookbridge-error-* set as ordinary headers
// (headerValue's comment says so). When such a record is dead-lettered and
// then replayed, only the dead-lettering route's set is removed: the
// receiver gets the record it was first sent, the earlier set included
// (before, every hookbridge-error* header went, and a record that failed
// again lost them from the dead-letter topic for good).
func TestReplayKeepsTheOriginalRecordsErrorHeaders(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	// The original record (on orders.dlq, written by route A) ...
	original := []*sarama.RecordHeader{
		h("content-type", "application/json"),
		h(dispatch.HeaderErrorRoute, "route-a"),
		h(dispatch.HeaderErrorTopic, "orders"),
		h(dispatch.HeaderErrorPartition, "3"),
		h(dispatch.HeaderErrorOffset, "99"),
		h(dispatch.HeaderErrorMessage, "the first failure"),
	}
	// ... then route B's set, as deadLetterRecord appends it.
	b := []*sarama.RecordHeader{
		h(dispatch.HeaderErrorRoute, "route-b"),
		h(dispatch.HeaderErrorTopic, "orders.dlq"),
		h(dispatch.HeaderErrorPartition, "0"),
		h(dispatch.HeaderErrorOffset, "5"),
		h(dispatch.HeaderErrorKind, "permanent"),
		h(dispatch.HeaderErrorMessage, "the second failure"),
	}
	m := &sarama.ConsumerMessage{Topic: "b.dlq", Partition: 0, Offset: 1, Value: []byte("v"), Headers: append(slices.Clone(original), b...)}
	rec, problem := replayRecord(m)
	if problem != "" || rec.Topic != "orders.dlq" || rec.Offset != 5 {
		t.Fatalf("coordinates %s/%d@%d problem %q", rec.Topic, rec.Partition, rec.Offset, problem)
	}
	var got []string
	for _, x := range rec.Headers {
		got = append(got, x.Key+"="+string(x.Value))
	}
	var want []string
	for _, x := range original {
		want = append(want, string(x.Key)+"="+string(x.Value))
	}
	want = append(want, HeaderReplay+"=1")
	if !slices.Equal(got, want) {
		t.Fatalf("replayed record headers\n %q\nwant the original record's headers, then the replay count\n %q", got, want)
	}
}

// The webhook contract sends ce-time = the record's timestamp. A replayed
// record reaches the receiver with its own, which the dead letter carries in
// hookbridge-error-timestamp (its Kafka timestamp is when it was written);
// before, ce-time was when it was dead-lettered. A timestamp past year 9999,
// which RFC 3339 cannot write and the contract leaves out of ce-time, is
// carried as Unix milliseconds and left out again (it came back as the
// time the dead letter was written).
func TestReplayKeepsTheRecordTimestamp(t *testing.T) {
	t.Run("RFC 3339", func(t *testing.T) {
		eventTime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		replayWithTimestamp(t, eventTime, eventTime.Format(time.RFC3339Nano))
	})
	t.Run("past year 9999", func(t *testing.T) {
		replayWithTimestamp(t, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "")
	})
}

// replayWithTimestamp dead-letters a record of timestamp eventTime through a
// route's chain, replays it, and checks the ce-time the receiver got.
func replayWithTimestamp(t *testing.T, eventTime time.Time, want string) {
	var mu sync.Mutex
	var ceTimes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		ceTimes = append(ceTimes, r.Header.Get("ce-time"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	cfg := embeddedReplayRoute(t, srv.URL, "")
	r := cfg.Routes[0]

	// Dead-letter a record as the route's chain does: the target refuses it
	// for good, the DeadLetter layer writes it with the bridge's producer.
	sc, err := kafka.NewConfig(cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	prod, err := kafka.NewProducer(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	ev := &routeEvents{log: telemetry.NewLogger(io.Discard, "json", "info"), metrics: metrics.Route(r.Name, r.GroupID(), nil)}
	refuse := target.Func(func(context.Context, *target.Delivery) (*target.Result, error) {
		return nil, target.NewPermanent(errors.New("422"))
	})
	br := dispatch.NewBreaker(dispatch.BreakerSettings{Name: "x", FailureRatio: 1, MinRequests: 1000, OpenTimeout: time.Second})
	chain := buildChain(r, refuse, prod, ev, br)
	orig := &target.Record{Topic: replaySource, Partition: 0, Offset: 0, Key: []byte("k"), Value: []byte("v"), Timestamp: eventTime}
	if _, err := chain.Deliver(t.Context(), &target.Delivery{Route: r.Name, Record: orig, Attempt: 1}); err != nil {
		t.Fatalf("dead-lettering: %v", err)
	}

	b := New(cfg, Options{Version: "test", Logger: telemetry.NewLogger(io.Discard, "json", "info")})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard only
	defer cancel()
	rep, err := b.Replay(ctx, ReplayOptions{Route: r.Name, Partition: -1, FromOffset: -1, ToOffset: -1})
	if err != nil || rep.Delivered != 1 {
		t.Fatalf("Replay: %+v, %v", rep, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ceTimes) != 1 || ceTimes[0] != want {
		t.Fatalf("the replayed record came with ce-time %q; want %q, from the record's own timestamp %s", ceTimes, want, eventTime)
	}
}

// --limit with --rate across a rebalance: the limit's budget is taken before
// the rate limiter's wait, and a session that ends during that wait (a
// rebalance) gives it back, as one cut short during a delivery does. With
// --limit 2, a replay that a rebalance interrupts once still replays two
// records (before: one, the second left in place, although a rebalance does
// not end a replay).
func TestReplayLimitBudgetSurvivesARebalanceDuringTheRateWait(t *testing.T) {
	rig := newReplayRig(t, http.StatusOK, "oldest")
	rig.deadLetterOf(t, "orders-billing", "a", "b", "c")

	sc, err := kafka.NewConfig(rig.bridge.cfg.Kafka)
	if err != nil {
		t.Fatal(err)
	}
	sc.Consumer.Group.Rebalance.GroupStrategies = replayStrategies()
	var once sync.Once
	joinedOnce := make(chan struct{})
	// After "a" was answered, "b" waits for the rate limiter (20 s at 0.05
	// records/s); meanwhile another member joins the replay group, which ends
	// the session, and leaves once it is in.
	rig.onBody = func(body string) {
		if body != "a" {
			return
		}
		once.Do(func() {
			go func() {
				defer close(joinedOnce)
				joinReplayGroupOnce(t, rig.addrs, sc)
			}()
		})
	}
	rep := rig.replayWith(t, ReplayOptions{Route: "orders-billing", Limit: 2, Rate: 0.05, Partition: -1, FromOffset: -1, ToOffset: -1})
	select {
	case <-joinedOnce:
	case <-time.After(time.Minute):
	}
	got := rig.received()
	if rep.Replayed != 2 || rep.Skipped != 1 || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("receiver got %q, report %+v; want a and b replayed (--limit 2), c left in place", got, rep)
	}
}

// embeddedReplayRoute starts an embedded broker with the replay tests'
// topics (and reply, when set) and returns the configuration of route
// orders-billing on it: one attempt to url, dead letters to replayDLQ,
// replies to reply.
func embeddedReplayRoute(t *testing.T, url, reply string) *config.Config {
	t.Helper()
	topics := []string{replaySource, replayDLQ}
	if reply != "" {
		topics = append(topics, reply)
	}
	emb, err := kafka.StartEmbedded("", 1, topics...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: emb.Addrs(), InitialOffset: "oldest"},
		Routes: []config.Route{{Name: "orders-billing", Topics: []string{replaySource},
			Target:     config.RouteTarget{Webhook: &config.Webhook{URL: url}},
			Retry:      config.Retry{MaxAttempts: 1},
			DeadLetter: config.DeadLetter{Topic: replayDLQ},
			Reply:      config.Reply{Topic: reply}}},
	}
	cfg.ApplyDefaults()
	return cfg
}

// A record without a timestamp gets no hookbridge-error-timestamp in its
// dead-letter set; neither a header of that name that its producer wrote
// (before the set) nor the dead letter's own timestamp, when it was
// written, may become the replayed record's time.
func TestReplayIgnoresATimestampHeaderBeforeTheSet(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	written := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	m := &sarama.ConsumerMessage{Topic: "orders.dlq", Offset: 1, Value: []byte("v"), Timestamp: written, Headers: []*sarama.RecordHeader{
		h(dispatch.HeaderErrorTimestamp, "1999-01-01T00:00:00Z"), // the producer's
		h(dispatch.HeaderErrorRoute, "orders"),
		h(dispatch.HeaderErrorTopic, "orders"),
		h(dispatch.HeaderErrorPartition, "0"),
		h(dispatch.HeaderErrorOffset, "7"),
	}}
	rec, problem := replayRecord(m)
	if problem != "" {
		t.Fatal(problem)
	}
	if !rec.Timestamp.IsZero() {
		t.Errorf("replayed record's timestamp %v, want none: neither the forged header's nor the dead letter's own %v", rec.Timestamp, written)
	}
	// With the set's own header, that one is the record's time.
	own := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	m.Headers = append(m.Headers, h(dispatch.HeaderErrorTimestamp, own.Format(time.RFC3339Nano)))
	if rec, _ = replayRecord(m); !rec.Timestamp.Equal(own) {
		t.Errorf("replayed record's timestamp %v, want %v from the set", rec.Timestamp, own)
	}
}

// A record without a timestamp (Kafka's -1, which the client reads as
// none) goes to its receiver without ce-time, and its dead letter carries
// no hookbridge-error-timestamp. Its replay sent it with ce-time = the time
// the dead letter was written (the dead letter's own Kafka timestamp), a
// time the record never had; dead-lettered again, that time became its
// hookbridge-error-timestamp for good.
func TestReplayOfARecordWithoutTimestampSendsNoTime(t *testing.T) {
	replayWithTimestamp(t, time.Time{}, "")
}
