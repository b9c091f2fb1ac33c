package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	bkafka "github.com/hookbridge/hookbridge/bridge/kafka"
)

// broker is the Kafka the scenarios read from: an in-process kfake cluster,
// or a real one in which the harness owns one topic.
type broker struct {
	addrs []string
	topic string
	fake  *kfake.Cluster // nil for a real cluster
	extra []string       // topics created later (cold starts), deleted on close
}

func startBroker(ctx context.Context, opts Options) (*broker, error) {
	topic := "hookbridge-bench-" + strconv.FormatInt(time.Now().Unix(), 36) + "-" + strconv.Itoa(rand.IntN(1e6))
	if len(opts.Brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(opts.Partitions), topic))
		if err != nil {
			return nil, fmt.Errorf("bench: kfake: %w", err)
		}
		return &broker{addrs: c.ListenAddrs(), topic: topic, fake: c}, nil
	}
	b := &broker{addrs: opts.Brokers, topic: topic}
	if err := b.createTopic(ctx, b.topic, int32(opts.Partitions)); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *broker) describe() string {
	if b.fake != nil {
		return "kfake (in process, " + strings.Join(b.addrs, ",") + ")"
	}
	return "Kafka at " + strings.Join(b.addrs, ",")
}

func (b *broker) admin() (sarama.ClusterAdmin, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	a, err := sarama.NewClusterAdmin(b.addrs, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: kafka admin %v: %w", b.addrs, err)
	}
	return a, nil
}

func (b *broker) createTopic(ctx context.Context, topic string, partitions int32) error {
	a, err := b.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	if topic != b.topic {
		b.extra = append(b.extra, topic)
	}
	for {
		md, err := a.DescribeTopics([]string{topic})
		if err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for topic %s: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// close stops kfake, or deletes the topic from the real cluster.
func (b *broker) close() error {
	if b.fake != nil {
		b.fake.Close()
		return nil
	}
	a, err := b.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	var errs []error
	for _, t := range append([]string{b.topic}, b.extra...) {
		if err := a.DeleteTopic(t); err != nil {
			errs = append(errs, fmt.Errorf("bench: delete topic %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// committed returns the sum of the offsets group committed on the topic's
// partitions 0 to partitions-1 (a partition without a commit adds 0).
func (b *broker) committed(group string, partitions int) (int64, error) {
	a, err := b.admin()
	if err != nil {
		return 0, err
	}
	defer a.Close()
	ps := make([]int32, partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := a.ListConsumerGroupOffsets(group, map[string][]int32{b.topic: ps})
	if err != nil {
		return 0, fmt.Errorf("bench: committed offsets of %s: %w", group, err)
	}
	var sum int64
	for _, p := range ps {
		blk := resp.GetBlock(b.topic, p)
		if blk == nil {
			continue
		}
		if blk.Err != sarama.ErrNoError {
			return 0, fmt.Errorf("bench: committed offset of %s/%d: %w", group, p, blk.Err)
		}
		if blk.Offset > 0 {
			sum += blk.Offset
		}
	}
	return sum, nil
}

// syncProducer returns a producer that sends one record at a time and waits
// for the broker's acknowledgement, for the cold-start measurement.
func (b *broker) syncProducer() (sarama.SyncProducer, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	p, err := sarama.NewSyncProducer(b.addrs, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: producer: %w", err)
	}
	return p, nil
}

// preload produces opts.Records records: record i has key keyOf(i) and value
// value(i); keys are placed by the Java client's partitioner, as the bridge's
// own producer does.
func (b *broker) preload(ctx context.Context, opts Options) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Partitioner = bkafka.NewMurmur2Partitioner
	cfg.Producer.Flush.Bytes = 512 << 10
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.ChannelBufferSize = 4096
	p, err := sarama.NewAsyncProducer(b.addrs, cfg)
	if err != nil {
		return fmt.Errorf("bench: producer: %w", err)
	}
	acked := make(chan error, 1)
	go func() {
		var first error
		for range opts.Records {
			select {
			case <-p.Successes():
			case e := <-p.Errors():
				if first == nil {
					first = e
				}
			}
		}
		acked <- first
	}()
	var perr error
produce:
	for i := range opts.Records {
		m := &sarama.ProducerMessage{Topic: b.topic, Key: sarama.StringEncoder(keyOf(i, opts.Keys)),
			Value: sarama.ByteEncoder(value(i, opts.RecordSize))}
		select {
		case p.Input() <- m:
		case <-ctx.Done():
			perr = ctx.Err()
			break produce
		}
	}
	if perr == nil {
		select {
		case perr = <-acked:
		case <-ctx.Done():
			perr = ctx.Err()
		}
	}
	if err := p.Close(); err != nil && perr == nil {
		perr = err
	}
	if perr != nil {
		return fmt.Errorf("bench: pre-load: %w", perr)
	}
	return nil
}

// warmUp finds a group coordinator once, so that a real broker creates its
// offsets topic before the first timed scenario rather than during it.
func (b *broker) warmUp(ctx context.Context) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	client, err := sarama.NewClient(b.addrs, cfg)
	if err != nil {
		return fmt.Errorf("bench: kafka client: %w", err)
	}
	defer client.Close()
	for {
		_, err := client.Coordinator(b.topic + ".warm-up")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: finding a group coordinator: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// consumerConfig is the sarama configuration the bridge itself would use
// with default settings, so that (a) and (c) read the way the bridge reads.
func consumerConfig(addrs []string) (*sarama.Config, error) {
	c := config.Config{Kafka: config.Kafka{Brokers: addrs}}
	c.ApplyDefaults()
	sc, err := bkafka.NewConfig(c.Kafka)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sc.ClientID = "hookbridge-bench"
	return sc, nil
}

// ---- records -----------------------------------------------------------------

// Record i carries its index in its first indexDigits bytes, in decimal, so
// that every receiver can tell which record arrived.
const (
	indexDigits   = 10
	minRecordSize = 16
)

func keyOf(i, keys int) string { return "key-" + strconv.Itoa(i%keys) }

// value returns record i's value: its index, then filler up to size bytes.
func value(i, size int) []byte {
	v := make([]byte, size)
	s := strconv.Itoa(i)
	n := copy(v, strings.Repeat("0", indexDigits-len(s)))
	copy(v[n:], s)
	for j := indexDigits; j < size; j++ {
		v[j] = 'a' + byte(j%26)
	}
	v[indexDigits] = '|'
	return v
}

var errNotARecord = errors.New("not a bench record")

// indexOf parses the index out of a record value.
func indexOf(v []byte) (int, error) {
	if len(v) < indexDigits {
		return 0, errNotARecord
	}
	n := 0
	for _, c := range v[:indexDigits] {
		if c < '0' || c > '9' {
			return 0, errNotARecord
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
