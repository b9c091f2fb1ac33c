//go:build !unix

package bench

import "time"

// selfCPU is 0 where there is no getrusage: the harness's CPU columns then
// read 0 (the bridge's come from /proc, and are missing there too).
func selfCPU() time.Duration { return 0 }
