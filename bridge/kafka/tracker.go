package kafka

import (
	"sort"
	"sync"
	"time"
)

// tracker records which offsets of one partition reached a terminal outcome and
// yields the offset to commit: one past the longest contiguous prefix of done
// records. Offsets are added in increasing order (they may have gaps, e.g. after
// compaction). It is safe for concurrent use.
//
// The records done behind an unfinished one are kept as runs, one entry each
// (see compact): what the tracker holds grows with the records not finished,
// which the route's budget bounds, not with those that finished behind a slow
// one. A record waiting minutes for its retry would otherwise keep an entry
// for every record its partition delivered or filtered out meanwhile, which
// nothing bounds: gigabytes for a filter that passes few of a busy topic's
// records.
type tracker struct {
	mu         sync.Mutex
	pending    []trackEntry // in offset order; pending[0] is the oldest unfinished
	records    int          // the records pending stands for
	unfinished int          // of them, those not done
	marked     int64        // next offset to commit; -1 until something was done
}

type trackEntry struct {
	offset int64 // of a run of done records, its last offset
	added  time.Time
	done   bool
	n      int // records the entry stands for: more than one for a run
}

func newTracker() *tracker { return &tracker{marked: -1} }

// add registers offset as in flight. Offsets must be added in increasing order.
func (t *tracker) add(offset int64, now time.Time) {
	t.mu.Lock()
	t.pending = append(t.pending, trackEntry{offset: offset, added: now, n: 1})
	t.records++
	t.unfinished++
	t.mu.Unlock()
}

// done marks offset terminal. It returns the new commit offset and true when
// the contiguous prefix advanced.
func (t *tracker) done(offset int64) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i].offset >= offset })
	if i == len(t.pending) || t.pending[i].offset != offset || t.pending[i].done {
		return 0, false
	}
	t.pending[i].done = true
	t.unfinished--
	if i > 0 {
		// Compacting once the entries are four times the records not
		// finished costs each record O(1), amortized.
		if len(t.pending) > 4*t.unfinished+compactAbove {
			t.compact()
		}
		return 0, false
	}
	n, records := 0, 0
	for n < len(t.pending) && t.pending[n].done {
		records += t.pending[n].n
		n++
	}
	t.marked = t.pending[n-1].offset + 1
	t.records -= records
	// Drop the finished prefix in place: the backing array is reused, so the
	// steady state allocates nothing.
	t.pending = t.pending[:copy(t.pending, t.pending[n:])]
	return t.marked, true
}

// compactAbove is how many entries beyond four per unfinished record the
// tracker holds before it compacts.
const compactAbove = 64

// compact merges each run of adjacent done entries into its last one: the
// prefix to commit ends at the last offset of a run, and no record of a run
// is looked up again.
func (t *tracker) compact() {
	out := t.pending[:0]
	for _, e := range t.pending {
		if k := len(out) - 1; e.done && k >= 0 && out[k].done {
			e.n += out[k].n
			out[k] = e
			continue
		}
		out = append(out, e)
	}
	clear(t.pending[len(out):])
	t.pending = out
}

// skip moves the next offset to commit up to offset when no record is in
// flight and offset lies past it: the offsets in between hold no record a
// consumer receives (a transaction's markers, an aborted transaction's
// records). It reports whether it moved.
func (t *tracker) skip(offset int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) > 0 || offset <= t.marked {
		return false
	}
	t.marked = offset
	return true
}

// state returns the next offset to commit (-1 if none yet), the number of
// records not committed past (unfinished, or done behind an unfinished one)
// and the time the oldest unfinished record was added.
func (t *tracker) state() (marked int64, pending int, oldest time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) > 0 {
		oldest = t.pending[0].added
	}
	return t.marked, t.records, oldest
}

// position returns the next offset to commit (-1 if none yet) and the offset
// of the oldest unfinished record (-1 if none).
func (t *tracker) position() (marked, first int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	first = -1
	if len(t.pending) > 0 {
		first = t.pending[0].offset
	}
	return t.marked, first
}
