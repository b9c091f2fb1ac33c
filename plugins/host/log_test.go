package host

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
)

func TestSlogAdapter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", "enrich")
	h := newHCLogger(log).Named("testplugin").With("pid", 7)
	h.Trace("dropped below debug")
	h.Debug("d", "k", 1)
	h.Warn("w", "timestamp", "2026-01-01T00:00:00.000Z", "id", "t-0-1")
	h.Error("odd", "plugin", "/bin/x", "lonely")
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("lines = %v, want 3 (trace dropped)", lines)
	}
	want := []struct{ level, msg string }{{"DEBUG", "d"}, {"WARN", "w"}, {"ERROR", "odd"}}
	for i, l := range lines {
		if l["level"] != want[i].level || l["msg"] != want[i].msg || l["plugin"] != "enrich" || l["pid"] != float64(7) {
			t.Errorf("line %d = %v", i, l)
		}
	}
	if _, ok := lines[1]["timestamp"]; ok || lines[1]["id"] != "t-0-1" {
		t.Errorf("relayed line = %v: want go-plugin's timestamp dropped, other attributes kept", lines[1])
	}
	if lines[2]["extra"] != "lonely" || lines[2]["command"] != "/bin/x" || lines[2]["plugin"] != "enrich" {
		t.Errorf("odd argument = %v", lines[2])
	}
	if got := h.GetLevel(); got != hclog.Debug {
		t.Errorf("GetLevel = %v, want debug (what the handler takes)", got)
	}
	if !h.IsDebug() || h.IsTrace() {
		t.Error("IsDebug/IsTrace disagree with the handler")
	}
	if h.Name() != "testplugin" {
		t.Errorf("Name = %q", h.Name())
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string) { got = append(got, l) }}
	for _, s := range []string{"one\ntw", "o\r\n\nthr", "ee"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}
