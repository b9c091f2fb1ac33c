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
type tracker struct {
	mu      sync.Mutex
	pending []trackEntry // in offset order; pending[0] is the oldest unfinished
	marked  int64        // next offset to commit; -1 until something was done
}

type trackEntry struct {
	offset int64
	added  time.Time
	done   bool
}

func newTracker() *tracker { return &tracker{marked: -1} }

// add registers offset as in flight. Offsets must be added in increasing order.
func (t *tracker) add(offset int64, now time.Time) {
	t.mu.Lock()
	t.pending = append(t.pending, trackEntry{offset: offset, added: now})
	t.mu.Unlock()
}

// done marks offset terminal. It returns the new commit offset and true when
// the contiguous prefix advanced.
func (t *tracker) done(offset int64) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i].offset >= offset })
	if i == len(t.pending) || t.pending[i].offset != offset {
		return 0, false
	}
	t.pending[i].done = true
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	if n == 0 {
		return 0, false
	}
	t.marked = t.pending[n-1].offset + 1
	// Drop the finished prefix in place: the backing array is reused, so the
	// steady state allocates nothing.
	t.pending = t.pending[:copy(t.pending, t.pending[n:])]
	return t.marked, true
}

// state returns the next offset to commit (-1 if none yet), the number of
// unfinished records and the time the oldest unfinished record was added.
func (t *tracker) state() (marked int64, pending int, oldest time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) > 0 {
		oldest = t.pending[0].added
	}
	return t.marked, len(t.pending), oldest
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
