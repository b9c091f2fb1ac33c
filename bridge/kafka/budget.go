package kafka

import (
	"slices"
	"sync"
)

// budget bounds the records and bytes a route holds (queued in lanes or being
// delivered). Claim loops that find it full wait in line: a release hands the
// room it frees to the longest-waiting claim loops that fit, and wakes only
// them, so one delivery ending does not wake every partition of the route.
type budget struct {
	mu                   sync.Mutex
	records, bytes       int64
	maxRecords, maxBytes int64
	waiting              []*budgetWait // first come, first served
}

// budgetWait is one claim loop's place in line, kept for all of its waits
// (on a busy route the budget is full most of the time, so a claim loop waits
// about once per record). ready receives one token once the room it asked for
// was taken on its behalf. A budgetWait is in line at most once at a time.
type budgetWait struct {
	size    int64
	ready   chan struct{} // capacity 1
	granted bool          // under budget.mu
}

func newBudgetWait() *budgetWait { return &budgetWait{ready: make(chan struct{}, 1)} }

func newBudget(maxRecords, maxBytes int64) *budget {
	return &budget{maxRecords: maxRecords, maxBytes: maxBytes}
}

// tryAcquire takes room for one record of size bytes. When it cannot (the
// budget is full, or others wait in line before it) it returns false and puts
// w in line: w.ready gets its token once the room was taken for the caller,
// who must then either use it or give it back with cancel. A record larger
// than the whole byte budget is admitted when nothing else is held, so it can
// never wedge its partition.
func (b *budget) tryAcquire(size int64, w *budgetWait) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiting) == 0 && b.fitsLocked(size) {
		b.takeLocked(size)
		return true
	}
	w.size, w.granted = size, false
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
		b.records--
		b.bytes -= w.size
		select {
		case <-w.ready:
		default:
		}
	} else if i := slices.Index(b.waiting, w); i >= 0 {
		b.waiting = slices.Delete(b.waiting, i, i+1)
	}
	b.grantLocked()
}

func (b *budget) release(size int64) {
	b.mu.Lock()
	b.records--
	b.bytes -= size
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked takes room for the waiters at the head of the line while they
// fit, in order, and wakes them.
func (b *budget) grantLocked() {
	n := 0
	for n < len(b.waiting) && b.fitsLocked(b.waiting[n].size) {
		w := b.waiting[n]
		b.takeLocked(w.size)
		w.granted = true
		select {
		case w.ready <- struct{}{}:
		default: // a token already waits (cannot happen: w's last one was taken or dropped)
		}
		n++
	}
	if n > 0 {
		b.waiting = slices.Delete(b.waiting, 0, n)
	}
}

func (b *budget) fitsLocked(size int64) bool {
	return b.records == 0 || (b.records < b.maxRecords && b.bytes+size <= b.maxBytes)
}

func (b *budget) takeLocked(size int64) {
	b.records++
	b.bytes += size
}

func (b *budget) held() (records, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes
}
