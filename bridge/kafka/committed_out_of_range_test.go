package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A group's committed offset that the broker no longer has when a claim
// starts (retention or kafka-delete-records removed the records after it
// while the group was away, or the partition's end is below it) resumes at
// the oldest record still there, whatever initial_offset says (with newest,
// sarama alone would jump to the end and skip every record still
// retained). sarama says nothing of it: the records between the committed
// offset and the log start were skipped with no log line at all (the
// warning that names them came only for a deletion while the claim read
// the partition). Now a warning names the offsets skipped, or the committed
// offset past the end, read again from the oldest record.
func TestCommittedOffsetOutOfRangeIsLogged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		initial   string
		committed int64
		deleteTo  int64
		want      []int64
		line      string
	}{
		{name: "below-log-start-oldest", initial: "oldest", committed: 2, deleteTo: 5, want: []int64{5, 6, 7, 8, 9},
			line: `level=WARN msg="records were deleted by the broker before the group read them (retention or kafka-delete-records ` +
				`moved the partition's log start past the group's committed offset); they are skipped: the partition is read from ` +
				`its oldest record" route=%[1]s group=hookbridge.%[1]s topic=%[1]s partition=0 from_offset=2 to_offset=4`},
		{name: "below-log-start-newest", initial: "newest", committed: 2, deleteTo: 5, want: []int64{5, 6, 7, 8, 9},
			line: `level=WARN msg="records were deleted by the broker before the group read them (retention or kafka-delete-records ` +
				`moved the partition's log start past the group's committed offset); they are skipped: the partition is read from ` +
				`its oldest record" route=%[1]s group=hookbridge.%[1]s topic=%[1]s partition=0 from_offset=2 to_offset=4`},
		{name: "past-the-end", initial: "oldest", committed: 50, want: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			line: `level=WARN msg="the group's committed offset is past the partition's end (the partition lost records, or the ` +
				`offset was set past its end); the partition is read again from its oldest record" route=%[1]s group=hookbridge.%[1]s ` +
				`topic=%[1]s partition=0 committed=50 latest=10 from_offset=0`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := "out-of-range-" + tc.name
			addrs := startCluster(t, topic).ListenAddrs()
			admin := newAdmin(t, addrs)
			var kvs []string
			for i := range 10 {
				kvs = append(kvs, "k", fmt.Sprint(i))
			}
			produce(t, addrs, topic, kvs...)
			route := testRoute(topic, topic)
			commitOffset(t, addrs, route.GroupID(), topic, tc.committed)
			if got := committedNow(admin, route.GroupID(), topic); got != tc.committed {
				t.Fatalf("committed %d, want %d", got, tc.committed)
			}
			if tc.deleteTo > 0 {
				if err := admin.DeleteRecords(topic, map[int32]int64{0: tc.deleteTo}); err != nil {
					t.Fatal(err)
				}
			}

			logs := &logBuffer{}
			tg := &offsetRecorder{}
			c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs,
				Sarama: groupConfigWith(t, config.Kafka{InitialOffset: tc.initial}), Target: tg,
				Logger: slog.New(slog.NewTextHandler(logs, nil)), ShutdownTimeout: time.Second})
			c.offsetsEvery = 100 * time.Millisecond
			startRun(t, c, patience)
			waitFor(t, fmt.Sprintf("offsets %v delivered", tc.want), func() bool { return slices.Equal(tg.seen(), tc.want) },
				func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
			waitFor(t, "offset 10 committed", func() bool { return committedNow(admin, route.GroupID(), topic) == 10 },
				func() string { return fmt.Sprintf("committed %d", committedNow(admin, route.GroupID(), topic)) })
			line := fmt.Sprintf(tc.line, topic)
			waitFor(t, "the warning", func() bool { return logs.contains(line) },
				func() string { return fmt.Sprintf("no log line %q; the log:\n%s", line, logs.String()) })
		})
	}
}

// What the committed offset past the end cost: the claim read the partition
// again from its oldest record, but sarama took none of its marks below the
// committed offset, so the group's offset stayed there. Once producers wrote
// past it, a restart resumed there, and the records between the partition's
// old end and that offset were never delivered.
func TestCommittedOffsetPastTheEndLosesNothingAcrossARestart(t *testing.T) {
	t.Parallel()
	const topic = "past-end-restart"
	addrs := startCluster(t, topic).ListenAddrs()
	admin := newAdmin(t, addrs)
	produceN(t, addrs, topic, 5)
	route := testRoute(topic, topic)
	commitOffset(t, addrs, route.GroupID(), topic, 20)

	tg := &offsetRecorder{}
	run := func() func() {
		c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: groupConfig(t), Target: tg,
			Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: time.Second})
		c.offsetsEvery = 100 * time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	stop := run()
	waitFor(t, "offsets 0 to 4 delivered", func() bool { return slices.Equal(tg.seen(), []int64{0, 1, 2, 3, 4}) },
		func() string { return fmt.Sprintf("delivered %v", tg.seen()) })
	waitFor(t, "offset 5 committed", func() bool { return committedNow(admin, route.GroupID(), topic) == 5 },
		func() string { return fmt.Sprintf("committed %d", committedNow(admin, route.GroupID(), topic)) })
	stop()

	produceN(t, addrs, topic, 25) // offsets 5 to 29: past the old committed offset
	stop = run()
	defer stop()
	var want []int64
	for i := range int64(30) {
		want = append(want, i)
	}
	waitFor(t, "offsets 0 to 29 delivered", func() bool { return slices.Equal(slices.Compact(tg.seen()), want) },
		func() string {
			return fmt.Sprintf("delivered %v, committed %d", slices.Compact(tg.seen()), committedNow(admin, route.GroupID(), topic))
		})
}
