package kafka

import (
	"math/rand/v2"
	"testing"
	"time"
)

// A record that does not finish (it waits minutes for its retry) while its
// partition goes on, delivering other keys' records or filtering records
// out, must not make the tracker keep an entry for each record done behind
// it: nothing bounds their number (the route's budget counts the records
// held, not those done), and a filter that passes few of a busy topic's
// records would grow it by hundreds of thousands of entries a second. The
// records done behind it are still counted, and the commit offset jumps
// past all of them once it finishes.
func TestTrackerHoldsLittleForRecordsDoneBehindASlowOne(t *testing.T) {
	tr := newTracker()
	now := time.Now()
	tr.add(0, now) // the slow record
	const behind = 100_000
	for o := int64(1); o <= behind; o++ {
		tr.add(o, now)
		if o%1000 == 500 {
			continue // another slow one, finished below
		}
		if _, moved := tr.done(o); moved {
			t.Fatalf("done(%d) moved the commit offset past the unfinished record 0", o)
		}
	}
	unfinished := 1 + behind/1000
	if n, most := len(tr.pending), 10*unfinished; n > most {
		t.Errorf("the tracker holds %d entries for %d unfinished records and %d done behind them, want at most %d",
			n, unfinished, behind+1-unfinished, most)
	}
	if _, n, _ := tr.state(); n != behind+1 {
		t.Errorf("state counts %d records not committed past, want %d", n, behind+1)
	}
	if mark, moved := tr.done(0); !moved || mark != 500 {
		t.Errorf("done(0) = %d,%v, want 500,true", mark, moved)
	}
	for o := int64(500); o <= behind; o += 1000 {
		tr.done(o)
	}
	if marked, n, _ := tr.state(); marked != behind+1 || n != 0 || len(tr.pending) != 0 {
		t.Errorf("after all finished: commit offset %d, %d records, %d entries; want %d, 0, 0", marked, n, len(tr.pending), behind+1)
	}
}

// Against a model: whatever the order records finish in, the commit offset
// is one past the longest done prefix, and the count of records not
// committed past is exact.
func TestTrackerCompactionKeepsTheCommitOffset(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		tr := newTracker()
		const n = 3000
		offsets := make([]int64, 0, n)
		next := int64(0)
		for range n {
			next += 1 + int64(rng.IntN(2)) // gaps, as after compaction
			offsets = append(offsets, next)
			tr.add(next, time.Now())
		}
		done := make([]bool, n)
		for k, i := range rng.Perm(n) {
			done[i] = true
			tr.done(offsets[i])
			prefix := 0
			for prefix < n && done[prefix] {
				prefix++
			}
			marked, records, _ := tr.state()
			want := int64(-1)
			if prefix > 0 {
				want = offsets[prefix-1] + 1
			}
			if marked != want || records != n-prefix {
				t.Fatalf("seed %d, after %d done: commit offset %d, %d records; want %d, %d", seed, k+1, marked, records, want, n-prefix)
			}
		}
	}
}
