package kafka

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"weak"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// holdPartition0 holds every delivery of partition 0 until its context
// ends, as the breaker holds the records of a target that is down; the
// others are delivered at once.
type holdPartition0 struct{ started chan struct{} }

func (h *holdPartition0) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	if d.Record.Partition != 0 {
		return &target.Result{}, nil
	}
	select {
	case h.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// During an outage the workers all wait on records that stay; a claim
// revoked then drops the tasks of its lanes that wait for a worker, and
// gives their records' room back. Revocation after revocation, what it
// dropped must not pile up: neither its records (outside the route's
// byte budget) nor a goroutine per task that found the ready queue full.
func TestRevokedClaimsDuringAnOutageLeaveNothingBehind(t *testing.T) {
	const perClaim, revocations = 100, 10
	r := newLaneRig(t, config.OrderingNone, 1, 1<<20)
	hold := &holdPartition0{started: make(chan struct{}, 1)}
	r.c.opts.Target = hold
	sessCtx, endSession := context.WithCancel(t.Context())
	sess := &fakeSession{ctx: sessCtx, ledger: r.ledger}
	sess.gen.Store(1)

	stay := &fakeClaim{topic: "t", partition: 0, msgs: make(chan *sarama.ConsumerMessage, 1)}
	stay.msgs <- &sarama.ConsumerMessage{Topic: "t", Partition: 0, Offset: 0}
	stayDone := make(chan struct{})
	go func() {
		defer close(stayDone)
		_ = (&groupHandler{c: r.c}).ConsumeClaim(sess, stay)
	}()
	<-hold.started // the only worker now waits

	before := runtime.NumGoroutine()
	var values []weak.Pointer[[1024]byte]
	for i := range revocations {
		cl := &fakeClaim{topic: "t", partition: 1, initial: int64(i * perClaim),
			msgs: make(chan *sarama.ConsumerMessage, perClaim)}
		for j := range perClaim {
			v := make([]byte, 1024)
			values = append(values, weak.Make((*[1024]byte)(v)))
			cl.msgs <- &sarama.ConsumerMessage{Topic: "t", Partition: 1, Offset: int64(i*perClaim + j), Value: v}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = (&groupHandler{c: r.c}).ConsumeClaim(sess, cl)
		}()
		waitFor(t, "the claim's records admitted", func() bool {
			recs, _ := r.c.budget.held()
			return recs == 1+perClaim
		}, func() string {
			recs, byts := r.c.budget.held()
			return fmt.Sprintf("budget holds %d records, %d bytes", recs, byts)
		})
		sess.gen.Add(1) // a cooperative rebalance revokes the claim
		close(cl.msgs)
		<-done
	}
	if recs, _ := r.c.budget.held(); recs != 1 {
		t.Fatalf("budget holds %d records after the revocations; want 1, the one in flight", recs)
	}
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, v := range values {
		if v.Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of the %d records of revoked claims still in memory", kept, len(values))
	}
	if n := runtime.NumGoroutine(); n > before+8 {
		t.Errorf("%d goroutines after %d revocations, %d before", n, revocations, before)
	}

	endSession()
	<-stayDone
	r.close()
	r.check(t)
}
