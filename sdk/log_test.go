package sdk

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// The bridge (go-plugin) reads @level, @message and @timestamp, the last in
// one exact layout; a line it cannot parse is logged raw at debug.
func TestLogLinesAreInGoPluginsFormat(t *testing.T) {
	cases := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "trace"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelWarn, "warn"},
		{slog.LevelError, "error"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		log := slog.New(newLogHandler(&buf, slog.LevelDebug-4))
		log.Log(t.Context(), tc.level, "hello", "id", "orders-0-1", slog.Group("g", "k", "v"))
		var entry map[string]any
		if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
			t.Fatalf("%s: %v", buf.String(), err)
		}
		if entry["@level"] != tc.want || entry["@message"] != "hello" || entry["id"] != "orders-0-1" {
			t.Errorf("entry = %v, want level %s", entry, tc.want)
		}
		if g, _ := entry["g"].(map[string]any); g["k"] != "v" {
			t.Errorf("group = %v", entry["g"])
		}
		ts, _ := entry["@timestamp"].(string)
		if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
			t.Errorf("@timestamp %q: %v", ts, err)
		}
		for _, k := range []string{"level", "msg", "time"} {
			if _, ok := entry[k]; ok {
				t.Errorf("slog key %q left in %v", k, entry)
			}
		}
	}
}
