package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// dlq -h, --help and help print the dlq usage on stdout and exit 0, as
// hookbridge help does; a dlq command that does not exist is a usage error
// that names it.
func TestDLQHelpAndUnknownSubcommand(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string
		first  string // the first line of stderr
	}{
		{args: []string{"dlq", "-h"}, code: exitOK, stdout: dlqUsage},
		{args: []string{"dlq", "--help"}, code: exitOK, stdout: dlqUsage},
		{args: []string{"dlq", "help"}, code: exitOK, stdout: dlqUsage},
		{args: []string{"dlq"}, code: exitUsage, first: "hookbridge dlq: missing command: replay"},
		{args: []string{"dlq", "list"}, code: exitUsage, first: `hookbridge dlq: unknown command "list"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // nothing may start
			var stdout, stderr bytes.Buffer
			code := run(ctx, tt.args, &stdout, &stderr)
			if code != tt.code || stdout.String() != tt.stdout {
				t.Errorf("exit code %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout.String(), tt.code, tt.stdout, stderr.String())
			}
			if tt.first == "" {
				if stderr.Len() != 0 {
					t.Errorf("stderr = %q, want nothing", stderr.String())
				}
				return
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if first != tt.first || rest != dlqUsage {
				t.Errorf("stderr = %q, want %q and the dlq usage", stderr.String(), tt.first)
			}
		})
	}
}

// version takes no arguments but -h: `hookbridge version --json` is a usage error,
// not the plain version on stdout with exit 0, which a script would take
// for the output it asked for.
func TestVersionRefusesArguments(t *testing.T) {
	for _, args := range [][]string{{"version", "--json"}, {"--version", "extra"}, {"-v", "-o", "json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, &stdout, &stderr)
			if code != exitUsage || stdout.Len() != 0 {
				t.Errorf("exit code %d, stdout %q; want %d and nothing; stderr:\n%s", code, stdout.String(), exitUsage, stderr.String())
			}
			first, rest, _ := strings.Cut(stderr.String(), "\n")
			if want := "hookbridge version: unexpected argument " + strconv.Quote(args[1]); first != want || rest != usage {
				t.Errorf("stderr = %q, want %q and the usage", stderr.String(), want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"version"}, &stdout, &stderr); code != exitOK || !strings.HasPrefix(stdout.String(), "hookbridge ") {
		t.Errorf("version: exit code %d, stdout %q", code, stdout.String())
	}
	// -h asks for help, as with every command.
	stdout.Reset()
	if code := run(t.Context(), []string{"version", "-h"}, &stdout, &stderr); code != exitOK || stdout.String() != usage {
		t.Errorf("version -h: exit code %d, stdout %q; want 0 and the usage", code, stdout.String())
	}
}
