package kafka

import (
	"slices"
	"sync"
	"time"
)

// budget bounds the records and bytes a route holds (queued in lanes or being
// delivered). Claim loops that find it full wait in line, and are woken by
// refills: a release hands the room it frees to the longest-waiting claim
// loops that fit, and wakes only them, so one delivery ending does not wake
// every partition of the route.
//
// A refill waits until there is room for a few records: until the budget is
// down to its low-water mark (an eighth below the limit), or until the head
// of the line has waited refillDelay. A woken claim loop then admits records
// until the budget is full again without waiting, instead of being woken once
// per record, as it was when every release refilled: on a busy route the
// budget is full most of the time, and each wake-up costs the claim loop a
// park, the releasing worker a wake, and often an idle thread of the runtime
// a futex call. The workers are never short of records for it: at the
// low-water mark seven eighths of the budget, at least 3.5 times the route's
// concurrency, is still queued or in flight. The delay bounds the wait when
// most of the budget is held by records that do not finish (a lane retrying
// while its target is down) and the others finish too slowly to reach the
// mark.
//
// A record larger than the whole byte budget is admitted when its claim
// holds nothing else, and its bytes are held beside the budget (over): it
// never fits in the budget, and waiting until the route held nothing else
// made it, and every claim loop in line behind it, wait for the slowest
// record the route held: a key retrying for a long time, or a slow one, on
// any partition held up the whole route. Its claim holds it in memory while
// it waits anyway (see maxHeld), and the other claims keep their room. The
// bound on what the route holds is then: the byte budget, plus one such
// record per claim.
//
// A record is also admitted once nothing is held but stuck records (see
// fitsLocked): a stuck record may hold its room for good. The bound is then
// the stuck records plus that one record. There are fewer stuck records than
// workers (each is still being delivered), and a stuck record's partition is
// paused: it fetches nothing more, and the records queued behind the stuck
// one give their room back while it is stuck (partition.stickLane): they are
// what the partition had fetched.
//
// One claim holds at most its share of the budget: the budget divided among
// the claims that use it, and never less than minShare records. Without the
// share a partition whose records finish slowly (a slow key, a record
// waiting for its retry) would, record by record, take all of the room,
// since its records keep it while those of other partitions give it back at
// once, and every other partition would then go at its pace. A claim over
// its share waits, but not in the others' way: room goes to the first in
// line that is under its share. A claim holding nothing may always take
// room, so that a large record cannot wedge its partition.
type budget struct {
	mu                   sync.Mutex
	records, bytes       int64
	over                 int64 // bytes of records larger than maxBytes, held beside bytes
	stuck                int64 // of records, those reported stuck
	maxRecords, maxBytes int64
	lowRecords, lowBytes int64         // the low-water mark
	minShare             int64         // the least share of a claim, in records
	claims               int64         // the claims that use the budget (join, leave)
	waiting              []*budgetWait // first come, first served
	clock                func() time.Duration
}

// budgetWait is one claim loop's place in line, kept for all of its waits,
// and what its claim holds. ready receives one token once the room it asked
// for was taken on its behalf. A budgetWait is in line at most once at a
// time.
type budgetWait struct {
	size           int64
	since          time.Duration // when it got in line, on the budget's clock
	ready          chan struct{} // capacity 1
	granted        bool          // under budget.mu
	records, bytes int64         // held by its claim, under budget.mu
}

// refillDelay is how long the head of the line waits at most for the budget
// to reach its low-water mark, as long as records are released; a claim loop
// that waited longer than that asks for a refill itself (budget.nudge).
const refillDelay = time.Millisecond

func newBudgetWait() *budgetWait { return &budgetWait{ready: make(chan struct{}, 1)} }

// newBudget makes a budget of maxRecords records and maxBytes bytes, of
// which one claim holds at least minShare records (see budget).
func newBudget(maxRecords, maxBytes, minShare int64) *budget {
	start := time.Now()
	return &budget{maxRecords: maxRecords, maxBytes: maxBytes, minShare: max(minShare, 1),
		lowRecords: maxRecords - max(maxRecords/8, 1), lowBytes: maxBytes - maxBytes/8,
		clock: func() time.Duration { return time.Since(start) }}
}

// join counts a claim that uses the budget, and leave uncounts it once its
// claim loop stopped: the shares follow.
func (b *budget) join() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.claims++
}

func (b *budget) leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.claims--
	b.refillLocked(true) // the other claims' shares grew
}

// underShareLocked reports whether w's claim may take room for a record of
// size bytes as far as its share goes: when it holds nothing, or less than
// its share of records and of bytes.
func (b *budget) underShareLocked(w *budgetWait, size int64) bool {
	if w.records == 0 {
		return true
	}
	records := max(b.maxRecords/max(b.claims, 1), b.minShare)
	if records >= b.maxRecords {
		return true
	}
	// maxBytes*records/maxRecords, in two parts: the product overflows for
	// a byte budget set huge (to bound records only), and no claim of
	// several could then take a second record.
	bytes := b.maxBytes/b.maxRecords*records + b.maxBytes%b.maxRecords*records/b.maxRecords
	return w.records < records && w.bytes+size <= bytes
}

// readAheadBytes is what one claim loop may hold read ahead, in bytes, while
// it waits for room (see maxHeld): the byte budget divided among the claims
// that use it, so that a route's claims together read ahead at most as
// much again as the budget.
func (b *budget) readAheadBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxBytes / max(b.claims, 1)
}

// tryAcquire takes room for one record of size bytes. When it cannot (the
// budget is full, others under their share wait in line before it, or its
// claim is over its share) it returns false and puts w in line: w.ready gets
// its token once the room was taken for the caller, who must then either use
// it or give it back with cancel. A record larger
// than the whole byte budget is admitted when nothing but stuck records is
// held, so it can never wedge its partition.
func (b *budget) tryAcquire(size int64, w *budgetWait) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.firstInLineLocked() < 0 && b.fitsLocked(w, size) && b.underShareLocked(w, size) {
		b.takeLocked(w, size)
		return true
	}
	w.size, w.granted = size, false
	w.since = b.clock()
	b.waiting = append(b.waiting, w)
	return false
}

// cancel takes w out of line. Room already taken for w is released, and its
// token, if not received, is dropped, so w can wait again.
func (b *budget) cancel(w *budgetWait) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		w.granted = false
		b.giveLocked(w, w.size)
		select {
		case <-w.ready:
		default:
		}
	} else if i := slices.Index(b.waiting, w); i >= 0 {
		b.waiting = slices.Delete(b.waiting, i, i+1)
	}
	b.refillLocked(false)
}

// release gives back the room of a record of size bytes that w's claim
// held.
func (b *budget) release(w *budgetWait, size int64) {
	b.mu.Lock()
	b.giveLocked(w, size)
	b.refillLocked(false)
	b.mu.Unlock()
}

// nudge refills now if there is room for the head of the line, low-water
// mark or not: a claim loop calls it when it has waited long (the releases
// that would reach the mark may never come). It reports whether w was
// granted.
func (b *budget) nudge(w *budgetWait) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(true)
	return w.granted
}

// firstInLineLocked returns the place in line of the first waiter under its
// share, or -1: the ones over their share are in no one's way.
func (b *budget) firstInLineLocked() int {
	return slices.IndexFunc(b.waiting, func(w *budgetWait) bool { return b.underShareLocked(w, w.size) })
}

// refillLocked takes room for the waiters in line that are under their
// share while they fit, in order, and wakes them, once the budget is down to
// its low-water mark or the first of them has waited refillDelay (or at
// once, with now). A waiter over its share keeps its place.
func (b *budget) refillLocked(now bool) {
	first := b.firstInLineLocked()
	if first < 0 {
		return
	}
	if !now && (b.records > b.lowRecords || b.bytes > b.lowBytes) &&
		b.clock()-b.waiting[first].since < refillDelay {
		return
	}
	kept := b.waiting[:first]
	for i, w := range b.waiting[first:] {
		if !b.underShareLocked(w, w.size) {
			kept = append(kept, w)
			continue
		}
		if !b.fitsLocked(w, w.size) {
			// First come, first served: the ones behind wait too.
			kept = append(kept, b.waiting[first+i:]...)
			break
		}
		b.takeLocked(w, w.size)
		w.granted = true
		select {
		case w.ready <- struct{}{}:
		default: // a token already waits (cannot happen: w's last one was taken or dropped)
		}
	}
	clear(b.waiting[len(kept):])
	b.waiting = kept
}

// stick counts one record held as stuck: its room may never be released.
// The head of the line is refilled at once if it fits now.
func (b *budget) stick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stuck++
	b.refillLocked(true)
}

// unstick undoes stick, before the record's room is released (or once it is
// given up for good).
func (b *budget) unstick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stuck--
}

// fitsLocked reports whether a record of size bytes may be admitted for w's
// claim: when it fits, when it is larger than the whole byte budget and w's
// claim holds nothing (it is held beside the budget), or when nothing but
// stuck records is held (which never exceeds maxRecords: stuck records are
// fewer than the workers).
func (b *budget) fitsLocked(w *budgetWait, size int64) bool {
	if size > b.maxBytes && w.records == 0 && b.records < b.maxRecords {
		return true
	}
	return b.records == b.stuck || (b.records < b.maxRecords && b.bytes+size <= b.maxBytes)
}

func (b *budget) takeLocked(w *budgetWait, size int64) {
	b.records++
	if size > b.maxBytes {
		b.over += size
	} else {
		b.bytes += size
	}
	w.records++
	w.bytes += size
}

func (b *budget) giveLocked(w *budgetWait, size int64) {
	b.records--
	if size > b.maxBytes {
		b.over -= size
	} else {
		b.bytes -= size
	}
	w.records--
	w.bytes -= size
}

func (b *budget) held() (records, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes + b.over
}
