package monoclock

import (
	"testing"
	"time"
)

func TestReadings(t *testing.T) {
	a := Now()
	if a <= 0 {
		t.Fatalf("Now() = %d, want above 0 (0 stands for no reading)", a)
	}
	b := Now()
	if b < a || Since(a) < time.Duration(b-a) {
		t.Errorf("readings went back: %d then %d, Since %v", a, b, Since(a))
	}
	at := Now() + int64(time.Hour)
	if u := Until(at); u <= 0 || u > time.Hour {
		t.Errorf("Until an hour ahead = %v", u)
	}
	if u := Until(a); u > 0 {
		t.Errorf("Until a reading before = %v, want not above 0", u)
	}
}
