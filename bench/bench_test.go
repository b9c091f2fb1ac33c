package bench

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Flags of the benchmark, after -args, e.g.
//
//	go test -run '^$' -bench Drain -benchtime 1x ./bench -args -drain.n 200000
var (
	flagRecords     = flag.Int("drain.n", DefaultRecords, "records to pre-load and drain per scenario")
	flagKafka       = flag.String("drain.kafka", os.Getenv("HOOKBRIDGE_BENCH_KAFKA"), "bootstrap addresses of a real Kafka cluster (default: kfake; env HOOKBRIDGE_BENCH_KAFKA)")
	flagConcurrency = flag.Int("drain.concurrency", DefaultConcurrency, "requests in flight for (b), (h) and route concurrency for (d)-(f), (p)")
	flagBridge      = flag.String("drain.bridge", "", "a built hookbridge binary (default: go build)")
	flagPlugin      = flag.String("drain.plugin", "", "a built examples/plugin-go binary (default: go build)")
)

// TestMain lets the harness start this test binary as the client of (bx),
// (hx), (cx) and (ct).
func TestMain(m *testing.M) {
	RunClientIfAsked()
	os.Exit(m.Run())
}

func brokersFlag() []string {
	if *flagKafka == "" {
		return nil
	}
	return strings.Split(*flagKafka, ",")
}

// BenchmarkDrain measures every scenario's records/s draining one pre-loaded
// topic (see the package documentation). Every iteration drains all the
// records with a new consumer group; -benchtime 1x runs each scenario once.
// The table with the ratios and targets is printed to stdout at the end.
func BenchmarkDrain(b *testing.B) {
	env, err := NewEnv(b.Context(), Options{
		Records: *flagRecords, Concurrency: *flagConcurrency, Brokers: brokersFlag(), Bridge: *flagBridge,
		Plugin: *flagPlugin, Log: os.Stderr, // b.Output would be trimmed to ten lines and shown only with -v
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := env.Close(); err != nil {
			b.Error(err)
		}
	}()
	if err := env.Prepare(b.Context(), Scenarios()); err != nil {
		b.Fatal(err)
	}
	rep := NewReport(env)
	ran := false
	for _, s := range Scenarios() {
		b.Run(s.Letter+"-"+s.Name, func(b *testing.B) {
			var sum Result
			iterations := 0
			for b.Loop() {
				r, err := env.Run(b.Context(), s)
				if err != nil {
					b.Fatal(err)
				}
				iterations++
				sum = accumulate(sum, r)
			}
			res := average(sum, iterations)
			rep.Add(res)
			ran = true
			b.ReportMetric(0, "ns/op") // the drain time is in records/s; ns/op would count start-up and shutdown
			b.ReportMetric(res.Rate(), "records/s")
			for _, of := range []string{"a", "b"} {
				if ratio, ok := rep.Ratio(s.Letter, of); ok && of != s.Letter {
					b.ReportMetric(ratio, "x("+of+")")
				}
			}
			if res.Bridge != nil {
				b.ReportMetric(mb(res.Bridge.PeakRSS), "peak-RSS-MB")
				b.ReportMetric(res.Bridge.CPU.Seconds(), "bridge-CPU-s")
				if len(res.Bridge.Plugins) > 0 {
					b.ReportMetric(res.Bridge.PluginCPU().Seconds(), "plugins-CPU-s")
					var peak int64
					for _, p := range res.Bridge.Plugins {
						peak = max(peak, p.PeakRSS)
					}
					b.ReportMetric(mb(peak), "plugin-peak-RSS-MB")
				}
			}
		})
	}
	if ran {
		// The table goes to stdout as is: b.Log would show it only with -v,
		// cut to ten lines. benchstat skips lines that are not results.
		rep.Finish(env)
		fmt.Println()
		if err := rep.WriteTable(os.Stdout); err != nil {
			b.Fatal(err)
		}
	}
}

// accumulate adds r to sum: times and counts add up, peak RSS is the highest.
func accumulate(sum, r Result) Result {
	if sum.Records == 0 {
		return r
	}
	sum.Records += r.Records
	sum.Elapsed += r.Elapsed
	sum.FirstRecord += r.FirstRecord
	sum.Delivered += r.Delivered
	sum.Duplicates += r.Duplicates
	sum.Invalid += r.Invalid
	sum.Requests += r.Requests
	sum.Failed += r.Failed
	sum.HarnessCPU += r.HarnessCPU
	if sum.Bridge != nil && r.Bridge != nil {
		bs := *sum.Bridge
		bs.PeakRSS = max(bs.PeakRSS, r.Bridge.PeakRSS)
		bs.CPU += r.Bridge.CPU
		bs.Plugins = r.Bridge.Plugins // the last run's processes
		if r.Bridge.ExitCode != 0 {
			bs.ExitCode = r.Bridge.ExitCode
		}
		sum.Bridge = &bs
	}
	return sum
}

// average turns a sum of n results into one run's figures.
func average(sum Result, n int) Result {
	if n <= 1 {
		return sum
	}
	d := func(v int) int { return v / n }
	sum.Records, sum.Delivered, sum.Duplicates, sum.Invalid = d(sum.Records), d(sum.Delivered), d(sum.Duplicates), d(sum.Invalid)
	sum.Requests, sum.Failed = d(sum.Requests), d(sum.Failed)
	sum.Elapsed /= time.Duration(n)
	sum.FirstRecord /= time.Duration(n)
	sum.HarnessCPU /= time.Duration(n)
	if sum.Bridge != nil {
		bs := *sum.Bridge
		bs.CPU /= time.Duration(n)
		sum.Bridge = &bs
	}
	return sum
}
