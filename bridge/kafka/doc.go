// Package kafka is the bridge's Kafka side, built on github.com/IBM/sarama: one
// consumer group per route whose claim loops feed ordering lanes and mark
// offsets only through a per-partition tracker, the producer that writes
// dead-letter and reply records, and the embedded broker used by the demo and
// tests.
package kafka
