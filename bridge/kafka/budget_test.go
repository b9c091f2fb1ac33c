package kafka

import (
	"math"
	"testing"
	"time"
)

// granted reports whether w's token is waiting for it, without taking it.
func granted(w *budgetWait) bool { return len(w.ready) == 1 }

// anyone stands for the claim whose record is released, in the tests where
// no claim joined the budget (and shares do not apply).
var anyone = newBudgetWait()

// acquire is tryAcquire with a new place in line.
func acquire(b *budget, size int64) (bool, *budgetWait) {
	w := newBudgetWait()
	return b.tryAcquire(size, w), w
}

func TestBudgetWakesOnlyWhoFitsInOrder(t *testing.T) {
	b := newBudget(2, 1<<20, 1)
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
	b.release(anyone, 10)
	if !granted(line[0]) || granted(line[1]) || granted(line[2]) {
		t.Fatal("one release must wake exactly the first in line")
	}
	// Someone arriving now queues behind those still waiting, even when room
	// frees up before them.
	ok, late := acquire(b, 10)
	if ok {
		t.Fatal("a newcomer overtook the line")
	}
	b.release(anyone, 10)
	b.release(anyone, 10)
	if !granted(line[1]) || !granted(line[2]) || granted(late) {
		t.Fatal("two releases must wake the next two in line, and not the newcomer")
	}
	if recs, byts := b.held(); recs != 2 || byts != 20 {
		t.Fatalf("held %d records, %d bytes; want 2, 20 (room taken for the woken)", recs, byts)
	}
}

// A record larger than the whole byte budget is admitted when its claim
// holds nothing else, at once, beside the budget: it does not wait for the
// route's other records, and they keep their room. A claim that holds
// records takes one only once they are released.
func TestBudgetBytesAndOversizedRecord(t *testing.T) {
	b := newBudget(100, 100, 1)
	if ok, _ := acquire(b, 60); !ok {
		t.Fatal("60 of 100 bytes refused")
	}
	ok, big := acquire(b, 500) // larger than the whole budget
	if !ok {
		t.Fatal("a 500-byte record of a claim holding nothing waits for another claim's record")
	}
	if ok, _ := acquire(b, 40); !ok {
		t.Fatal("a record that fits the budget waits for one held beside it")
	}
	ok, small := acquire(b, 10)
	if ok {
		t.Fatal("a record admitted past the byte budget")
	}
	b.cancel(small)
	if recs, byts := b.held(); recs != 3 || byts != 600 {
		t.Fatalf("held %d records, %d bytes; want 3, 600", recs, byts)
	}
	if ok := b.tryAcquire(500, big); ok || granted(big) {
		t.Fatal("a second record larger than the budget admitted for a claim that holds one")
	}
	b.release(big, 500)
	if !b.nudge(big) {
		t.Fatal("the claim's next large record waits although it holds nothing")
	}
}

func TestBudgetCancel(t *testing.T) {
	b := newBudget(1, 1<<20, 1)
	acquire(b, 1)
	_, first := acquire(b, 1)
	_, second := acquire(b, 1)
	b.cancel(first) // gives up before it was granted
	b.release(anyone, 1)
	if !granted(second) {
		t.Fatal("a canceled wait kept its place in line")
	}
	_, third := acquire(b, 1)
	b.cancel(second) // granted but never used: the room goes to the next
	if !granted(third) {
		t.Fatal("room granted to a canceled wait was not passed on")
	}
	b.release(anyone, 1)
	if recs, byts := b.held(); recs != 0 || byts != 0 {
		t.Fatalf("held %d records, %d bytes after everything was released", recs, byts)
	}
}

// A claim loop keeps one place in line for all its waits: after a granted
// wait whose token it took, and after a canceled one whose room was granted
// but not taken, it waits again from scratch, with no token left over.
func TestBudgetWaitReused(t *testing.T) {
	b := newBudget(1, 1<<20, 1)
	w := newBudgetWait()
	if !b.tryAcquire(1, w) {
		t.Fatal("an empty budget refused a record")
	}
	if b.tryAcquire(1, w) {
		t.Fatal("a full budget admitted a record")
	}
	b.release(anyone, 1)
	<-w.ready // granted; the record is admitted
	if b.tryAcquire(1, w) || granted(w) {
		t.Fatal("a full budget admitted the next record, or a token was left over")
	}
	b.release(anyone, 1)
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

// fakeClock makes b's clock read *now.
func fakeClock(b *budget, now *time.Duration) { b.clock = func() time.Duration { return *now } }

// fill takes every record of b's budget.
func fill(t *testing.T, b *budget) {
	t.Helper()
	for range b.maxRecords {
		if ok, _ := acquire(b, 1); !ok {
			t.Fatal("an acquire failed before the budget was full")
		}
	}
}

// A release from a full budget refills only once the budget is down to its
// low-water mark, an eighth below the limit, and then grants every waiter
// that fits, in order.
func TestBudgetRefillsAtLowWaterMark(t *testing.T) {
	b := newBudget(16, 1<<20, 1)
	var now time.Duration
	fakeClock(b, &now)
	fill(t, b)
	_, first := acquire(b, 1)
	_, second := acquire(b, 1)
	b.release(anyone, 1) // 15 held: above the mark of 14
	if granted(first) || granted(second) {
		t.Fatal("a refill above the low-water mark")
	}
	b.release(anyone, 1) // 14 held
	if !granted(first) || !granted(second) {
		t.Fatal("the budget reached its low-water mark, but the line was not refilled")
	}
	if recs, _ := b.held(); recs != 16 {
		t.Fatalf("held %d records after the refill; want 16", recs)
	}
	// A newcomer takes the room left at once, while no one waits.
	b.release(anyone, 1)
	if ok, _ := acquire(b, 1); !ok {
		t.Fatal("room free and no one in line, but an acquire waited")
	}
}

// The byte budget has a low-water mark of its own.
func TestBudgetRefillsAtLowWaterMarkOfBytes(t *testing.T) {
	b := newBudget(100, 800, 1) // mark: 700 bytes
	var now time.Duration
	fakeClock(b, &now)
	for range 8 {
		if ok, _ := acquire(b, 100); !ok {
			t.Fatal("room for eight records of 100 bytes, but an acquire failed")
		}
	}
	_, w := acquire(b, 50)
	b.release(anyone, 50) // 750 bytes
	if granted(w) {
		t.Fatal("a refill above the low-water mark of bytes")
	}
	b.release(anyone, 50) // 700 bytes
	if !granted(w) {
		t.Fatal("the byte budget reached its low-water mark, but the line was not refilled")
	}
}

// Releases that do not reach the mark (most of the budget held by records
// that do not finish) still refill once the head of the line has waited
// refillDelay, and a claim loop that waited long gets a refill on demand.
func TestBudgetRefillsAfterDelayAndOnNudge(t *testing.T) {
	b := newBudget(64, 1<<20, 1) // mark: 56 records
	var now time.Duration
	fakeClock(b, &now)
	fill(t, b)
	_, w := acquire(b, 1)
	now = refillDelay / 2
	b.release(anyone, 1)
	if granted(w) {
		t.Fatal("refilled before the head of the line waited refillDelay")
	}
	now = refillDelay
	b.release(anyone, 1)
	if !granted(w) {
		t.Fatal("the head of the line waited refillDelay and room was released, but it was not woken")
	}
	<-w.ready

	// The releases stop with room left above the mark: only a nudge refills.
	if ok, _ := acquire(b, 1); !ok {
		t.Fatal("room free and no one in line, but an acquire waited")
	}
	ok, w2 := acquire(b, 1)
	if ok {
		t.Fatal("a full budget admitted a record")
	}
	if b.nudge(w2) {
		t.Fatal("a nudge granted room in a full budget")
	}
	b.release(anyone, 1)
	if granted(w2) {
		t.Fatal("refilled above the mark before refillDelay")
	}
	if !b.nudge(w2) || !granted(w2) {
		t.Fatal("a nudge with room free did not grant it")
	}
	if recs, _ := b.held(); recs != 64 {
		t.Fatalf("held %d records; want 64", recs)
	}
}

// A stuck record may never be released: a record larger than the whole byte
// budget, of a claim that holds records, waits for them; a record that does
// not fit next to the route's others is admitted as soon as they are all
// reported stuck. Records behind it wait their turn as usual.
func TestBudgetOversizedRecordNextToStuckRecords(t *testing.T) {
	b := newBudget(100, 100, 1)
	w := newBudgetWait()
	if !b.tryAcquire(60, w) {
		t.Fatal("60 of 100 bytes refused")
	}
	if b.tryAcquire(500, w) {
		t.Fatal("a 500-byte record admitted for a claim that holds a record not stuck")
	}
	b.cancel(w)
	ok, large := acquire(b, 90)
	if ok {
		t.Fatal("a 90-byte record admitted next to 60 bytes not stuck")
	}
	b.stick() // the 60-byte record
	if !granted(large) {
		t.Fatal("nothing held but a stuck record, yet the record that does not fit waits")
	}
	ok, small := acquire(b, 10)
	if ok || granted(small) {
		t.Fatal("a record admitted next to a stuck one and one that already fills the byte budget")
	}
	b.release(anyone, 90)
	if !granted(small) {
		t.Fatal("the next in line was not woken once only the stuck record was held")
	}
	b.release(anyone, 10)
	b.unstick()
	b.release(w, 60)
	if !b.tryAcquire(500, w) {
		t.Fatal("the claim holds nothing any more, yet its record larger than the budget waits")
	}
	b.release(w, 500)
	if recs, byts := b.held(); recs != 0 || byts != 0 {
		t.Fatalf("held %d records, %d bytes after everything was released", recs, byts)
	}
	// Unstuck, the records held count again.
	acquire(b, 60)
	if ok, _ := acquire(b, 90); ok {
		t.Fatal("a 90-byte record admitted next to a record no longer stuck")
	}
}

// A claim holds at most its share of the budget, the budget divided among
// the claims that joined it: a claim whose records finish slowly cannot take
// the room of the others. Over its share it waits without holding up the
// line; holding nothing it may always take room; and when a claim leaves,
// the others' shares grow.
func TestBudgetShareKeepsRoomForTheOtherClaims(t *testing.T) {
	b := newBudget(8, 1<<20, 1)
	b.join()
	b.join()
	slow, fast := newBudgetWait(), newBudgetWait()
	for i := range 4 {
		if !b.tryAcquire(10, slow) {
			t.Fatalf("record %d of the slow claim refused within its share of 4", i)
		}
	}
	if b.tryAcquire(10, slow) {
		t.Fatal("the slow claim took a fifth record, over its share of 4")
	}
	// The line holds the slow claim, over its share: it is not in the
	// fast one's way.
	for i := range 4 {
		if !b.tryAcquire(10, fast) {
			t.Fatalf("record %d of the other claim refused: the slow claim, over its share, holds it up", i)
		}
	}
	if recs, _ := b.held(); recs != 8 {
		t.Fatalf("held %d records, want 8", recs)
	}
	if b.tryAcquire(10, fast) {
		t.Fatal("a full budget admitted a record")
	}
	// Both wait, the slow claim first. A record of the fast claim done:
	// its room goes to the fast claim, under its share, not to the slow one.
	b.release(fast, 10)
	b.nudge(fast)
	if granted(slow) || !granted(fast) {
		t.Fatalf("after a release of the fast claim: slow granted %v, fast granted %v; want only the fast one", granted(slow), granted(fast))
	}
	<-fast.ready
	// A record of the slow claim done: now it is under its share.
	b.release(slow, 10)
	b.nudge(slow)
	if !granted(slow) {
		t.Fatal("the slow claim, back under its share, was not granted the room it freed")
	}
	<-slow.ready

	// The fast claim leaves with its records done: the slow claim's share
	// is the whole budget.
	for range 4 {
		b.release(fast, 10)
	}
	b.leave()
	for i := range 4 {
		if !b.tryAcquire(10, slow) {
			t.Fatalf("record %d refused to the only claim left, with room in the budget", i)
		}
	}
	if recs, _ := b.held(); recs != 8 {
		t.Fatalf("held %d records, want 8", recs)
	}
}

// A claim holding nothing may take room over its share, for a record larger
// than its share of the bytes: otherwise the record would wedge its
// partition.
func TestBudgetShareAdmitsAClaimHoldingNothing(t *testing.T) {
	b := newBudget(8, 800, 1) // shares of 4 records, 400 bytes
	b.join()
	b.join()
	w := newBudgetWait()
	if !b.tryAcquire(700, w) {
		t.Fatal("a claim holding nothing was refused a record over its share of the bytes")
	}
	if b.tryAcquire(10, w) {
		t.Fatal("a claim over its share of the bytes took another record")
	}
}

// A byte budget set very large, to bound records only: a claim's share of
// the bytes must not overflow into a negative bound, which refused every
// claim of several a second record while the budget was empty.
func TestBudgetShareOfAHugeByteBudget(t *testing.T) {
	b := newBudget(256, math.MaxInt64, 1)
	b.join()
	b.join()
	w := newBudgetWait()
	for i := range 128 {
		if !b.tryAcquire(1000, w) {
			t.Fatalf("record %d refused within the claim's share of 128 records, with %d bytes of room", i, int64(math.MaxInt64))
		}
	}
	if b.tryAcquire(1000, w) {
		t.Fatal("a claim took a record over its share of 128")
	}
}
