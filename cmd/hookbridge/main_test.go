package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validConfig is a configuration validate accepts offline.
const validConfig = `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: r
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/h"}}
`

// runCLI runs the command line args in dir, as `hookbridge args...` would,
// and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// configDir returns a directory holding the files named in files, each with
// its content.
func configDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLeftoverArgumentIsUsageError(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		arg   string // the argument the message names
		usage string // the usage printed after it
	}{
		// The default file is valid: the argument must not be ignored in
		// favour of it.
		{name: "validate", files: map[string]string{"hookbridge.yaml": validConfig, "bad.yaml": "kafka: ["},
			args: []string{"validate", "bad.yaml"}, arg: "bad.yaml", usage: usage},
		{name: "validate after -c", files: map[string]string{"good.yaml": validConfig},
			args: []string{"validate", "-c", "good.yaml", "bad.yaml"}, arg: "bad.yaml", usage: usage},
		{name: "validate before -c", files: map[string]string{"good.yaml": validConfig},
			args: []string{"validate", "bad.yaml", "-c", "good.yaml"}, arg: "bad.yaml", usage: usage},
		{name: "validate after --", files: map[string]string{"hookbridge.yaml": validConfig},
			args: []string{"validate", "--", "bad.yaml"}, arg: "bad.yaml", usage: usage},
		// No default file, so that the old behaviour could not start a
		// bridge: it failed over hookbridge.yaml without naming bad.yaml.
		{name: "run", args: []string{"run", "bad.yaml"}, arg: "bad.yaml", usage: usage},
		{name: "dlq replay", args: []string{"dlq", "replay", "--route", "r", "bad.yaml"}, arg: "bad.yaml", usage: dlqUsage},
		{name: "dlq replay before flags", args: []string{"dlq", "replay", "bad.yaml", "--route", "r"}, arg: "bad.yaml", usage: dlqUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, configDir(t, tt.files), tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			first, rest, _ := strings.Cut(stderr, "\n")
			if !strings.Contains(first, `unexpected argument "`+tt.arg+`"`) || !strings.Contains(first, "-c <file>") {
				t.Errorf("first line of stderr = %q, want it to name %q and suggest -c <file>", first, tt.arg)
			}
			if rest != tt.usage {
				t.Errorf("stderr after the first line = %q, want the usage %q", rest, tt.usage)
			}
		})
	}
}

func TestValidateConfigFile(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		args   []string
		code   int
		stdout string
	}{
		{name: "-c", files: map[string]string{"good.yaml": validConfig}, args: []string{"validate", "-c", "good.yaml"},
			code: exitOK, stdout: "good.yaml: ok (1 route(s))\n"},
		{name: "default file", files: map[string]string{"hookbridge.yaml": validConfig}, args: []string{"validate"},
			code: exitOK, stdout: "hookbridge.yaml: ok (1 route(s))\n"},
		{name: "-c invalid", files: map[string]string{"hookbridge.yaml": validConfig, "bad.yaml": "kafka: ["},
			args: []string{"validate", "-c", "bad.yaml"}, code: exitUsage},
		{name: "advice", files: map[string]string{"hookbridge.yaml": adviceConfig}, args: []string{"validate"},
			code: exitOK, stdout: "hookbridge.yaml: ok (1 route(s))\n"},
		// run accepted it, and at SIGTERM its shutdown bounds overflowed:
		// it exited 1 at once, without draining.
		{name: "shutdown_timeout too long", files: map[string]string{"big.yaml": "shutdown_timeout: 2562047h47m16s\n" + validConfig},
			args: []string{"validate", "-c", "big.yaml"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, configDir(t, tt.files), tt.args...)
			if code != tt.code || stdout != tt.stdout {
				t.Errorf("exit code %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout, tt.code, tt.stdout, stderr)
			}
			advised := strings.HasPrefix(stderr, "warning: hookbridge.yaml:9: routes[0].retry.max_attempts: 5 is not above")
			if advised != (tt.files["hookbridge.yaml"] == adviceConfig && code == exitOK) {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}

// validate --print writes the configuration as the bridge takes it, and
// only that, on stdout (so it can be redirected to a file, which validates
// in turn); the verdict goes to stderr.
func TestValidatePrint(t *testing.T) {
	dir := configDir(t, map[string]string{"hookbridge.yaml": validConfig})
	code, stdout, stderr := runCLI(t, dir, "validate", "--print")
	if code != exitOK || stderr != "hookbridge.yaml: ok (1 route(s))\n" {
		t.Fatalf("exit code %d, stderr %q; want 0 and the verdict", code, stderr)
	}
	for _, key := range []string{"session_timeout: 10s", "ordering: key", "concurrency: 64", "shutdown_timeout: 25s"} {
		if !strings.Contains(stdout, "\n"+key+"\n") && !strings.Contains(stdout, " "+key+"\n") {
			t.Errorf("stdout lacks the default %q:\n%s", key, stdout)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "printed.yaml"), []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, dir, "validate", "-c", "printed.yaml"); code != exitOK {
		t.Errorf("the printed configuration does not validate: exit %d\n%s%s\n%s", code, out, errs, stdout)
	}
}

// adviceConfig is valid, with advice: a record failing alone while its
// target is down would be dead-lettered before the breaker opens.
const adviceConfig = validConfig + `    dead_letter: {topic: t.dlq}
    retry:
      max_attempts: 5
`

// dlqConfig is a configuration validate accepts offline with two routes:
// billing has a dead-letter topic, audit has none.
const dlqConfig = `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: billing
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/h"}}
    dead_letter: {topic: t.dlq}
  - name: audit
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/a"}}
`

// Every mistake on the dlq replay command line, a route it cannot replay
// included, exits 2 with a message that names it, before the command
// connects to Kafka.
func TestDLQReplayUsageErrors(t *testing.T) {
	badConfig := dlqConfig + "bogus: 1\n"
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no such route", []string{"--route", "nope"}, `hookbridge.yaml: no route named "nope" (its routes: billing, audit)`},
		{"route without a dead-letter topic", []string{"--route", "audit"}, "route audit has no dead_letter.topic"},
		{"partition below -1", []string{"--route", "billing", "--partition", "-2"}, "--partition -2: must be"},
		{"from-offset below -1", []string{"--route", "billing", "--from-offset", "-2"}, "--from-offset -2: must be"},
		{"to-offset below -1", []string{"--route", "billing", "--to-offset", "-9"}, "--to-offset -9: must be"},
		{"empty offset range", []string{"--route", "billing", "--from-offset", "8", "--to-offset", "7"},
			"--from-offset 8 is past --to-offset 7: the range holds no offset"},
		{"rate NaN", []string{"--route", "billing", "--rate", "NaN"}, "--rate NaN: must be"},
		{"rate infinite", []string{"--route", "billing", "--rate", "+Inf"}, "--rate +Inf: must be"},
		{"rate negative", []string{"--route", "billing", "--rate", "-0.5"}, "--rate -0.5: must be"},
		{"limit negative", []string{"--route", "billing", "--limit", "-1"}, "--limit -1: must be"},
		{"topic not a topic name", []string{"--route", "billing", "--topic", "orders/eu"}, `--topic: "orders/eu" is not a legal Kafka topic name`},
		{"no route", nil, "--route is required"},
		{"invalid config", []string{"-c", "bad.yaml", "--route", "billing"}, "bad.yaml:11: bogus: unknown key\n1 problem(s) in bad.yaml\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := configDir(t, map[string]string{"hookbridge.yaml": dlqConfig, "bad.yaml": badConfig})
			code, stdout, stderr := runCLI(t, dir, append([]string{"dlq", "replay"}, tt.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to say %q", stderr, tt.want)
			}
		})
	}
}

// demo takes no arguments and produces at least one record: anything else
// is a usage error, not a demo that runs and exits 0.
func TestDemoUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		first string // the first line of stderr
	}{
		{"stray argument", []string{"demo", "extra"}, `hookbridge demo: unexpected argument "extra"`},
		{"stray argument after --records", []string{"demo", "--records", "5", "extra"}, `hookbridge demo: unexpected argument "extra"`},
		{"no records", []string{"demo", "--records", "0"}, "hookbridge demo: --records must be at least 1, not 0"},
		{"negative records", []string{"demo", "--records", "-3"}, "hookbridge demo: --records must be at least 1, not -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Cancelled, so that a demo started after all stops at once
			// instead of running for seconds.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, tt.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if first != tt.first || rest != usage {
				t.Errorf("stderr = %q, want %q and the usage", stderr.String(), tt.first)
			}
		})
	}
}

// -h and --help on a command print its flags on stdout and exit 0, as help
// does (asked for, so `hookbridge run -h | less` shows them); an unknown
// flag is a usage error, with the flags on stderr.
func TestCommandHelpFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		flag string // a flag the help names, on stdout for code 0, else on stderr
	}{
		{[]string{"run", "-h"}, exitOK, "-cpu-profile"},
		{[]string{"validate", "--help"}, exitOK, "-c string"},
		{[]string{"dlq", "replay", "-h"}, exitOK, "-dry-run"},
		{[]string{"demo", "-help"}, exitOK, "-records"},
		{[]string{"run", "--no-such-flag"}, exitUsage, "-cpu-profile"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // nothing may start
			if code := run(ctx, tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			want, other, name := &stderr, &stdout, "stderr"
			if tt.code == exitOK {
				want, other, name = &stdout, &stderr, "stdout"
			}
			if !strings.Contains(want.String(), tt.flag) {
				t.Errorf("%s does not list %s:\n%s", name, tt.flag, want.String())
			}
			if other.Len() != 0 {
				t.Errorf("the other stream has %q", other.String())
			}
		})
	}
}
