package protocol

import (
	"math"
	"strconv"
	"time"
)

// MetadataTimeout is the key of a stream call's metadata that carries what
// is left of the call's time when the host sends it, in the format gRPC's
// grpc-timeout header has for a unary Handle call (an integer of at most 8
// digits and a unit: H, M, S, m, u or n). The plugin gives the handler's
// context that deadline, so that a handler stops on time even if the host's
// cancel message does not reach it.
const MetadataTimeout = "grpc-timeout"

// EncodeTimeout renders d for MetadataTimeout: in milliseconds, rounded up
// (at least 1ms), or in coarser units when that needs more than 8 digits.
func EncodeTimeout(d time.Duration) string {
	ms := max(CeilMillis(d), 1)
	const most = 99_999_999
	switch {
	case ms <= most:
		return strconv.FormatInt(ms, 10) + "m"
	case ms/1000 <= most:
		return strconv.FormatInt(ms/1000+1, 10) + "S"
	default:
		return strconv.FormatInt(min(ms/3_600_000+1, most), 10) + "H"
	}
}

// CeilMillis is d in whole milliseconds, rounded up (1µs is not "no
// time"), without overflowing near the longest duration.
func CeilMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

// ParseTimeout reads a MetadataTimeout value; ok is false for one that is
// not in the format. One past the largest duration is the largest duration.
func ParseTimeout(s string) (d time.Duration, ok bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64, true // about 292 years: as good as no deadline
	}
	return time.Duration(n) * unit, true
}

// RetryAfter reads an Error's retry_after_ms: no wait when it is not above
// 0, the longest duration when the milliseconds would overflow one.
func RetryAfter(ms int64) time.Duration {
	switch {
	case ms <= 0:
		return 0
	case ms > math.MaxInt64/int64(time.Millisecond):
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}
