package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// The debug line about a record's content-type names the record as every
// other line about a record does (record=<webhook-id>): it named none, so a
// search for the record's id missed why its receiver got the default
// content-type.
func TestHeaderDebugLineNamesTheRecord(t *testing.T) {
	srv, reqs := receiver(t, nil)
	var logs bytes.Buffer
	tg := newTarget(t, srv.URL, func(o *Options) { o.Logger = telemetry.NewLogger(&logs, "json", "debug") })
	rec := record()
	rec.Headers = []target.Header{{Key: "content-type", Value: []byte("text/plain\x01")}}
	if _, err := deliver(t, t.Context(), tg, rec); err != nil {
		t.Fatal(err)
	}
	next(t, reqs)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["record"] != rec.ID() {
		t.Errorf("line = %v, want record=%s", m, rec.ID())
	}
}
