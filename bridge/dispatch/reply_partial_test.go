package dispatch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// countingProducer counts the calls to a Producer.
type countingProducer struct {
	dispatch.Producer
	calls atomic.Int32
}

func (p *countingProducer) Produce(ctx context.Context, recs []target.Output) error {
	p.calls.Add(1)
	return p.Producer.Produce(ctx, recs)
}

// A handler answers with an output to the reply topic and one to a topic
// that does not exist yet. The write of the second is retried until the
// topic exists (docs/plugins.md), and the first, acknowledged at the first
// try, is not written again: the reply topic used to get one more copy of it
// at every try, for as long as the other topic was missing.
func TestReplyRetryWritesOnlyTheOutputsNotAcknowledged(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.replies", "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, client := producerOn(t, c)
	prod := &countingProducer{Producer: p}

	res := &target.Result{Outputs: []target.Output{
		{Value: []byte("to the reply topic")},
		{Topic: "orders.later", Value: []byte("to a topic created later")},
	}}
	ev := &recorder{}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ch := start(ctx, replyChain(prod, ev, res), delivery(testRecord()))
	waitFor(t, "three tries of the reply write", func() bool { return prod.calls.Load() >= 3 })
	if err := c.CreateTopic("orders.later", 1, nil); err != nil {
		t.Fatal(err)
	}
	o := await(t, ch)
	if o.err != nil || o.res == nil {
		t.Fatalf("Deliver = %v, %v; want the result once both outputs are written", o.res, o.err)
	}
	if n := highWater(t, client, "orders.later"); n != 1 {
		t.Errorf("orders.later holds %d records, want 1", n)
	}
	if n := highWater(t, client, "orders.replies"); n != 1 {
		t.Errorf("orders.replies holds %d records after %d tries of the write, want 1: an acknowledged output was written again",
			n, prod.calls.Load())
	}
}
