// Package clocktest builds clock readings that tests of time handling need
// and no API gives. Tests only: it reaches into time.Time's layout.
package clocktest

import (
	"fmt"
	"time"
	"unsafe"
)

// WallMoved returns the reading time.Now gives instead of now when the wall
// clock moved by d and the monotonic clock did not: the machine was
// suspended for d (a VM paused and resumed; on Linux CLOCK_MONOTONIC, Go's
// monotonic clock, stands still while suspended), or, for a negative d, NTP
// stepped the wall clock back. d is added to the seconds of now's wall clock
// in place (time.Time holds a has-monotonic flag, 33 bits of seconds and 30
// bits of nanoseconds in its first word); an error says that layout changed.
func WallMoved(now time.Time, d time.Duration) (time.Time, error) {
	const hasMonotonic, secShift = 1 << 63, 30
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	moved := now
	l := (*layout)(unsafe.Pointer(&moved))
	if l.wall&hasMonotonic == 0 {
		return now, fmt.Errorf("%v has no monotonic reading", now)
	}
	l.wall = uint64(int64(l.wall) + int64(d/time.Second)<<secShift)
	if !moved.Round(0).Equal(now.Round(0).Add(d)) || moved.Sub(now) != 0 {
		return now, fmt.Errorf("could not move the wall clock of %v by %v: got %v", now, d, moved)
	}
	return moved, nil
}
