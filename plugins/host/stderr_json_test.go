package host_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// TestStderrJSONLogLines starts a plugin (a shell script) that writes JSON
// log lines to its standard error as a plugin in another language may:
// "@message", "@level" or "@timestamp" that are not strings, a timestamp
// with milliseconds (JavaScript's toISOString). go-plugin panicked on the
// first kinds, which ended the bridge; each line must reach the bridge's
// log at its level, with its message.
func TestStderrJSONLogLines(t *testing.T) {
	lines := []string{
		`{"@level":"error","@message":42}`,
		`{"@level":"warn","@message":{"order":7}}`,
		`{"@level":null,"@message":"null level"}`,
		`{"@level":"error","@message":null}`,
		`{"@level":"error","@message":"epoch time","@timestamp":1714557600}`,
		`{"@level":"error","@message":"js time","@timestamp":"2024-05-01T10:00:00.123Z"}`,
		`{"@level":"info","@message":"hclog time","@timestamp":"2024-05-01T10:00:00.000000Z","n":12345678901234567890}`,
	}
	script := "#!/bin/sh\n"
	for _, l := range lines {
		script += "echo '" + l + "' >&2\n"
	}
	// The last line without its newline: go-plugin parses it all the same.
	script += "printf '%s' '{\"@level\":\"error\",\"@message\":7}' >&2\n"
	script += "exit 1\n"
	path := filepath.Join(t.TempDir(), "plugin.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := testConfig(path)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	p, _ := newPool(t, cfg, host.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := p.Start(t.Context()); err == nil {
		t.Fatal("start succeeded; want the script's exit to fail it")
	}

	got := map[string]string{} // message -> level
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got[e.Msg] = e.Level
	}
	for msg, level := range map[string]string{
		"42":          "ERROR",
		`{"order":7}`: "WARN",
		"null":        "ERROR",
		"epoch time":  "ERROR",
		"js time":     "ERROR",
		"hclog time":  "INFO",
		"7":           "ERROR",
	} {
		if got[msg] != level {
			t.Errorf("message %q logged at %q, want %s", msg, got[msg], level)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}
