// Package monoclock reads the monotonic clock as a number an atomic.Int64
// holds. A time kept as Unix nanoseconds is a wall-clock reading: an NTP step
// or a VM resumed after a suspend moves it, so a duration measured against
// it is wrong by the jump; a reading of this clock is not moved by either.
package monoclock

import "time"

var epoch = time.Now()

// Now returns the nanoseconds since the process started, by the monotonic
// clock; never 0, so that 0 can stand for "no reading".
func Now() int64 { return int64(time.Since(epoch)) + 1 }

// Since returns the time elapsed since reading t of Now.
func Since(t int64) time.Duration { return time.Duration(Now() - t) }

// Until returns the time until reading t (Now plus a duration), negative
// once it passed.
func Until(t int64) time.Duration { return time.Duration(t - Now()) }
