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

// TestStderrJSONLineKeepsItsSize starts a plugin whose standard error holds
// one JSON error line of some 800 KiB, under the 1 MiB a line may take to
// reach the bridge's log at its level, that quotes an HTML page and carries
// a JavaScript timestamp (milliseconds), which the bridge drops. Writing
// the line again must not make it longer than it was ("<" as "\u003c"):
// past 1 MiB go-plugin would relay it in pieces at debug level, and the
// error would not be seen at the default level.
func TestStderrJSONLineKeepsItsSize(t *testing.T) {
	page := strings.Repeat("<p>a&b</p>", 80<<10)
	line, err := json.Marshal(map[string]string{"@level": "error", "@message": "upstream answered " + page,
		"@timestamp": "2024-05-01T10:00:00.123Z"})
	if err != nil {
		t.Fatal(err)
	}
	// As a plugin in another language writes it: no HTML escaping.
	line = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(line)))
	if len(line) >= 1<<20 {
		t.Fatalf("the line is %d bytes; the test wants one under 1 MiB", len(line))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "line.json"), append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plugin.sh")
	script := "#!/bin/sh\ncat '" + filepath.Join(dir, "line.json") + "' >&2\nexit 1\n"
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
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var e struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line of %d bytes: %v", len(l), err)
		}
		if e.Level == "ERROR" && e.Msg == "upstream answered "+page {
			return
		}
	}
	t.Errorf("the plugin's error line (%d bytes) is not in the log at ERROR with its message", len(line))
}
