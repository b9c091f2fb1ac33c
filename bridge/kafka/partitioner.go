package kafka

import (
	"github.com/IBM/sarama"
)

// NewMurmur2Partitioner places keyed records exactly where the Java client's
// default partitioner would (murmur2 of the key, positive, modulo the partition
// count), so a dead-letter or reply topic keeps the same key-to-partition map
// as records produced by other Kafka clients. Null keys go round robin.
func NewMurmur2Partitioner(topic string) sarama.Partitioner {
	return &murmur2Partitioner{rr: sarama.NewRoundRobinPartitioner(topic)}
}

type murmur2Partitioner struct{ rr sarama.Partitioner }

func (p *murmur2Partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if m.Key == nil {
		return p.rr.Partition(m, n)
	}
	key, err := m.Key.Encode()
	if err != nil {
		return -1, err
	}
	return int32(murmur2(key)&0x7fffffff) % n, nil
}

func (p *murmur2Partitioner) RequiresConsistency() bool { return true }

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
