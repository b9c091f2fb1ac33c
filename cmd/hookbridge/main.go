// Command hookbridge consumes Kafka and delivers every record to a webhook or a
// plugin. See the README for the configuration and the webhook contract.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2 // bad usage or invalid configuration
)

const usage = `usage:
  hookbridge run      -c hookbridge.yaml   run until SIGTERM/SIGINT, then drain and commit
                      [--cpu-profile FILE] also write a CPU profile of the whole run (pprof)
  hookbridge validate -c hookbridge.yaml   check the configuration offline
                      [--print]            and print it as the bridge takes it (defaults, secrets redacted)
  hookbridge dlq replay -c hookbridge.yaml --route NAME [--limit N] [--dry-run] [--rate R] [filters]
                                           re-deliver what the route's dead-letter topic holds, then exit
  hookbridge demo [--records N]            live demo: embedded broker, a signed webhook and a plugin
  hookbridge version
`

func main() {
	tuneGC()
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go endOnSignals(signals, cancel)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// endOnSignals ends the process's context at the first SIGTERM or SIGINT,
// which starts the graceful shutdown, and the process itself at the second
// (Ctrl-C again), as that signal's default does: what was not committed is
// delivered again. Both signals come through one channel, so the second is
// never lost, however soon after the first it comes.
func endOnSignals(signals <-chan os.Signal, cancel context.CancelFunc) {
	<-signals
	cancel()
	sig := <-signals
	signal.Reset(sig)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Signal(sig) // the default action now: the process ends
	}
	time.Sleep(time.Second)
	os.Exit(exitFailed) // where a signal cannot be sent to oneself
}

// survivePipeReaders keeps `run` going when the reader of its log goes
// away: the other end of a pipe that exits (`hookbridge run | jq`, where the
// Ctrl-C that stops the bridge stops jq too; a log shipper that dies). By
// default Go ends a process with SIGPIPE at its next write to such a stdout
// or stderr, the "shutting down" line of a drain say: the records in flight
// would be neither finished nor committed, and the exit code would not be
// the bridge's. With SIGPIPE caught the write fails (the line is lost) and
// the bridge goes on. Caught rather than ignored, so that the plugin
// processes it starts keep the signal's default.
func survivePipeReaders() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case demoPluginCommand:
		return cmdDemoPlugin()
	case "dlq":
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version", "-v":
		// It takes no argument: `version --json` printing the plain
		// version with exit 0 would pass for what a script asked for.
		switch {
		case len(args) > 1 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help"):
			fmt.Fprint(stdout, usage) // as every command's -h: asked for, not an error
			return exitOK
		case len(args) > 1:
			fmt.Fprintf(stderr, "hookbridge version: unexpected argument %q\n%s", args[1], usage)
			return exitUsage
		}
		fmt.Fprintln(stdout, "hookbridge", versionString())
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "hookbridge: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// tuneGC trades memory for CPU: a bridge holds little live data (records in
// flight, bounded by max_in_flight_bytes) and allocates per record, so the
// default GOGC of 100 collects far more often than the memory saved is worth.
// The soft memory limit (1 GiB, or four fifths of a container's memory
// limit: see memoryLimit) makes it collect harder before that, whatever GOGC
// says. An explicit GOGC or GOMEMLIMIT in the environment wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit("/"))
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// loadConfig parses -c, and the flags more adds, and loads the file;
// problems go to stderr, the flags asked for with -h to stdout.
func loadConfig(name string, args []string, stdout, stderr io.Writer, more ...func(*flag.FlagSet)) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "hookbridge.yaml", "configuration file")
	for _, add := range more {
		add(fs)
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return nil, code
	}
	if leftoverArgs(fs, usage, stderr) {
		return nil, exitUsage
	}
	return loadFile(*path, stderr)
}

// parseFlags parses args into fs. done says the command ends there, with
// code: 0 after -h or --help, which print fs's flags on stdout (asked for,
// as hookbridge -h), 2 after a flag fs does not know or cannot parse, which
// prints what was wrong and the flags on fs's output (stderr).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	printFlags := func(w io.Writer) {
		out := fs.Output()
		fs.SetOutput(w)
		fmt.Fprintf(w, "Usage of hookbridge %s:\n", fs.Name())
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	fs.Usage = func() {} // Parse calls it for -h and for errors alike
	switch err := fs.Parse(args); {
	case err == nil:
		return exitOK, false
	case errors.Is(err, flag.ErrHelp):
		printFlags(stdout)
		return exitOK, true
	}
	printFlags(fs.Output())
	return exitUsage, true
}

// loadFile loads the configuration file path. Its problems go to stderr,
// followed by a line that counts them, so that every command that reads a
// configuration reports an invalid one the same way.
func loadFile(path string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		var problems config.Errors
		if errors.As(err, &problems) {
			fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(problems), path)
		}
		return nil, exitUsage
	}
	return cfg, exitOK
}

// logAdvice logs what the configuration has that is valid but likely not
// what was meant (`hookbridge validate` prints the same).
func logAdvice(log *slog.Logger, cfg *config.Config) {
	for _, a := range cfg.Advice {
		log.Warn("configuration advice", "file", a.File, "line", a.Line, "key", a.Path, "advice", a.Message)
	}
}

// leftoverArgs reports, with help, an argument fs took neither as a flag nor
// as a flag's value. run, validate and dlq replay take none: without this,
// `hookbridge validate bad.yaml` would check the default configuration file
// and say it is fine.
func leftoverArgs(fs *flag.FlagSet, help string, stderr io.Writer) bool {
	return unexpectedArgs(fs, " (name the configuration file with -c <file>)", help, stderr)
}

// unexpectedArgs is leftoverArgs for any command that takes no arguments,
// with hint added to the message.
func unexpectedArgs(fs *flag.FlagSet, hint, help string, stderr io.Writer) bool {
	if fs.NArg() == 0 {
		return false
	}
	fmt.Fprintf(stderr, "hookbridge %s: unexpected argument %q%s\n%s", fs.Name(), fs.Arg(0), hint, help)
	return true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	var print bool
	cfg, code := loadConfig("validate", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&print, "print", false, "print the configuration as the bridge takes it on stdout, as YAML: "+
			"every key, defaults filled in, variables expanded, secrets redacted")
	})
	if cfg == nil {
		return code
	}
	for _, a := range cfg.Advice {
		fmt.Fprintln(stderr, "warning: "+a.String())
	}
	ok := stdout
	if print {
		out, err := cfg.EffectiveYAML()
		if err != nil {
			fmt.Fprintf(stderr, "hookbridge validate: %v\n", err)
			return exitFailed
		}
		if _, err := stdout.Write(out); err != nil {
			return exitFailed
		}
		ok = stderr // stdout is the YAML alone
	}
	fmt.Fprintf(ok, "%s: ok (%d route(s))\n", cfg.File, len(cfg.Routes))
	return exitOK
}

// startTracing sets up tracing as the configuration says (spans are made
// and sampled with or without an exporter, so a receiver always gets a
// traceparent) and returns the function that flushes and stops it. ok is
// false when the setup failed, which it logs.
func startTracing(ctx context.Context, cfg *config.Config, log *slog.Logger) (stop func(), ok bool) {
	telemetry.LogErrors(log)
	shutdown, err := telemetry.SetupTracing(ctx, cfg.Telemetry, versionString())
	if err != nil {
		log.Error("tracing setup failed", "error", err)
		return nil, false
	}
	log.Info("tracing on", "export", telemetry.ExportTarget(cfg.Telemetry))
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flushing spans failed", "error", err)
		}
	}, true
}

// newBridge makes the process logger, starts tracing and builds the bridge
// of cfg, as run and dlq replay both do (replayed records go through a
// route's chain as in run: the receiver gets a traceparent, and a record
// dead-lettered again its send span). stop flushes the spans; ok is false
// when tracing could not start, which is logged.
func newBridge(ctx context.Context, cfg *config.Config, stderr io.Writer) (b *bridge.Bridge, log *slog.Logger, stop func(), ok bool) {
	log = telemetry.NewLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	if stop, ok = startTracing(ctx, cfg, log); !ok {
		return nil, log, nil, false
	}
	return bridge.New(cfg, bridge.Options{Version: versionString(), Logger: log, Plugins: pluginFactory(ctx, cfg, log)}), log, stop, true
}

// stuckGrace is how long past shutdown_timeout exitIfStuck lets a shutdown
// run: the bridge's own bound on what follows the drain (5 s), the flush of
// the spans (5 s), and a margin.
const stuckGrace = 15 * time.Second

// exitIfStuck is the shutdown's last resort: once ctx ends (SIGTERM or
// SIGINT), a process still running shutdownTimeout + stuckGrace later logs
// that it is stuck and exits 1. The bridge bounds its own shutdown, but a
// reload that was waiting on brokers that answer nothing when the signal
// came holds the bridge's loop, and nothing else would end the process. What
// was not committed is delivered again, as after a kill. The returned func
// stops the watch.
func exitIfStuck(ctx context.Context, shutdownTimeout time.Duration, log *slog.Logger) (stop func()) {
	return exitAfter(ctx, shutdownTimeout+stuckGrace, log, os.Exit)
}

// stuckLogWait bounds the wait for the last resort's log line: a log that
// cannot be written (a pipe whose reader stopped reading) blocks every
// line, and may be what holds the shutdown up.
const stuckLogWait = time.Second

// exitAfter is exitIfStuck after wait, ending the process with exit.
func exitAfter(ctx context.Context, wait time.Duration, log *slog.Logger, exit func(int)) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
			return
		}
		logged := make(chan struct{})
		go func() {
			log.Error("shutdown is stuck, as on brokers that accept connections but answer nothing; exiting without it: records not committed are delivered again",
				"waited", wait.String())
			close(logged)
		}()
		select {
		case <-logged:
		case <-time.After(stuckLogWait):
		}
		exit(exitFailed)
	}()
	return func() { close(done) }
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	hup := catchHangups()
	survivePipeReaders()
	defer signal.Ignore(syscall.SIGHUP) // also when run stops before it reloads
	var cpuProfile string
	cfg, code := loadConfig("run", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (pprof format)")
	})
	if cfg == nil {
		return code
	}
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "hookbridge run: %v\n", err)
			return exitUsage
		}
		defer stop()
	}
	b, log, stopTracing, ok := newBridge(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer stopTracing()
	defer exitIfStuck(ctx, cfg.ShutdownTimeout.D(), log)()
	logAdvice(log, cfg)
	stopReload := reloadOnHangup(ctx, b, cfg.File, log, hup)
	defer stopReload()
	if err := b.Run(ctx); err != nil {
		log.Error("hookbridge stopped", "error", err)
		return exitFailed
	}
	log.Info("hookbridge stopped cleanly")
	return exitOK
}
