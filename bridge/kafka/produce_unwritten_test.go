package kafka

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A send of which the broker acknowledged some records names the others,
// and only them, as unwritten: the caller writes those again (see
// dispatch's produce). Naming the acknowledged ones instead would write
// them twice and never the record that failed, whose source record is
// then acknowledged without it.
func TestProduceNamesOnlyTheRecordsNotAcknowledged(t *testing.T) {
	const topic = "orders.replies"
	addrs := startCluster(t, topic).ListenAddrs()
	p, _ := newTestProducer(t, addrs)
	outs := []target.Output{
		{Topic: topic, Value: []byte("a")},
		{Topic: "orders.missing", Value: []byte("b")}, // no such topic: never acknowledged
		{Topic: topic, Value: []byte("c")},
	}
	err := p.Produce(t.Context(), outs)
	pe, ok := errors.AsType[*dispatch.ProduceError](err)
	if !ok || !slices.Equal(pe.Unwritten, []int{1}) {
		t.Fatalf("Produce: %v (%#v); want a ProduceError naming record 1 alone as unwritten", err, pe)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < 2 {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("%s holds %q, want the acknowledged records a and c", topic, got)
	}
}

// Records with a null key go round robin (NewMurmur2Partitioner), not all
// to the partition of the empty key: a dead-letter topic of a route whose
// records have no key keeps its records spread over its partitions.
func TestProduceSpreadsNullKeysOverThePartitions(t *testing.T) {
	const topic = "nullkeys.dlq"
	addrs := startClusterWith(t, topic, 2).ListenAddrs()
	p, _ := newTestProducer(t, addrs)
	for _, v := range []string{"a", "b", "c", "d"} {
		if err := p.Produce(t.Context(), []target.Output{{Topic: topic, Key: nil, Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	partitions := map[int32]int{}
	for n := 0; n < 4; {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			if r.Key != nil {
				t.Errorf("record %q has key %q, want null", r.Value, r.Key)
			}
			partitions[r.Partition]++
			n++
		}
	}
	if len(partitions) != 2 {
		t.Errorf("records per partition %v, want the 4 null-key records on both partitions", partitions)
	}
}
