package kafka

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestTrackerMarksContiguousPrefixOnly(t *testing.T) {
	tr := newTracker()
	now := time.Now()
	for _, o := range []int64{10, 11, 13, 14} { // 12 is a gap (compacted away)
		tr.add(o, now)
	}
	steps := []struct {
		done   int64
		mark   int64
		moved  bool
		remain int
	}{
		{11, 0, false, 4},
		{13, 0, false, 4},
		{10, 14, true, 1}, // 10, 11, 13 done: commit 14
		{99, 0, false, 1}, // unknown offset
		{14, 15, true, 0},
	}
	for i, s := range steps {
		mark, moved := tr.done(s.done)
		if moved != s.moved || (moved && mark != s.mark) {
			t.Fatalf("step %d: done(%d) = %d,%v; want %d,%v", i, s.done, mark, moved, s.mark, s.moved)
		}
		if _, n, _ := tr.state(); n != s.remain {
			t.Fatalf("step %d: %d pending, want %d", i, n, s.remain)
		}
	}
}

func TestTrackerRandomCompletionOrder(t *testing.T) {
	tr := newTracker()
	const n = 5000
	for o := int64(0); o < n; o++ {
		tr.add(o, time.Now())
	}
	order := rand.Perm(n)
	doneSet := make(map[int64]bool)
	var last int64 = -1
	for _, i := range order {
		doneSet[int64(i)] = true
		mark, moved := tr.done(int64(i))
		if !moved {
			continue
		}
		if mark <= last {
			t.Fatalf("commit offset went back from %d to %d", last, mark)
		}
		for o := int64(0); o < mark; o++ {
			if !doneSet[o] {
				t.Fatalf("commit offset %d passes unfinished offset %d", mark, o)
			}
		}
		last = mark
	}
	if last != n {
		t.Fatalf("final commit offset %d, want %d", last, n)
	}
}
