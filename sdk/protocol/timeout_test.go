package protocol

import (
	"testing"
	"time"
)

func TestTimeoutRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 999 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond,
		10 * time.Second, 27 * time.Hour, 200_000 * time.Hour} {
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
