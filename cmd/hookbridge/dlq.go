package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

const dlqUsage = `usage:
  hookbridge dlq replay -c hookbridge.yaml --route NAME [--limit N] [--dry-run] [--rate R]
                        [--key K] [--error-kind permanent|retryable] [--partition P]
                        [--from-offset A] [--to-offset B]
`

// cmdDLQ handles `hookbridge dlq replay`: it re-delivers what a route's
// dead-letter topic holds when it starts, then exits.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprint(stderr, dlqUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "hookbridge.yaml", "configuration file")
	o := bridge.ReplayOptions{Out: stdout}
	fs.StringVar(&o.Route, "route", "", "route whose dead-letter topic to replay (required)")
	fs.IntVar(&o.Limit, "limit", 0, "replay at most N records (0 = all)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would be replayed, with its error headers; change nothing")
	fs.Float64Var(&o.Rate, "rate", 0, "records per second (0 = no limit)")
	key := fs.String("key", "", "only records with this key")
	fs.StringVar(&o.ErrorKind, "error-kind", "", "only records that failed this way: permanent or retryable")
	partition := fs.Int("partition", -1, "only records from this original partition")
	fs.Int64Var(&o.FromOffset, "from-offset", -1, "only records at or after this original offset")
	fs.Int64Var(&o.ToOffset, "to-offset", -1, "only records at or before this original offset")
	if err := fs.Parse(args[1:]); err != nil || leftoverArgs(fs, dlqUsage, stderr) {
		return exitUsage
	}
	if o.Route == "" || o.Limit < 0 || o.Rate < 0 || *partition > math.MaxInt32 ||
		(o.ErrorKind != "" && o.ErrorKind != "permanent" && o.ErrorKind != "retryable") {
		fmt.Fprint(stderr, dlqUsage)
		return exitUsage
	}
	o.Partition = int32(*partition)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "key" {
			o.Key = key
		}
	})
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	log := telemetry.NewLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	// Replayed records go through the route's chain as in run: the receiver
	// gets a traceparent, and a record dead-lettered again its send span.
	stopTracing, ok := startTracing(ctx, cfg, log)
	if !ok {
		return exitFailed
	}
	defer stopTracing()
	b := bridge.New(cfg, bridge.Options{Version: versionString(), Logger: log, Plugins: pluginFactory(ctx, cfg, log)})
	rep, err := b.Replay(ctx, o)
	if rep != nil {
		verb := "replayed"
		if o.DryRun {
			verb = "would replay"
		}
		fmt.Fprintf(stdout, "dlq replay of route %s (group %s): %d read, %s %d, %d delivered, %d dead-lettered again, %d left in place\n",
			o.Route, rep.Group, rep.Seen, verb, rep.Replayed, rep.Delivered, rep.DeadLettered, rep.Skipped)
		if len(rep.Committed) > 0 {
			var parts []string
			for p, off := range rep.Committed {
				parts = append(parts, fmt.Sprintf("%d:%d", p, off))
			}
			fmt.Fprintf(stdout, "committed (partition:next offset): %s\n", strings.Join(parts, " "))
		}
	}
	if err != nil {
		log.Error("dlq replay failed", "error", err)
		return exitFailed
	}
	return exitOK
}
