package kafka

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franz-go's Kafka-compatible hasher is an independent implementation of the
// Java client's partitioner; ours must agree with it on every key.
func TestMurmur2MatchesJavaDefaultPartitioner(t *testing.T) {
	ref := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	p := NewMurmur2Partitioner("t")
	for i := 0; i < 2000; i++ {
		key := []byte(fmt.Sprintf("key-%d", i))
		if i%7 == 0 {
			key = key[:i%5] // include short and empty keys
		}
		for _, n := range []int32{1, 3, 6, 12, 100} {
			got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			want := int32(ref.Partition(&kgo.Record{Key: key}, int(n)))
			if got != want {
				t.Fatalf("key %q over %d partitions: got %d, want %d", key, n, got, want)
			}
		}
	}
}
