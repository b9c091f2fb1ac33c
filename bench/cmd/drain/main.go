// Command drain runs Hookbridge's throughput harness once and prints the table
// of figures, their ratios to the read and HTTP limits, and the targets. See
// bench/README.md.
//
//	go run ./bench/cmd/drain -n 200000 [-runs 3] [-kafka 127.0.0.1:9092] [-concurrency 64] [-only a,b,d,g,p]
//
// It exits 0 when every scenario ran, whether or not the targets were met
// (missed ones are marked MISSED), 1 on an error and 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hookbridge/hookbridge/bench"
)

func main() {
	bench.RunClientIfAsked() // the harness starts (bx), (hx), (cx) and (ct) from this executable
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.IntVar(&o.Records, "n", bench.DefaultRecords, "records to pre-load and drain in every scenario")
	kafka := fs.String("kafka", "", "bootstrap addresses of a real Kafka cluster, comma separated (default: in-process kfake)")
	fs.IntVar(&o.Concurrency, "concurrency", bench.DefaultConcurrency, "requests in flight for (b), (h) and route concurrency for (d)-(f), (p)")
	fs.IntVar(&o.BatchMessages, "batch", bench.DefaultBatchMessages, "batch.max_messages of (g) and (g2)")
	fs.IntVar(&o.BatchConcurrency, "batch-concurrency", bench.DefaultBatchConcurrency, "route concurrency of (g) and (g2)")
	fs.IntVar(&o.PluginConcurrency, "plugin-concurrency", bench.DefaultPluginConcurrency, "concurrency_per_instance of the plugin in (p)")
	fs.IntVar(&o.PluginInstances, "plugin-instances", bench.DefaultPluginInstances, "instances.max of the plugin in (p)")
	coldStarts := fs.Int("coldstarts", bench.DefaultColdStarts, "plugin cold starts to time after the rounds when (p) runs; 0: none")
	fs.StringVar(&o.Plugin, "plugin", "", "a built examples/plugin-go binary (default: go build "+bench.PluginPackage+")")
	only := fs.String("only", "", "scenarios to run, a comma separated list of a, b, bx, h, hx, c, cx, c2, ct, cw, cw2, d, e, f, g, g2, p (default: all)")
	fs.IntVar(&o.RecordSize, "size", bench.DefaultRecordSize, "record value size in bytes")
	fs.IntVar(&o.Partitions, "partitions", bench.DefaultPartitions, "partitions of the topic")
	fs.IntVar(&o.Keys, "keys", bench.DefaultKeys, "distinct record keys")
	fs.StringVar(&o.Bridge, "bridge", "", "a built hookbridge binary (default: go build "+bench.BridgePackage+")")
	fs.IntVar(&o.Runs, "runs", bench.DefaultRuns, "drain this many times per scenario, in rounds, and report the median run")
	fs.StringVar(&o.BridgeConfig, "bridge-config", "", "YAML appended to the bridge's config, e.g. 'telemetry: {sample_ratio: 0}'")
	fs.StringVar(&o.PerfDir, "perf", "", "record a perf CPU profile of each bridge run into this directory")
	fs.StringVar(&o.ProfileDir, "cpuprofile", "", "have each bridge run write a Go CPU profile (run --cpu-profile) into this directory")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kafka != "" {
		o.Brokers = strings.Split(*kafka, ",")
	}
	o.ColdStarts = *coldStarts
	if o.ColdStarts <= 0 {
		o.ColdStarts = -1 // none; 0 would mean the default
	}
	if !*quiet {
		o.Log = stderr
	}
	scenarios, err := bench.SelectScenarios(*only)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	rep, err := bench.Run(ctx, o, scenarios)
	if rep != nil && len(rep.Results) > 0 {
		fmt.Fprintln(stdout)
		if werr := rep.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if missed := rep.Missed(); len(missed) > 0 {
		fmt.Fprintf(stdout, "\n%d target(s) missed:\n  %s\n", len(missed), strings.Join(missed, "\n  "))
	}
	return 0
}
