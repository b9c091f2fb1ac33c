package kafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) for demos
// and tests. It keeps everything in memory and is not for production.
type Embedded struct {
	c *kfake.Cluster
}

// StartEmbedded starts a one-node broker with topics created at partitions
// each. listen is "host:port" to bind, or "" for a random loopback port.
func StartEmbedded(listen string, partitions int, topics ...string) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topics...)}
	if listen != "" {
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("kafka: embedded listen %q: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("kafka: embedded listen %q: bad port", listen)
		}
		opts = append(opts, kfake.Ports(p))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded broker: %w", err)
	}
	return &Embedded{c: c}, nil
}

// CreateTopics creates those of topics the broker does not have, with
// partitions each, and returns their names: the topics a configuration
// reloaded into a running bridge names for the first time.
func (e *Embedded) CreateTopics(partitions int, topics ...string) ([]string, error) {
	var created []string
	for _, t := range topics {
		if e.c.TopicInfo(t) != nil {
			continue
		}
		if err := e.c.CreateTopic(t, int32(partitions), nil); err != nil {
			return created, fmt.Errorf("kafka: embedded broker: create topic %q: %w", t, err)
		}
		created = append(created, t)
	}
	return created, nil
}

// Addrs are the broker addresses to bootstrap from.
func (e *Embedded) Addrs() []string { return e.c.ListenAddrs() }

// Close stops the broker; everything it held is gone.
func (e *Embedded) Close() { e.c.Close() }
