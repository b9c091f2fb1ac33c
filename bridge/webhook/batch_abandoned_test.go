package webhook

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// pendingLen is how many records wait in the open batch.
func pendingLen(tg *Target) int {
	tg.batch.mu.Lock()
	defer tg.batch.mu.Unlock()
	return len(tg.batch.pending)
}

// A record whose delivery was abandoned while it waited in the open batch
// (its context ended: the claim of its partition was revoked, or the
// session ended) is not sent afterwards: Deliver returned Canceled, the
// consumer released the partition and committed nothing past the record,
// and the partition's next owner delivers it (and the later records of its
// key) again. Before, it stayed in the open batch and went with the next
// records of other partitions, after the hand-over, so the receiver could
// get it after its key's later records.
func TestBatchAbandonedRecordLeavesTheOpenBatch(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.Batch = config.Batch{MaxMessages: 2, MaxWait: config.Duration(300 * time.Millisecond)}
	})
	revoked := &target.Record{Topic: "orders", Partition: 0, Offset: 7, Key: []byte("k"), Value: []byte("x")}
	kept := &target.Record{Topic: "orders", Partition: 1, Offset: 3, Key: []byte("j"), Value: []byte("y")}

	ctx, revoke := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := deliver(t, ctx, tg, revoked); done <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for pendingLen(tg) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the record never joined the open batch")
		}
		time.Sleep(time.Millisecond)
	}
	revoke() // the claim of partition 0 ends
	if err := <-done; target.KindOf(err) != target.Canceled {
		t.Fatalf("abandoned delivery: %v, want canceled", err)
	}
	// The partition is handed over; the route goes on with partition 1.
	if _, err := deliver(t, t.Context(), tg, kept); err != nil {
		t.Fatalf("kept record: %v", err)
	}
	var ids []string
	{
		var evs []batchEventIn
		if err := json.Unmarshal(next(t, reqs).body, &evs); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
	}
	for _, id := range ids {
		if id == revoked.ID() {
			t.Fatalf("request carried %v: the abandoned record %s was sent after its delivery returned canceled (its partition was handed over); want it withdrawn from the open batch", ids, revoked.ID())
		}
	}
}
