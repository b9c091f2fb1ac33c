package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A timestamp refused for being just past the tolerance says by how much it
// is off: the error must not state a skew within the tolerance (the whole
// seconds of a skew of 5m0.5s read "5m0s away from now, tolerance 5m0s", a
// reason that contradicts the refusal).
func TestTimestampErrorStatesTheSkew(t *testing.T) {
	const id = "t-0-1"
	body := []byte("x")
	now := time.Unix(1_700_000_000, 500e6) // a receiver's clock has fractions of a second
	v := mustVerifier(t, []string{newSecret}, WithClock(func() time.Time { return now }))
	for _, offset := range []int64{-300, 301, -3600} {
		ts := now.Unix() + offset
		_, err := v.Verify(request(id, strconv.FormatInt(ts, 10), mustSign(t, newSecret, id, ts, body), body))
		if !errors.Is(err, ErrTimestamp) {
			t.Fatalf("offset %ds: Verify = %v, want ErrTimestamp", offset, err)
		}
		_, rest, ok := strings.Cut(err.Error(), " is ")
		away, _, ok2 := strings.Cut(rest, " away from now")
		d, perr := time.ParseDuration(away)
		if !ok || !ok2 || perr != nil {
			t.Fatalf("offset %ds: %q does not state the skew", offset, err)
		}
		if d <= DefaultTolerance {
			t.Errorf("offset %ds: %q states a skew of %s, within the tolerance %s", offset, err, d, DefaultTolerance)
		}
	}
}
