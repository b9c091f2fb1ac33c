package kafka

import (
	"bytes"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// The producer is shared by every route and record: sarama packs the records
// of concurrent Produce calls for one partition into one batch, which the
// broker checks against message.max.bytes (1 MiB here) as a whole. A reply
// that fits alone, sent while other records' replies, or another route's
// too-large dead letter, are in flight, must not be refused with them: it
// would be dead-lettered as "too large" though it is not. Only the record
// too large alone is refused, and every other record is written once.
func TestProduceConcurrentSendsRefusedOnlyAlone(t *testing.T) {
	t.Parallel()
	p, client := newTestProducer(t, replyCluster(t))
	const calls = 8
	written := int64(0)
	for round := range 5 {
		// Call 0 of odd rounds is a 2 MiB record, too large alone (as
		// another route's dead letter); every other call is a 400 KiB
		// record, which fits.
		errs := make([]error, calls)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range calls {
			size := 400 << 10
			if round%2 == 1 && i == 0 {
				size = 2 << 20
			}
			wg.Go(func() {
				<-start
				errs[i] = p.Produce(t.Context(), []target.Output{{Topic: "orders.replies", Key: []byte("k"),
					Value: bytes.Repeat([]byte{'x'}, size)}})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if round%2 == 1 && i == 0 {
				if target.KindOf(err) != target.Permanent {
					t.Errorf("round %d: the 2 MiB record: %v (kind %v), want it refused for good", round, err, target.KindOf(err))
				}
				continue
			}
			if err != nil {
				t.Errorf("round %d, call %d: a 400 KiB record sent with others: %v (kind %v), want it written",
					round, i, err, target.KindOf(err))
				continue
			}
			written++
		}
	}
	if t.Failed() {
		return
	}
	if end, err := client.GetOffset("orders.replies", 0, sarama.OffsetNewest); err != nil || end != written {
		t.Errorf("end offset %d (%v), want %d: each record written once", end, err, written)
	}
}
