package kafka

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Records compressed with each codec Kafka has, one codec per partition and
// by two clients (franz-go writes raw snappy, sarama xerial-framed snappy),
// all reach the target byte for byte, and every partition commits to its end.
func TestConsumerReadsEveryCodec(t *testing.T) {
	const topic = "codecs"
	kgoCodecs := []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	saramaCodecs := []sarama.CompressionCodec{sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	parts := int32(len(kgoCodecs) + len(saramaCodecs))
	addrs := startClusterWith(t, topic, parts).ListenAddrs()
	value := func(p int32, i int) string { return fmt.Sprintf("p%d-%d-%s", p, i, strings.Repeat("abcdefgh", 4096)) }
	const perPartition = 5
	var want []string
	for p := range parts {
		for i := range perPartition {
			want = append(want, value(p, i))
		}
	}
	for i, codec := range kgoCodecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchCompression(codec),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for j := range perPartition {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i), Key: []byte("k"), Value: []byte(value(int32(i), j))})
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	for i, codec := range saramaCodecs {
		p := int32(len(kgoCodecs) + i)
		sc := plainConfig()
		sc.Producer.Compression = codec
		pr, err := sarama.NewSyncProducer(addrs, sc)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for j := range perPartition {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder("k"),
				Value: sarama.StringEncoder(value(p, j))})
		}
		if err := pr.SendMessages(msgs); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		_ = pr.Close()
	}
	route := testRoute("codecs", topic)
	route.MaxInFlightBytes = 64 << 20
	rec := &valueRecorder{}
	c, _ := runRoute(t, addrs, route, rec, &deadLetters{})
	admin := newAdmin(t, addrs)
	waitFor(t, "every record delivered", func() bool { return len(rec.seen()) >= len(want) },
		func() string {
			return fmt.Sprintf("%d of %d delivered; Ready() = %v", len(rec.seen()), len(want), c.Ready())
		})
	got := rec.seen()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %d records, not the %d produced byte for byte", len(got), len(want))
	}
	for p := range parts {
		waitFor(t, fmt.Sprintf("partition %d committed to its end", p), func() bool {
			return committedOf(t, admin, route.GroupID(), topic, p) == perPartition
		}, func() string { return fmt.Sprintf("committed %d", committedOf(t, admin, route.GroupID(), topic, p)) })
	}
}
