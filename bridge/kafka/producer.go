package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// Producer writes dead-letter and reply records. Produce returns nil only once
// every record was acknowledged by all in-sync replicas.
type Producer struct {
	sp sarama.SyncProducer
}

var _ dispatch.Producer = (*Producer)(nil)

// NewProducer connects a producer over client. The client stays owned by the
// caller.
func NewProducer(client sarama.Client) (*Producer, error) {
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	return &Producer{sp: sp}, nil
}

// Produce sends recs and waits for their acknowledgement or ctx. When ctx ends
// first the outcome is unknown and an error is returned; the caller retries,
// which may duplicate (at-least-once).
func (p *Producer) Produce(ctx context.Context, recs []target.Output) error {
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		m := &sarama.ProducerMessage{Topic: r.Topic, Value: sarama.ByteEncoder(r.Value)}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		m.Headers = make([]sarama.RecordHeader, len(r.Headers))
		for j, h := range r.Headers {
			m.Headers[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
		msgs[i] = m
	}
	done := make(chan error, 1)
	go func() { done <- p.sp.SendMessages(msgs) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka: produce to %s: %w", recs[0].Topic, flattenProducerErrors(err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: produce to %s: %w", recs[0].Topic, context.Cause(ctx))
	}
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.sp.Close() }

func flattenProducerErrors(err error) error {
	var pes sarama.ProducerErrors
	if errors.As(err, &pes) && len(pes) > 0 {
		return pes[0].Err
	}
	return err
}

// CheckTopics returns an error naming every topic in want that the cluster
// does not have. Hookbridge never creates topics.
func CheckTopics(client sarama.Client, want []string) error {
	if len(want) == 0 {
		return nil
	}
	if err := client.RefreshMetadata(); err != nil {
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	have, err := client.Topics()
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	var missing []string
	for _, t := range want {
		if !slices.Contains(have, t) && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kafka: topic(s) %v do not exist; create them first (hookbridge never creates topics)", missing)
	}
	return nil
}
