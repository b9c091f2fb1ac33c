package kafka

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A dead letter keeps what Kafka tells apart: a null value (a tombstone)
// from an empty one, a null key from an empty one, and a null header value
// from an empty one, as another client reads them back.
func TestProducerKeepsNullsApart(t *testing.T) {
	const topic = "nulls.dlq"
	addrs := startCluster(t, topic).ListenAddrs()
	p, _ := newTestProducer(t, addrs)
	outs := []target.Output{
		{Topic: topic, Key: nil, Value: nil, Headers: []target.Header{{Key: "h", Value: nil}}},
		{Topic: topic, Key: []byte{}, Value: []byte{}, Headers: []target.Header{{Key: "h", Value: []byte{}}}},
	}
	for _, o := range outs {
		if err := p.Produce(t.Context(), []target.Output{o}); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < len(outs) {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	hdr := func(r *kgo.Record) []byte {
		for _, h := range r.Headers {
			if h.Key == "h" {
				return h.Value
			}
		}
		t.Fatalf("record at %d has no header h", r.Offset)
		return nil
	}
	for i, r := range got {
		null := i == 0
		if (r.Key == nil) != null || (r.Value == nil) != null || (hdr(r) == nil) != null ||
			!bytes.Equal(r.Key, outs[i].Key) || !bytes.Equal(r.Value, outs[i].Value) {
			t.Errorf("record %d: key nil %t, value nil %t, header nil %t; want all %t", i, r.Key == nil, r.Value == nil, hdr(r) == nil, null)
		}
	}
}
