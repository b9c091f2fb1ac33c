package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// The tests in this file drive the claim loop, its lanes, the route's budget
// and the offset tracker through groupHandler.ConsumeClaim, with a session,
// claims and a group of their own instead of a broker: many records, random
// keys and sizes, random delivery times and stuck records, rebalances and a
// shutdown, checked against what the consumer promises.

// fakeGroup stands for the consumer group: only Pause and Resume are used by
// a claim.
type fakeGroup struct {
	sarama.ConsumerGroup
	mu     sync.Mutex
	paused map[topicPartition]bool
}

func (g *fakeGroup) set(m map[string][]int32, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			g.paused[topicPartition{topic, p}] = on
		}
	}
}

func (g *fakeGroup) Pause(m map[string][]int32)  { g.set(m, true) }
func (g *fakeGroup) Resume(m map[string][]int32) { g.set(m, false) }

// fakeSession is one group session. MarkOffset checks that a mark never
// passes a record not delivered yet.
type fakeSession struct {
	sarama.ConsumerGroupSession
	ctx    context.Context
	gen    atomic.Int32
	ledger *ledger
}

func (s *fakeSession) Context() context.Context { return s.ctx }
func (s *fakeSession) GenerationID() int32      { return s.gen.Load() }
func (s *fakeSession) Commit()                  {}
func (s *fakeSession) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.ledger.mark(partition, offset)
}

// fakeClaim feeds messages from its offset on; it closes Messages when
// stopped.
type fakeClaim struct {
	topic     string
	partition int32
	initial   int64
	msgs      chan *sarama.ConsumerMessage
}

func (c *fakeClaim) Topic() string                            { return c.topic }
func (c *fakeClaim) Partition() int32                         { return c.partition }
func (c *fakeClaim) InitialOffset() int64                     { return c.initial }
func (c *fakeClaim) HighWaterMarkOffset() int64               { return 0 }
func (c *fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// ledger is what every partition holds (its log), what was delivered, and
// what was marked; it records violations of the consumer's promises.
type ledger struct {
	mu        sync.Mutex
	log       map[int32][]*sarama.ConsumerMessage
	delivered map[int32]map[int64]int // offset -> deliveries
	lastKey   map[int32]map[string]int64
	marked    map[int32]int64
	inFlight  map[int32]int
	errs      []string
}

func newLedger() *ledger {
	return &ledger{log: make(map[int32][]*sarama.ConsumerMessage), delivered: make(map[int32]map[int64]int),
		lastKey: make(map[int32]map[string]int64), marked: make(map[int32]int64), inFlight: make(map[int32]int)}
}

func (l *ledger) errorf(format string, args ...any) {
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

// keyOf names a record's key as the consumer's lanes tell them apart.
func keyOf(k []byte) string {
	if k == nil {
		return "<nil>"
	}
	return "=" + string(k)
}

func (l *ledger) start(rec *target.Record, ordering string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[rec.Partition]++
	if ordering == config.OrderingNone {
		return
	}
	k := keyOf(rec.Key)
	if ordering == config.OrderingPartition {
		k = ""
	}
	if l.lastKey[rec.Partition] == nil {
		l.lastKey[rec.Partition] = make(map[string]int64)
	}
	if last, ok := l.lastKey[rec.Partition][k]; ok && rec.Offset <= last {
		l.errorf("partition %d lane %q: offset %d started after %d", rec.Partition, k, rec.Offset, last)
	}
	l.lastKey[rec.Partition][k] = rec.Offset
}

func (l *ledger) end(rec *target.Record, delivered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[rec.Partition]--
	if !delivered {
		return
	}
	if l.delivered[rec.Partition] == nil {
		l.delivered[rec.Partition] = make(map[int64]int)
	}
	l.delivered[rec.Partition][rec.Offset]++
}

// newSession forgets the lanes' order (a new session redelivers what was
// not marked).
func (l *ledger) newSession() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.lastKey)
}

func (l *ledger) mark(partition int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.log[partition] {
		if m.Offset >= offset {
			break
		}
		if l.delivered[partition][m.Offset] == 0 {
			l.errorf("partition %d marked %d, but offset %d was not delivered", partition, offset, m.Offset)
			break
		}
	}
	if offset > l.marked[partition] {
		l.marked[partition] = offset
	}
}

// randomTarget delivers after a random pause, a few after a long one; some
// records are reported stuck for a while first, as the dead-letter layer
// does when it cannot write them. It returns an error only when ctx ended.
type randomTarget struct {
	c        *Consumer
	ledger   *ledger
	ordering string
	stuckPct int
}

func (t *randomTarget) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	rec := d.Record
	t.ledger.start(rec, t.ordering)
	wait := func(d time.Duration) error {
		if d == 0 {
			runtime.Gosched()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if rand.IntN(100) < t.stuckPct {
		t.c.Stuck(ctx, rec, fmt.Errorf("cannot dead-letter"))
		if err := wait(time.Duration(rand.IntN(3000)) * time.Microsecond); err != nil {
			t.ledger.end(rec, false)
			return nil, err
		}
		t.c.Unstuck(ctx, rec)
	}
	pause := time.Duration(rand.IntN(4)) * 100 * time.Microsecond
	if rand.IntN(100) == 0 {
		pause = 2 * pauseAfter // long enough for the claim loops waiting for room to pause
	}
	if err := wait(pause); err != nil {
		t.ledger.end(rec, false)
		return nil, err
	}
	t.ledger.end(rec, true)
	return &target.Result{}, nil
}

// laneRig is a consumer with its workers running and no broker.
type laneRig struct {
	c       *Consumer
	tg      *randomTarget
	ledger  *ledger
	group   *fakeGroup
	stop    chan struct{}
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

func newLaneRig(t *testing.T, ordering string, concurrency int, maxBytes int64) *laneRig {
	t.Helper()
	route := config.Route{Name: "audit", Topics: []string{"t"}, Ordering: ordering, Concurrency: concurrency,
		MaxInFlightBytes: config.ByteSize(maxBytes)}
	r := &laneRig{ledger: newLedger(), group: &fakeGroup{paused: make(map[topicPartition]bool)}, stop: make(chan struct{})}
	r.tg = &randomTarget{ledger: r.ledger, ordering: ordering, stuckPct: 3}
	r.c = NewConsumer(ConsumerOptions{Route: route, Target: r.tg, Logger: slog.New(slog.DiscardHandler),
		ShutdownTimeout: time.Minute})
	r.tg.c = r.c
	hard, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	r.c.hardCtx = hard
	r.c.stop = r.stop
	r.c.group = r.group
	r.c.workersDone = make(chan struct{})
	for range concurrency {
		r.workers.Go(func() { r.c.work(r.c.workersDone) })
	}
	return r
}

// fillLog writes n records to each of partitions: keys among a few, nil and
// empty, values of random sizes, some larger than the route's byte budget.
func (r *laneRig) fillLog(partitions int32, n int, maxBytes int) {
	for p := range partitions {
		for i := range n {
			var key []byte
			switch k := rand.IntN(8); k {
			case 0: // null key
			case 1:
				key = []byte{}
			default:
				key = []byte(fmt.Sprintf("k%d", k))
			}
			size := rand.IntN(maxBytes / 8)
			if rand.IntN(200) == 0 {
				size = 2 * maxBytes
			}
			r.ledger.log[p] = append(r.ledger.log[p], &sarama.ConsumerMessage{Topic: "t", Partition: p,
				Offset: int64(3 * i), Key: key, Value: make([]byte, size)}) // gaps, as compaction leaves
		}
	}
}

// session runs one session's claims of partitions, from their marked
// offsets, until end tells it to stop: end gets the session's cancel and a
// function that revokes one claim cooperatively. It returns once every
// claim returned.
func (r *laneRig) session(t *testing.T, parent context.Context, partitions int32, end func(cancel func(), revoke func(int32))) {
	t.Helper()
	r.ledger.newSession()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sess := &fakeSession{ctx: ctx, ledger: r.ledger}
	sess.gen.Store(1)
	var claims sync.WaitGroup
	revokers := make(map[int32]chan struct{})
	for p := range partitions {
		r.ledger.mu.Lock()
		from := r.ledger.marked[p]
		var msgs []*sarama.ConsumerMessage
		for _, m := range r.ledger.log[p] {
			if m.Offset >= from {
				msgs = append(msgs, m)
			}
		}
		r.ledger.mu.Unlock()
		cl := &fakeClaim{topic: "t", partition: p, initial: from, msgs: make(chan *sarama.ConsumerMessage, 256)}
		revoke := make(chan struct{})
		revokers[p] = revoke
		handled := make(chan struct{})
		claims.Go(func() {
			defer close(handled)
			if err := (&groupHandler{c: r.c}).ConsumeClaim(sess, cl); err != nil {
				t.Error(err)
			}
			r.ledger.mu.Lock()
			if n := r.ledger.inFlight[p]; n != 0 {
				r.ledger.errorf("partition %d: its claim returned with %d deliveries running", p, n)
			}
			r.ledger.mu.Unlock()
		})
		claims.Go(func() {
			defer close(cl.msgs)
			for _, m := range msgs {
				select {
				case cl.msgs <- m:
				case <-ctx.Done():
					<-handled // sarama closes the messages after the claim returned
					return
				case <-revoke:
					return
				}
			}
			select {
			case <-ctx.Done():
				<-handled
			case <-revoke:
			}
		})
	}
	end(cancel, func(p int32) {
		sess.gen.Store(2) // sarama moves the generation on before it revokes
		close(revokers[p])
	})
	claims.Wait()
}

// close stops the workers, as Run does once every claim returned.
func (r *laneRig) close() {
	close(r.c.workersDone)
	r.workers.Wait()
	r.cancel()
}

func (r *laneRig) check(t *testing.T) {
	t.Helper()
	r.ledger.mu.Lock()
	defer r.ledger.mu.Unlock()
	for _, e := range r.ledger.errs {
		t.Error(e)
	}
	b := r.c.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.records != 0 || b.bytes != 0 || b.stuck != 0 || b.claims != 0 || len(b.waiting) != 0 {
		t.Errorf("budget after every claim ended: %d records, %d bytes, %d stuck, %d claims, %d waiting; want all 0",
			b.records, b.bytes, b.stuck, b.claims, len(b.waiting))
	}
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if len(r.c.parts) != 0 || len(r.c.stuck) != 0 || len(r.c.reasons) != 0 {
		t.Errorf("consumer after every claim ended: parts %v, stuck %v, reasons %v", r.c.parts, r.c.stuck, r.c.reasons)
	}
}

// waitDelivered waits until every record of the log was delivered.
func (r *laneRig) waitDelivered(t *testing.T, partitions int32) {
	t.Helper()
	waitFor(t, "every record delivered", func() bool {
		r.ledger.mu.Lock()
		defer r.ledger.mu.Unlock()
		for p := range partitions {
			for _, m := range r.ledger.log[p] {
				if r.ledger.delivered[p][m.Offset] == 0 {
					return false
				}
			}
		}
		return true
	}, func() string {
		recs, byts := r.c.budget.held()
		return fmt.Sprintf("budget holds %d records, %d bytes", recs, byts)
	})
}

// waitMarked waits until every partition marked past its last record.
func (r *laneRig) waitMarked(t *testing.T, partitions int32) {
	t.Helper()
	waitFor(t, "every partition marked to its end", func() bool {
		r.ledger.mu.Lock()
		defer r.ledger.mu.Unlock()
		for p := range partitions {
			log := r.ledger.log[p]
			if r.ledger.marked[p] != log[len(log)-1].Offset+1 {
				return false
			}
		}
		return true
	}, func() string {
		r.ledger.mu.Lock()
		defer r.ledger.mu.Unlock()
		return fmt.Sprintf("marked %v", r.ledger.marked)
	})
}

// The rigs of the tests below: lanePartitions partitions of 600 records each, a route of
// 4 workers and a budget of laneMaxBytes.
const lanePartitions, laneMaxBytes = 4, 8 << 10

// eachOrdering runs test for every ordering, on a rig with its log filled;
// before is the number of goroutines before the rig started.
func eachOrdering(t *testing.T, test func(t *testing.T, r *laneRig, before int)) {
	for _, ordering := range []string{config.OrderingKey, config.OrderingPartition, config.OrderingNone} {
		t.Run(ordering, func(t *testing.T) {
			before := runtime.NumGoroutine()
			r := newLaneRig(t, ordering, 4, laneMaxBytes)
			r.fillLog(lanePartitions, 600, laneMaxBytes)
			test(t, r, before)
		})
	}
}

// Every ordering, one session that delivers everything: each record is
// delivered once, in order per lane, the marks never pass a record not
// delivered, and the budget is back at zero.
func TestLanesDeliverEverythingInOrder(t *testing.T) {
	eachOrdering(t, func(t *testing.T, r *laneRig, _ int) {
		r.session(t, t.Context(), lanePartitions, func(cancel func(), _ func(int32)) {
			r.waitDelivered(t, lanePartitions)
			r.waitMarked(t, lanePartitions)
			cancel()
		})
		r.close()
		r.check(t)
		r.ledger.mu.Lock()
		defer r.ledger.mu.Unlock()
		for p, offs := range r.ledger.delivered {
			for off, n := range offs {
				if n != 1 {
					t.Errorf("partition %d offset %d delivered %d times in one session", p, off, n)
				}
			}
		}
	})
}

// Sessions that end while records are queued and in flight (eager and
// cooperative rebalances), then one that delivers the rest: the marks never
// pass a record not delivered, every record is delivered at last, and the
// budget and the goroutines come back to where they were.
func TestLanesAcrossRebalances(t *testing.T) {
	eachOrdering(t, func(t *testing.T, r *laneRig, before int) {
		for i := range 12 {
			r.session(t, t.Context(), lanePartitions, func(cancel func(), revoke func(int32)) {
				time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
				if i%2 == 1 {
					revoke(int32(i / 2 % lanePartitions))
				}
				cancel()
			})
		}
		r.session(t, t.Context(), lanePartitions, func(cancel func(), _ func(int32)) {
			r.waitDelivered(t, lanePartitions)
			r.waitMarked(t, lanePartitions)
			cancel()
		})
		r.close()
		r.check(t)
		waitFor(t, "the goroutines of the claims gone", func() bool { return runtime.NumGoroutine() <= before+1 },
			func() string { return fmt.Sprintf("%d goroutines, %d before", runtime.NumGoroutine(), before) })
	})
}

// A shutdown: the claims drain (what is started finishes), then return
// with no delivery running; the marks cover only what was delivered, and
// the budget is back at zero.
func TestLanesDrainOnShutdown(t *testing.T) {
	eachOrdering(t, func(t *testing.T, r *laneRig, _ int) {
		r.session(t, t.Context(), lanePartitions, func(cancel func(), _ func(int32)) {
			time.Sleep(time.Duration(2+rand.IntN(5)) * time.Millisecond)
			close(r.stop)
			cancel()
		})
		r.close()
		r.check(t)
	})
}
