package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// jsonKeys returns the top-level keys of one JSON object, in order and
// with repeats (a map would hide a key written twice), and the object.
func jsonKeys(t *testing.T, line []byte) ([]string, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not a JSON object (%v)", line, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(line, &obj); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return keys, obj
}

// A handler's own attributes named like slog's built-in keys ("time",
// "level", "msg") are ordinary attributes: logging one must neither panic
// (a "time" that is not a time.Time) nor replace the line's @timestamp,
// @level or @message, which the bridge reads to relay the line at its level.
func TestLoggerKeepsAttributesNamedLikeSlogsKeys(t *testing.T) {
	for name, logIt := range map[string]func(*slog.Logger){
		"record": func(l *slog.Logger) {
			l.Error("write failed", "time", 12*time.Millisecond, "level", 3, "msg", "from the handler")
		},
		"inlined group": func(l *slog.Logger) {
			l.Error("write failed", slog.Group("", "time", 12*time.Millisecond, "level", 3, "msg", "from the handler"))
		},
		"With": func(l *slog.Logger) {
			l.With("time", 12*time.Millisecond, "level", 3, "msg", "from the handler").Error("write failed")
		},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(newLogHandler(&buf, slog.LevelDebug))
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("logging panicked: %v", p)
					}
				}()
				logIt(l)
			}()
			keys, obj := jsonKeys(t, buf.Bytes())
			seen := map[string]int{}
			for _, k := range keys {
				seen[k]++
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("key %q written %d times in %s", k, n, buf.Bytes())
				}
			}
			if obj["@level"] != "error" || obj["@message"] != "write failed" {
				t.Errorf("@level %v, @message %v; want error, \"write failed\" (line %s)", obj["@level"], obj["@message"], buf.Bytes())
			}
			if obj["time"] != "12ms" && obj["time"] != float64(12*time.Millisecond) {
				t.Errorf("time = %v, want the handler's 12ms (line %s)", obj["time"], buf.Bytes())
			}
			if obj["level"] != float64(3) || obj["msg"] != "from the handler" {
				t.Errorf("level %v, msg %v; want the handler's 3 and \"from the handler\" (line %s)", obj["level"], obj["msg"], buf.Bytes())
			}
			if _, err := time.Parse(hclogTimeFormat, fmt.Sprint(obj["@timestamp"])); err != nil {
				t.Errorf("@timestamp: %v (line %s)", err, buf.Bytes())
			}
		})
	}
	// Inside a group the names are free as they always were.
	var buf bytes.Buffer
	slog.New(newLogHandler(&buf, slog.LevelDebug)).WithGroup("g").Info("hello", "time", "soon")
	if _, obj := jsonKeys(t, buf.Bytes()); obj["@message"] != "hello" || obj["g"].(map[string]any)["time"] != "soon" {
		t.Errorf("grouped: %s", buf.Bytes())
	}
}

// syncBuf is a log destination written from handler goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

// The consequence through the wire: a handler that wrote its record and
// logs how long it took under "time" must be answered as delivered, not
// fail (every attempt, for ever) with a panic from the SDK's logger.
func TestHandlerLoggingATimeAttributeIsDelivered(t *testing.T) {
	out := &syncBuf{}
	log := slog.New(newLogHandler(out, slog.LevelDebug))
	_, st := openStream(t, HandlerFunc(func(ctx context.Context, msg *Message) (*Result, error) {
		start := time.Now()
		res, err := echoID(msg)
		log.InfoContext(ctx, "written", "id", msg.ID, "time", time.Since(start))
		return res, err
	}), protocol.DefaultMaxMessageBytes)
	recvReady(t, st)
	send(t, st, streamCall(1))
	m := recv(t, st)
	if e := m.GetResponse().GetError(); e != nil {
		t.Fatalf("answer = %v, want delivered (kind %v)", m, e.GetKind())
	}
	if v := outputValue(t, m); v != "t-0-1" {
		t.Errorf("output %q", v)
	}
}
