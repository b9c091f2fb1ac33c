package kafka

import (
	"testing"
)

// granted reports whether w's token is waiting for it, without taking it.
func granted(w *budgetWait) bool { return len(w.ready) == 1 }

// acquire is tryAcquire with a new place in line.
func acquire(b *budget, size int64) (bool, *budgetWait) {
	w := newBudgetWait()
	return b.tryAcquire(size, w), w
}

func TestBudgetWakesOnlyWhoFitsInOrder(t *testing.T) {
	b := newBudget(2, 1<<20)
	for range 2 {
		if ok, _ := acquire(b, 10); !ok {
			t.Fatal("room for two records, but an acquire failed")
		}
	}
	var line []*budgetWait
	for range 3 {
		ok, w := acquire(b, 10)
		if ok {
			t.Fatal("a full budget admitted a record")
		}
		line = append(line, w)
	}
	b.release(10)
	if !granted(line[0]) || granted(line[1]) || granted(line[2]) {
		t.Fatal("one release must wake exactly the first in line")
	}
	// Someone arriving now queues behind those still waiting, even when room
	// frees up before them.
	ok, late := acquire(b, 10)
	if ok {
		t.Fatal("a newcomer overtook the line")
	}
	b.release(10)
	b.release(10)
	if !granted(line[1]) || !granted(line[2]) || granted(late) {
		t.Fatal("two releases must wake the next two in line, and not the newcomer")
	}
	if recs, byts := b.held(); recs != 2 || byts != 20 {
		t.Fatalf("held %d records, %d bytes; want 2, 20 (room taken for the woken)", recs, byts)
	}
}

func TestBudgetBytesAndOversizedRecord(t *testing.T) {
	b := newBudget(100, 100)
	if ok, _ := acquire(b, 60); !ok {
		t.Fatal("60 of 100 bytes refused")
	}
	ok, big := acquire(b, 500) // larger than the whole budget
	if ok {
		t.Fatal("a 500-byte record admitted next to another")
	}
	ok, small := acquire(b, 10)
	if ok {
		t.Fatal("a record admitted past one waiting in line")
	}
	b.release(60)
	if !granted(big) {
		t.Fatal("a record larger than the budget must be admitted once nothing is held")
	}
	if granted(small) {
		t.Fatal("a record admitted next to one that already exceeds the byte budget")
	}
	b.release(500)
	if !granted(small) {
		t.Fatal("the next in line was not woken")
	}
}

func TestBudgetCancel(t *testing.T) {
	b := newBudget(1, 1<<20)
	acquire(b, 1)
	_, first := acquire(b, 1)
	_, second := acquire(b, 1)
	b.cancel(first) // gives up before it was granted
	b.release(1)
	if !granted(second) {
		t.Fatal("a canceled wait kept its place in line")
	}
	_, third := acquire(b, 1)
	b.cancel(second) // granted but never used: the room goes to the next
	if !granted(third) {
		t.Fatal("room granted to a canceled wait was not passed on")
	}
	b.release(1)
	if recs, byts := b.held(); recs != 0 || byts != 0 {
		t.Fatalf("held %d records, %d bytes after everything was released", recs, byts)
	}
}

// A claim loop keeps one place in line for all its waits: after a granted
// wait whose token it took, and after a canceled one whose room was granted
// but not taken, it waits again from scratch, with no token left over.
func TestBudgetWaitReused(t *testing.T) {
	b := newBudget(1, 1<<20)
	w := newBudgetWait()
	if !b.tryAcquire(1, w) {
		t.Fatal("an empty budget refused a record")
	}
	if b.tryAcquire(1, w) {
		t.Fatal("a full budget admitted a record")
	}
	b.release(1)
	<-w.ready // granted; the record is admitted
	if b.tryAcquire(1, w) || granted(w) {
		t.Fatal("a full budget admitted the next record, or a token was left over")
	}
	b.release(1)
	if !granted(w) {
		t.Fatal("the waiting claim loop was not woken")
	}
	b.cancel(w) // granted but given back, its token not taken
	if recs, _ := b.held(); recs != 0 || granted(w) {
		t.Fatalf("after the cancel: %d records held, token left over: %v", recs, granted(w))
	}
	if !b.tryAcquire(1, w) {
		t.Fatal("the room given back was not free")
	}
	if b.tryAcquire(1, w) || granted(w) {
		t.Fatal("a full budget admitted a record, or a stale token woke the wait")
	}
}
