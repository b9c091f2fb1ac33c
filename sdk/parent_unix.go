//go:build unix

package sdk

import (
	"os"
	"syscall"
	"time"
)

// watchParent makes the plugin stop when the bridge that started it is gone
// without stopping it (kill -9, a crash): the plugin then belongs to another
// parent. It sends itself SIGTERM, on which Serve lets the calls in flight
// finish and returns (the next bridge redelivers what they were doing).
// Without it an orphaned plugin would live on, holding its connections. The
// returned function stops the watch.
func watchParent() (stop func()) {
	parent := os.Getppid()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if os.Getppid() != parent {
					_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
