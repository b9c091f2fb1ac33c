package kafka

import (
	"testing"
	"time"
)

// skip moves the commit offset past offsets that hold no record only while
// no record is in flight: a record added since the caller looked keeps the
// offset below it, or a commit would pass a record not delivered.
func TestTrackerSkipHoldsForRecordInFlight(t *testing.T) {
	tr := newTracker()
	tr.add(5, time.Now())
	if tr.skip(10) {
		t.Fatal("skip(10) moved with offset 5 in flight")
	}
	if mark, first := tr.position(); mark != -1 || first != 5 {
		t.Fatalf("position %d, %d; want -1 (nothing to commit), 5 (in flight)", mark, first)
	}
	if mark, moved := tr.done(5); !moved || mark != 6 {
		t.Fatalf("done(5) = %d,%v; want 6,true", mark, moved)
	}
	if !tr.skip(10) {
		t.Fatal("skip(10) did not move with nothing in flight")
	}
	if mark, _ := tr.position(); mark != 10 {
		t.Fatalf("commit offset %d after skip(10), want 10", mark)
	}
	if tr.skip(8) {
		t.Fatal("skip(8) moved the commit offset back from 10")
	}
}
