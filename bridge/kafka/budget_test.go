package kafka

import (
	"testing"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestBudgetWakesOnlyWhoFitsInOrder(t *testing.T) {
	b := newBudget(2, 1<<20)
	for range 2 {
		if ok, _ := b.tryAcquire(10); !ok {
			t.Fatal("room for two records, but an acquire failed")
		}
	}
	var line []*budgetWait
	for range 3 {
		ok, w := b.tryAcquire(10)
		if ok || w == nil {
			t.Fatal("a full budget admitted a record")
		}
		line = append(line, w)
	}
	b.release(10)
	if !isClosed(line[0].ready) || isClosed(line[1].ready) || isClosed(line[2].ready) {
		t.Fatal("one release must wake exactly the first in line")
	}
	// Someone arriving now queues behind those still waiting, even when room
	// frees up before them.
	ok, late := b.tryAcquire(10)
	if ok {
		t.Fatal("a newcomer overtook the line")
	}
	b.release(10)
	b.release(10)
	if !isClosed(line[1].ready) || !isClosed(line[2].ready) || isClosed(late.ready) {
		t.Fatal("two releases must wake the next two in line, and not the newcomer")
	}
	if recs, byts := b.held(); recs != 2 || byts != 20 {
		t.Fatalf("held %d records, %d bytes; want 2, 20 (room taken for the woken)", recs, byts)
	}
}

func TestBudgetBytesAndOversizedRecord(t *testing.T) {
	b := newBudget(100, 100)
	if ok, _ := b.tryAcquire(60); !ok {
		t.Fatal("60 of 100 bytes refused")
	}
	ok, big := b.tryAcquire(500) // larger than the whole budget
	if ok {
		t.Fatal("a 500-byte record admitted next to another")
	}
	ok, small := b.tryAcquire(10)
	if ok {
		t.Fatal("a record admitted past one waiting in line")
	}
	b.release(60)
	if !isClosed(big.ready) {
		t.Fatal("a record larger than the budget must be admitted once nothing is held")
	}
	if isClosed(small.ready) {
		t.Fatal("a record admitted next to one that already exceeds the byte budget")
	}
	b.release(500)
	if !isClosed(small.ready) {
		t.Fatal("the next in line was not woken")
	}
}

func TestBudgetCancel(t *testing.T) {
	b := newBudget(1, 1<<20)
	b.tryAcquire(1)
	_, first := b.tryAcquire(1)
	_, second := b.tryAcquire(1)
	b.cancel(first) // gives up before it was granted
	b.release(1)
	if !isClosed(second.ready) {
		t.Fatal("a canceled wait kept its place in line")
	}
	_, third := b.tryAcquire(1)
	b.cancel(second) // granted but never used: the room goes to the next
	if !isClosed(third.ready) {
		t.Fatal("room granted to a canceled wait was not passed on")
	}
	b.release(1)
	if recs, byts := b.held(); recs != 0 || byts != 0 {
		t.Fatalf("held %d records, %d bytes after everything was released", recs, byts)
	}
}
