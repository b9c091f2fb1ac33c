package scenario

import (
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A replay killed outright (SIGKILL) in the middle loses nothing: the next
// replay delivers every record the killed one had not committed, and a
// record that failed again is in the dead-letter topic for the replay after
// it. What comes twice is what the killed replay handled after its last
// commit (docs/operations.md, "Dead-letter replay").
func TestDeadLetterReplayKilled(t *testing.T) {
	b := newBroker(t)
	source, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, source, 1)
	b.CreateTopic(t, dlq, 1)

	rcv := newReplayReceiver(t)

	b.Produce(t, dlq, deadLetters(source, "first", "bad", "second", "third"))
	// "second" gets no outcome until the kill (a webhook timeout is retried).
	cfg := b.config(t, routeSpec{Topic: source, DLQ: dlq, Group: group, URL: rcv.URL, MaxAttempts: 1 << 30})

	cmd, _, exited := startReplay(t, cfg)
	// Records are replayed one at a time: once "second" arrived, "first" was
	// delivered and "bad" written to the dead-letter topic anew.
	waitFor(t, time.Minute, `"second" at the receiver`, func() bool { return slices.Contains(rcv.received(), "second") })
	if n := len(b.readAll(t, dlq)); n != 5 {
		t.Fatalf("%d dead-letter records before the kill, want 5 (bad written anew)", n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	rcv.release()
	out := replayCmd(t, cfg)
	m := regexp.MustCompile(`committed \(partition:next offset\): 0:(\d+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the replay after the kill committed nothing:\n%s", out)
	}
	committed, _ := strconv.ParseInt(m[1], 10, 64)
	if got := b.Committed(t, group+".replay", dlq, 1)[0]; got != committed {
		t.Fatalf("replay group committed %d, the report says %d", got, committed)
	}
	for _, v := range []string{"first", "second", "third"} {
		if rcv.accepted(v) == 0 {
			t.Errorf("%q was never accepted; the receiver got %q", v, rcv.received())
		}
	}
	// Everything up to the commit was handled; what lies past it is "bad"
	// written anew by the second replay, for the next one: nothing is lost.
	dl := b.readAll(t, dlq)
	if committed < 5 || int64(len(dl)) <= committed {
		t.Fatalf("committed %d of %d dead-letter records; want at least the 5 there at the second replay's start, "+
			"and bad written anew after them", committed, len(dl))
	}
	for _, r := range dl[committed:] {
		if string(r.Value) != "bad" || headerOf(r.Headers, "hookbridge-replay") == "" {
			t.Fatalf("past the commit at %d: %q (hookbridge-replay %q); want only copies of bad",
				committed, r.Value, headerOf(r.Headers, "hookbridge-replay"))
		}
	}
}
