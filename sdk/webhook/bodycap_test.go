package webhook

import (
	"bytes"
	"math"
	"strconv"
	"testing"
	"time"
)

// A cap as large as an int64 holds (a receiver that means "no cap") reads
// the whole body: the cap plus the byte that tells a longer body must not
// overflow into a limit that reads nothing, which refused every request as
// unsigned (401), pausing the bridge's route.
func TestBodyCapLargest(t *testing.T) {
	const id, ts = "t-0-1", int64(1_700_000_000)
	clock := WithClock(func() time.Time { return time.Unix(ts, 0) })
	v := mustVerifier(t, []string{newSecret}, clock, WithMaxBodyBytes(math.MaxInt64))
	body := []byte(`{"order":7}`)
	got, err := v.Verify(request(id, strconv.FormatInt(ts, 10), mustSign(t, newSecret, id, ts, body), body))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("WithMaxBodyBytes(math.MaxInt64): body %q, error %v; want %q and no error", got, err, body)
	}
}
