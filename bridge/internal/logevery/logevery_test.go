package logevery

import (
	"testing"
	"time"
)

// The first event is logged at once; the others of the window are one line,
// at Close at the latest, that counts them; after Close each is logged.
func TestThrottle(t *testing.T) {
	var lines [][2]int
	l := &Throttle{Every: time.Hour}
	note := func() {
		l.Note(func(repeated int, within time.Duration) {
			lines = append(lines, [2]int{repeated, int(within / time.Hour)})
		})
	}
	for range 5 {
		note()
	}
	if len(lines) != 1 || lines[0] != [2]int{0, 0} {
		t.Fatalf("lines %v, want one logged at once", lines)
	}
	l.Close()
	if len(lines) != 2 || lines[1] != [2]int{4, 1} {
		t.Fatalf("after Close: %v, want a line counting 4 within 1h", lines)
	}
	note()
	if len(lines) != 3 || lines[2] != [2]int{0, 0} {
		t.Fatalf("after Close, an event: %v, want it logged at once", lines)
	}
}
