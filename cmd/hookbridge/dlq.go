package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
)

const dlqUsage = `usage:
  hookbridge dlq replay -c hookbridge.yaml --route NAME [--limit N] [--dry-run] [--rate R]
                        [--key K] [--error-kind permanent|retryable] [--topic T]
                        [--partition P] [--from-offset A] [--to-offset B]
`

// cmdDLQ handles `hookbridge dlq replay`: it re-delivers what a route's
// dead-letter topic holds when it starts, then exits.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		fmt.Fprintf(stderr, "hookbridge dlq: missing command: replay\n%s", dlqUsage)
		return exitUsage
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help":
		// As hookbridge help: asked for, so on stdout, and not an error.
		fmt.Fprint(stdout, dlqUsage)
		return exitOK
	case args[0] != "replay":
		fmt.Fprintf(stderr, "hookbridge dlq: unknown command %q\n%s", args[0], dlqUsage)
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
	fs.StringVar(&o.Topic, "topic", "", "only records from this original topic (a route may consume several)")
	partition := fs.Int("partition", -1, "only records from this original partition")
	fs.Int64Var(&o.FromOffset, "from-offset", -1, "only records at or after this original offset")
	fs.Int64Var(&o.ToOffset, "to-offset", -1, "only records at or before this original offset")
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	if leftoverArgs(fs, dlqUsage, stderr) {
		return exitUsage
	}
	if msg := badReplayFlags(&o, *partition); msg != "" {
		fmt.Fprintf(stderr, "hookbridge dlq replay: %s\n%s", msg, dlqUsage)
		return exitUsage
	}
	o.Partition = int32(*partition)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "key" {
			o.Key = key
		}
	})
	cfg, code := loadFile(*path, stderr)
	if cfg == nil {
		return code
	}
	// A route that cannot be replayed is a usage error like a bad flag, and
	// is found before connecting to Kafka.
	if _, err := bridge.ReplayRoute(cfg, o.Route); err != nil {
		fmt.Fprintf(stderr, "hookbridge dlq replay: %s: %v\n", cfg.File, err)
		return exitUsage
	}
	b, log, stopTracing, ok := newBridge(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer stopTracing()
	defer exitIfStuck(ctx, cfg.ShutdownTimeout.D(), log)()
	rep, err := b.Replay(ctx, o)
	// Stopped by SIGINT or SIGTERM: say how far the replay got, and exit as
	// run does when a signal stops it. The operator asked for the stop, and
	// nothing is lost: what was not committed is replayed next time. A
	// replay that finished before the signal came was not interrupted.
	interrupted := err != nil && ctx.Err() != nil
	if interrupted {
		fmt.Fprintf(stdout, "dlq replay of route %s interrupted; what it did until then:\n", o.Route)
	}
	if rep != nil {
		printReplayReport(stdout, o, rep)
	}
	if interrupted {
		if rep == nil {
			fmt.Fprintln(stdout, "nothing: it was stopped before it read the dead-letter topic")
		} else if open := rep.Replayed - rep.Delivered - rep.DeadLettered; !o.DryRun && open > 0 {
			fmt.Fprintf(stdout, "%d record(s) were being delivered when it stopped; they are not committed, and the next replay sends them again\n", open)
		}
		log.Info("dlq replay interrupted", "error", err)
		return exitOK
	}
	if err != nil {
		log.Error("dlq replay failed", "error", err)
		return exitFailed
	}
	return exitOK
}

// badReplayFlags says what is wrong with the flags of dlq replay, or "".
// -1 means "any" for --partition and "open" for the offsets; anything below
// is a mistake, not a filter that matches nothing.
func badReplayFlags(o *bridge.ReplayOptions, partition int) string {
	switch {
	case o.Route == "":
		return "--route is required"
	case o.Limit < 0:
		return fmt.Sprintf("--limit %d: must be 0 (all) or more", o.Limit)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return fmt.Sprintf("--rate %v: must be a finite number of records per second, 0 (no limit) or more", o.Rate)
	case partition < -1 || partition > math.MaxInt32:
		return fmt.Sprintf("--partition %d: must be a partition number, or -1 (any)", partition)
	case o.FromOffset < -1:
		return fmt.Sprintf("--from-offset %d: must be an offset, or -1 (open)", o.FromOffset)
	case o.ToOffset < -1:
		return fmt.Sprintf("--to-offset %d: must be an offset, or -1 (open)", o.ToOffset)
	case o.FromOffset >= 0 && o.ToOffset >= 0 && o.FromOffset > o.ToOffset:
		return fmt.Sprintf("--from-offset %d is past --to-offset %d: the range holds no offset", o.FromOffset, o.ToOffset)
	case o.ErrorKind != "" && o.ErrorKind != "permanent" && o.ErrorKind != "retryable":
		return fmt.Sprintf("--error-kind %q: must be permanent or retryable", o.ErrorKind)
	}
	if o.Topic != "" {
		if err := config.CheckTopicName(o.Topic); err != nil {
			return fmt.Sprintf("--topic: %v", err)
		}
	}
	return ""
}

// printReplayReport writes what a replay did, in full or until it was
// interrupted.
func printReplayReport(w io.Writer, o bridge.ReplayOptions, rep *bridge.ReplayReport) {
	verb := "replayed"
	if o.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "dlq replay of route %s (group %s): %d read, %s %d, %d delivered, %d dead-lettered again, %d left in place, %d of other routes\n",
		o.Route, rep.Group, rep.Seen, verb, rep.Replayed, rep.Delivered, rep.DeadLettered, rep.Skipped, rep.OtherRoute)
	// Records read that reached none of those ends: the replay was
	// interrupted while they waited for --rate or their delivery, or their
	// partition went to another member of the replay group. They are not
	// committed.
	ended := rep.Delivered + rep.DeadLettered
	if o.DryRun {
		ended = rep.Replayed
	}
	if left := rep.Seen - ended - rep.Skipped - rep.OtherRoute; left > 0 {
		fmt.Fprintf(w, "%d read and not finished (the replay was interrupted, or their partition went to another replay of the route): left uncommitted, for the next replay\n", left)
	}
	if len(rep.Committed) > 0 {
		var parts []string
		for _, p := range slices.Sorted(maps.Keys(rep.Committed)) {
			parts = append(parts, fmt.Sprintf("%d:%d", p, rep.Committed[p]))
		}
		fmt.Fprintf(w, "committed (partition:next offset): %s\n", strings.Join(parts, " "))
	}
}
