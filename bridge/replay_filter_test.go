package bridge

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
)

// Each filter of dlq replay compares with the dead-letter record's key, its
// error kind, or the original coordinates its hookbridge-error-* headers
// name; a record must match every filter set.
func TestReplayFilters(t *testing.T) {
	m := &sarama.ConsumerMessage{Topic: replayDLQ, Partition: 0, Offset: 9, Key: []byte("k1"), Value: []byte("v"),
		Headers: hdr(dispatch.HeaderErrorTopic, "orders", dispatch.HeaderErrorPartition, "3",
			dispatch.HeaderErrorOffset, "17", dispatch.HeaderErrorKind, "permanent")}
	rec, problem := replayRecord(m)
	if problem != "" {
		t.Fatalf("replayRecord: %s", problem)
	}
	any := ReplayOptions{Partition: -1, FromOffset: -1, ToOffset: -1}
	with := func(f func(*ReplayOptions)) ReplayOptions { o := any; f(&o); return o }
	key := func(k string) *string { return &k }
	for _, tc := range []struct {
		name string
		o    ReplayOptions
		want bool
	}{
		{"no filter", any, true},
		{"key", with(func(o *ReplayOptions) { o.Key = key("k1") }), true},
		{"other key", with(func(o *ReplayOptions) { o.Key = key("k2") }), false},
		{"empty key is a key", with(func(o *ReplayOptions) { o.Key = key("") }), false},
		{"error kind", with(func(o *ReplayOptions) { o.ErrorKind = "permanent" }), true},
		{"other error kind", with(func(o *ReplayOptions) { o.ErrorKind = "retryable" }), false},
		{"original topic", with(func(o *ReplayOptions) { o.Topic = "orders" }), true},
		{"other topic", with(func(o *ReplayOptions) { o.Topic = "payments" }), false},
		{"the dead-letter topic is not the original", with(func(o *ReplayOptions) { o.Topic = replayDLQ }), false},
		{"original partition", with(func(o *ReplayOptions) { o.Partition = 3 }), true},
		{"the dead letter's partition is not the original", with(func(o *ReplayOptions) { o.Partition = 0 }), false},
		{"range holding the offset", with(func(o *ReplayOptions) { o.FromOffset, o.ToOffset = 17, 17 }), true},
		{"range before the offset", with(func(o *ReplayOptions) { o.ToOffset = 16 }), false},
		{"range after the offset", with(func(o *ReplayOptions) { o.FromOffset = 18 }), false},
		{"all matching", with(func(o *ReplayOptions) {
			o.Key, o.ErrorKind, o.Topic, o.Partition, o.FromOffset = key("k1"), "permanent", "orders", 3, 10
		}), true},
		{"all but one matching", with(func(o *ReplayOptions) {
			o.Key, o.ErrorKind, o.Topic, o.Partition, o.FromOffset = key("k1"), "permanent", "payments", 3, 10
		}), false},
	} {
		if got := matchesReplay(m, rec, tc.o); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// hdr returns record headers of the names and values kv alternates.
func hdr(kv ...string) []*sarama.RecordHeader {
	var hs []*sarama.RecordHeader
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return hs
}
