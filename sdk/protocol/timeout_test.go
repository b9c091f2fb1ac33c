package protocol

import (
	"math"
	"testing"
	"time"
)

func TestTimeoutRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 999 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond,
		10 * time.Second, 27 * time.Hour, 200_000 * time.Hour, 2562047 * time.Hour, math.MaxInt64} {
		s := EncodeTimeout(d)
		got, ok := ParseTimeout(s)
		if !ok || len(s) > 9 || got < d || got < time.Millisecond {
			t.Errorf("EncodeTimeout(%v) = %q, parsed back as %v %v: want at least %v, never below 1ms", d, s, got, ok, d)
		}
		if d >= time.Millisecond && d < 1000*time.Hour && got > d+time.Millisecond {
			t.Errorf("EncodeTimeout(%v) = %q: %v, more than a millisecond over", d, s, got)
		}
	}
	for _, bad := range []string{"", "5", "m", "12x", "-5m", "123456789m", "1.5S"} {
		if d, ok := ParseTimeout(bad); ok {
			t.Errorf("ParseTimeout(%q) = %v, want refused", bad, d)
		}
	}
	if d, ok := ParseTimeout("2S"); !ok || d != 2*time.Second {
		t.Errorf(`ParseTimeout("2S") = %v %v`, d, ok)
	}
}

// The longest timeouts neither wrap around when encoded (the longest
// duration as 1ms) nor when parsed (a deadline already passed).
func TestTimeoutSaturates(t *testing.T) {
	if s := EncodeTimeout(math.MaxInt64); s != "2562048H" {
		t.Errorf("EncodeTimeout(math.MaxInt64) = %q", s)
	}
	for _, s := range []string{"2562048H", "99999999H"} {
		if d, ok := ParseTimeout(s); !ok || d != math.MaxInt64 {
			t.Errorf("ParseTimeout(%q) = %v %v, want the largest duration", s, d, ok)
		}
	}
}
