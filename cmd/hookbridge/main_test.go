package main

import (
	"bytes"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, configDir(t, tt.files), tt.args...)
			if code != tt.code || stdout != tt.stdout {
				t.Errorf("exit code %d, stdout %q; want %d, %q; stderr:\n%s", code, stdout, tt.code, tt.stdout, stderr)
			}
		})
	}
}
