package scenario

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A key whose deliveries do not finish (its receiver holds them) must not
// take the whole route's budget from the other partitions: the records
// queued behind it hold their room until it moves, and without a share per
// claim its partition's claim loop kept taking the room the others gave
// back, until it held all of it and every other partition waited for the
// blocked key. Here the records of every other partition are delivered
// while the key is blocked; once it is released, every record is, in order
// per key, and committed.
func TestABlockedKeyLeavesRoomForTheOtherPartitions(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 3)
	rcv := newReceiver(t, nil)
	release := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("kafka-key") == "blocked" {
			select {
			case <-release:
			case <-req.Context().Done(): // the bridge's request timeout: it retries
				return
			}
		}
		rcv.serve(w, req)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release) // before front.Close, which waits for its handlers
		}
	})

	// Attempts enough that the blocked record never runs out of them: a
	// record that did would be stuck, and a stuck record's lane gives its
	// room back (a case of its own).
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: front.URL + "/hook",
		Concurrency: 8, MaxAttempts: 1000}))
	var recs []rec
	for i := range 400 {
		recs = append(recs, rec{Key: "blocked", Seq: i})
	}
	recs = append(recs, keyed(6000, 60)...)
	produced := b.produce(t, topic, recs)
	at := make(map[rec]int32, len(produced))
	for _, m := range produced {
		v, _ := m.Value.Encode()
		var r rec
		_ = json.Unmarshal(v, &r)
		at[r] = m.Partition
	}
	blockedAt := at[rec{Key: "blocked", Seq: 0}]
	var others []rec
	for r, partition := range at {
		if partition != blockedAt {
			others = append(others, r)
		}
	}
	if len(others) == 0 {
		t.Fatal("every key landed on one partition")
	}
	waitFor(t, 2*time.Minute, "every record of the other partitions delivered while a key is blocked", func() bool {
		got := map[rec]bool{}
		for _, d := range rcv.accepted() {
			got[rec{Key: d.Rec.Key, Seq: d.Rec.Seq}] = true
		}
		for _, r := range others {
			if !got[rec{Key: r.Key, Seq: r.Seq}] {
				return false
			}
		}
		return true
	})
	close(release)
	waitFor(t, 3*time.Minute, "every record delivered", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	checkDelivered(t, rcv, recs)
	assertCommittedToEnd(t, b, group, topic, produced)
}
