package scenario

import (
	"fmt"

	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func replayCmd(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bridgeBin, append([]string{"dlq", "replay", "-c", cfg, "--route", "scenario"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dlq replay %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Round trip: records dead-lettered by a receiver bug are replayed once the
// receiver is fixed, with their original webhook-ids; a dry run changes
// nothing; a filtered replay leaves the rest in place; a record that fails
// again goes back to the dead-letter topic and nothing is lost.
func TestDeadLetterReplay(t *testing.T) {
	b := newBroker(t)
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 3)
	b.CreateTopic(t, dlq, 1)
	fixed := false
	var rcvMu = make(chan struct{}, 1)
	rcvMu <- struct{}{}
	rcv := newReceiver(t, func(d delivery, n int) int {
		<-rcvMu
		defer func() { rcvMu <- struct{}{} }()
		switch {
		case d.Rec.Tag == "forever":
			return 400
		case d.Rec.Tag == "bug" && !fixed:
			return 422
		}
		return 200
	})
	cfg := b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()})
	p := startBridge(t, cfg)
	recs := keyed(300, 3)
	recs[10].Tag, recs[20].Tag = "bug", "bug" // keys k1 and k2
	produced := b.produce(t, topic, recs)
	ids := map[string]string{} // key/seq -> original webhook-id
	for _, m := range produced {
		v, _ := m.Value.Encode()
		ids[string(v)] = fmt.Sprintf("%s-%d-%d", topic, m.Partition, m.Offset)
	}
	waitFor(t, time.Minute, "298 deliveries", func() bool { return rcv.uniqueAccepted() >= 298 })
	waitFor(t, time.Minute, "2 dead letters", func() bool { return len(b.readAll(t, dlq)) == 2 })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	replayGroup := group + ".replay"
	before := len(rcv.requests())

	out := replayCmd(t, cfg, "--dry-run")
	if strings.Count(out, "hookbridge-error-kind: permanent") != 2 || !strings.Contains(out, "would replay 2") {
		t.Fatalf("dry run output:\n%s", out)
	}
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != -1 {
		t.Fatalf("a dry run committed offset %d", got)
	}
	if len(rcv.requests()) != before {
		t.Fatal("a dry run delivered something")
	}

	<-rcvMu
	fixed = true
	rcvMu <- struct{}{}
	dl := b.readAll(t, dlq)
	firstKey := string(dl[0].Key)
	other := "k1"
	if firstKey == "k1" {
		other = "k2"
	}
	// Replaying only the second record leaves the first in place: nothing
	// is committed past it.
	out = replayCmd(t, cfg, "--key", other)
	if !strings.Contains(out, "replayed 1, 1 delivered") {
		t.Fatalf("filtered replay output:\n%s", out)
	}
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != -1 {
		t.Fatalf("filtered replay committed %d past a record it left in place", got)
	}
	out = replayCmd(t, cfg)
	if !strings.Contains(out, "replayed 2, 2 delivered, 0 dead-lettered again") {
		t.Fatalf("replay output:\n%s", out)
	}
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != 2 {
		t.Fatalf("replay group committed %d, want 2", got)
	}
	// Both reached the receiver under their original ids: a receiver that
	// dedupes on webhook-id sees each once. They carry a traceparent, as
	// every request of the bridge does.
	for _, r := range []rec{recs[10], recs[20]} {
		v := fmt.Sprintf(`{"key":"%s","seq":%d,"tag":"bug"}`, r.Key, r.Seq)
		found := false
		for _, d := range rcv.accepted() {
			if d.Rec == r && d.ID == ids[v] {
				found = true
				if d.Traceparent == "" {
					t.Errorf("replayed record %s/%d came without a traceparent", r.Key, r.Seq)
				}
			}
		}
		if !found {
			t.Fatalf("replayed record %s/%d not accepted under its original id %s", r.Key, r.Seq, ids[v])
		}
	}
	// A record that fails again goes back to the dead-letter topic.
	b.produce(t, topic, []rec{{Key: "k0", Seq: 100, Tag: "forever"}})
	p2 := startBridge(t, cfg)
	waitFor(t, time.Minute, "the third dead letter", func() bool { return len(b.readAll(t, dlq)) == 3 })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	out = replayCmd(t, cfg)
	if !strings.Contains(out, "replayed 1, 0 delivered, 1 dead-lettered again") {
		t.Fatalf("replay output:\n%s", out)
	}
	dl = b.readAll(t, dlq)
	if len(dl) != 4 {
		t.Fatalf("%d dead-letter records, want 4", len(dl))
	}
	last := dl[3]
	if headerOf(last.Headers, "hookbridge-replay") != "1" || headerOf(last.Headers, "hookbridge-error-status") != "400" ||
		headerOf(last.Headers, "hookbridge-error-topic") != topic {
		t.Fatalf("re-dead-lettered record headers: %v", last.Headers)
	}
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != 3 {
		t.Fatalf("replay group committed %d, want 3 (the re-produced record is for the next replay)", got)
	}
}

func headerOf(hs []*sarama.RecordHeader, key string) string {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}
