//go:build unix

package host_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// BenchmarkDeliverOnTheStream makes calls from 64 goroutines to one plugin
// process on its stream, under one cancelable context (a partition's, in
// the bridge). host-CPU-ns/op is the CPU of this process per call, the
// host's share of what a record costs on a plugin route; ns/op includes the
// plugin's answer.
func BenchmarkDeliverOnTheStream(b *testing.B) {
	p, _ := startOne(b, func(cfg *config.Plugin) {
		cfg.ConcurrencyPerInstance = 64
	})
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	value := make([]byte, 256)
	var offset atomic.Int64
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	before := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Deliver(ctx, delivery(offset.Add(1), "ack", value)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-before).Nanoseconds())/float64(b.N), "host-CPU-ns/op")
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
