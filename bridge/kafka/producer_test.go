package kafka

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// tracedProducer starts an embedded broker with topic and a producer whose
// spans go to the returned recorder.
func tracedProducer(t *testing.T, topic string) (*Producer, sarama.Client, trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	emb, err := StartEmbedded("", 2, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	p, client := newTestProducer(t, emb.Addrs())
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	p.tracer = tp.Tracer("test")
	return p, client, tp.Tracer("test"), sr
}

// newTestProducer connects a producer with the bridge's settings, but for
// retries quick enough for tests, to the brokers at addrs.
func newTestProducer(t *testing.T, addrs []string) (*Producer, sarama.Client) {
	t.Helper()
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Retry.Max = 1
	sc.Producer.Retry.Backoff = 10 * time.Millisecond
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	return newProducerOn(t, addrs, sc)
}

// newProducerOn returns a Producer on a client of sc, closed with the test.
func newProducerOn(t *testing.T, addrs []string, sc *sarama.Config) (*Producer, sarama.Client) {
	t.Helper()
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	p, err := NewProducer(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, client
}

// readBack returns the record at partition/offset of topic.
func readBack(t *testing.T, client sarama.Client, topic string, partition int32, offset int64) *sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, partition, offset)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("no record at %s/%d@%d", topic, partition, offset)
		return nil
	}
}

func headerValues(m *sarama.ConsumerMessage, key string) []string {
	var vs []string
	for _, h := range m.Headers {
		if string(h.Key) == key {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestProduceSpansAndInjection(t *testing.T) {
	t.Parallel()
	const topic = "orders.dlq"
	p, client, tr, sr := tracedProducer(t, topic)
	ctx, parent := tr.Start(t.Context(), "process orders", trace.WithSpanKind(trace.SpanKindConsumer))
	outs := []target.Output{
		{Topic: topic, Key: []byte("customer-7"), Value: []byte("one"), Headers: []target.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "tracestate", Value: []byte("vendor=old")},
			{Key: "ce_traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
			{Key: "hookbridge-error-kind", Value: []byte("permanent")},
		}},
		{Topic: topic, Key: nil, Value: []byte("two")},
	}
	orig := []target.Header{}
	orig = append(orig, outs[0].Headers...)
	if err := p.Produce(ctx, outs); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	parent.End()

	var sends []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "send "+topic {
			sends = append(sends, s)
		}
	}
	if len(sends) != 2 {
		t.Fatalf("send spans = %d, want one per record (2)", len(sends))
	}
	// The output given to Produce is never modified.
	for i, h := range outs[0].Headers {
		if h.Key != orig[i].Key || string(h.Value) != string(orig[i].Value) {
			t.Fatalf("Produce modified the output's headers: %v", outs[0].Headers)
		}
	}
	for i, s := range sends {
		if s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("span %d kind = %v, want producer", i, s.SpanKind())
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %d parent = %v, want the span in ctx", i, s.Parent())
		}
		if s.Status().Code != codes.Unset {
			t.Errorf("span %d status = %+v, want unset", i, s.Status())
		}
		a := attrs(s)
		for k, v := range map[attribute.Key]attribute.Value{
			"messaging.system":           attribute.StringValue("kafka"),
			"messaging.operation.type":   attribute.StringValue("send"),
			"messaging.operation.name":   attribute.StringValue("send"),
			"messaging.destination.name": attribute.StringValue(topic),
		} {
			if a[k] != v {
				t.Errorf("span %d: %s = %v, want %v", i, k, a[k].String(), v.String())
			}
		}
		pid, off := a["messaging.destination.partition.id"], a["messaging.kafka.offset"]
		if pid.Type() != attribute.STRING || off.Type() != attribute.INT64 {
			t.Fatalf("span %d: partition id %v (%s), offset %v (%s); want a string and an int", i, pid.String(), pid.Type(), off.String(), off.Type())
		}
		partition, err := strconv.ParseInt(pid.AsString(), 10, 32)
		if err != nil {
			t.Fatalf("partition id %q: %v", pid.AsString(), err)
		}
		m := readBack(t, client, topic, int32(partition), off.AsInt64())
		want := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"
		if got := headerValues(m, "traceparent"); len(got) != 1 || got[0] != want {
			t.Errorf("record %q: traceparent headers = %q, want exactly [%q] (its send span)", m.Value, got, want)
		}
		if got := headerValues(m, "tracestate"); len(got) != 0 {
			t.Errorf("record %q: tracestate = %q, want none (the old one belonged to the old traceparent)", m.Value, got)
		}
		key, hasKey := a["messaging.kafka.message.key"]
		switch string(m.Value) {
		case "one":
			if !hasKey || key.AsString() != "customer-7" {
				t.Errorf("record one: key attribute = %v, want customer-7", key.String())
			}
			for _, k := range []string{"content-type", "ce_traceparent", "hookbridge-error-kind"} {
				if got := headerValues(m, k); len(got) != 1 {
					t.Errorf("record one: header %s = %q, want it kept once", k, got)
				}
			}
		case "two":
			if hasKey {
				t.Errorf("record two (null key): key attribute = %v, want absent", key.String())
			}
		default:
			t.Errorf("unexpected record %q", m.Value)
		}
	}
}

func TestProduceFailureSpan(t *testing.T) {
	t.Parallel()
	p, _, tr, sr := tracedProducer(t, "orders.dlq")
	ctx, parent := tr.Start(t.Context(), "process orders")
	defer parent.End()
	err := p.Produce(ctx, []target.Output{{Topic: "no-such-topic", Value: []byte("x")}})
	if err == nil {
		t.Fatal("Produce to a missing topic succeeded")
	}
	ended := sr.Ended()
	if len(ended) != 1 || ended[0].Name() != "send no-such-topic" {
		t.Fatalf("ended spans = %v, want one send span", ended)
	}
	s := ended[0]
	if s.Status().Code != codes.Error {
		t.Errorf("status = %+v, want error", s.Status())
	}
	if _, ok := attrs(s)["messaging.kafka.offset"]; ok {
		t.Errorf("a failed send has an offset attribute")
	}
}

// A record the broker refuses for what it is (over message.max.bytes) is a
// permanent failure: writing it again cannot succeed. A record for a topic
// that does not exist is not (the topic may be created); and it is not
// created by the write, even on a broker that allows it (Hookbridge never
// creates topics).
func TestProduceRefusedOrMissingTopic(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.replies"), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, client := newTestProducer(t, c.ListenAddrs())

	err = p.Produce(t.Context(), []target.Output{{Topic: "orders.replies", Value: make([]byte, 2<<20)}})
	if err == nil || target.KindOf(err) != target.Permanent {
		t.Errorf("a 2 MiB record (message.max.bytes 1 MiB): %v (kind %v), want a permanent failure", err, target.KindOf(err))
	}
	const typo = "orders.replys"
	err = p.Produce(t.Context(), []target.Output{{Topic: typo, Value: []byte("x")}})
	if err == nil || target.KindOf(err) != target.Retryable {
		t.Errorf("a record for a missing topic: %v (kind %v), want a retryable failure", err, target.KindOf(err))
	}
	if err := client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	if topics, _ := client.Topics(); slices.Contains(topics, typo) {
		t.Errorf("producing to %s created it: topics %v", typo, topics)
	}
}
