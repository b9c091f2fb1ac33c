package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile starts the CPU profile of `run --cpu-profile` into path
// and returns the function that stops it and closes the file, once the
// bridge has stopped. The profile covers the whole run, start-up, drain and
// shutdown, at the runtime's default 100 samples a second: what an operator
// can send along with a report of a bridge that uses more CPU than it
// should, and what the bench harness collects with -cpuprofile
// (bench/README.md). Read it with `go tool pprof`. A process that exits on
// a second signal, or on a shutdown that is stuck, writes no profile.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
