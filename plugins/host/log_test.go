package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
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

// A plugin's log line may carry attributes named as the bridge's line
// names its own (time, level, msg, plugin) or as go-plugin's renamed
// "plugin" (command): each key of the relayed line is there once, the
// plugin's own value under arg.<name>. The line named them twice, a JSON
// object that log stores refusing duplicate keys drop.
func TestSlogAdapterRelayedKeysOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("plugin", "enrich")
	h := newHCLogger(log).Named("enrich").With("pid", 7)
	h.Info("relayed", "msg", "theirs", "time", "noon", "level", "high", "plugin", "/bin/enrich",
		"command", "theirs too", "pid", 8, "timestamp", "2026-01-01T00:00:00.000Z", "k", "v")
	line := strings.TrimSpace(buf.String())
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		if _, dup := got[key]; dup {
			t.Errorf("key %q twice in %s", key, line)
		}
		got[key] = v
	}
	want := map[string]any{"msg": "relayed", "level": "INFO", "plugin": "enrich", "pid": float64(7),
		"arg.msg": "theirs", "arg.time": "noon", "arg.level": "high", "command": "/bin/enrich",
		"arg.command": "theirs too", "arg.pid": float64(8), "k": "v"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v, in %s", k, got[k], v, line)
		}
	}
	if _, ok := got["timestamp"]; ok {
		t.Errorf("go-plugin's timestamp kept: %s", line)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string, cut bool) {
		if cut {
			t.Errorf("line %q marked as cut", l)
		}
		got = append(got, l)
	}}
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

// A plugin that writes to stdout without ending its line must not grow the
// bridge's memory with it: the writer holds at most maxLine bytes of a line
// and emits a longer one in pieces, each marked as cut but the last, that
// together are the line.
func TestLineWriterCutsALongLine(t *testing.T) {
	for _, chunk := range []int{1 << 10, 1 << 20} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			type piece struct {
				line string
				cut  bool
			}
			var got []piece
			w := &lineWriter{emit: func(l string, cut bool) { got = append(got, piece{l, cut}) }}
			var in bytes.Buffer
			for i := range 2 << 20 / chunk {
				// Each chunk is unlike the others, so that a piece
				// emitted twice, or lost, shows in the sum.
				p := bytes.Repeat(fmt.Appendf(nil, "%07d,", i), chunk/8)
				if _, err := w.Write(p); err != nil {
					t.Fatal(err)
				}
				in.Write(p)
				if len(w.buf) > maxLine {
					t.Fatalf("after %d bytes without a newline the writer holds %d, more than %d", in.Len(), len(w.buf), maxLine)
				}
			}
			if _, err := w.Write([]byte("end\nnext")); err != nil {
				t.Fatal(err)
			}
			in.WriteString("end")
			w.Flush()

			if n := len(got); n < 2 || got[n-1] != (piece{"next", false}) {
				t.Fatalf("%d pieces, want the long line's and then the next line, not cut", n)
			}
			got = got[:len(got)-1]
			var sum strings.Builder
			for i, p := range got {
				if last := i == len(got)-1; p.cut == last || len(p.line) > maxLine {
					t.Errorf("piece %d of %d: %d bytes, cut %v; want at most %d bytes, cut unless it is the last", i, len(got), len(p.line), p.cut, maxLine)
				}
				sum.WriteString(p.line)
			}
			if sum.String() != in.String() {
				t.Errorf("the pieces make %d bytes that are not the %d written", sum.Len(), in.Len())
			}
		})
	}
}
