package host_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// TestPythonPlugin runs examples/plugin-python, a plugin that is not built
// on the Go SDK, through the same host: handshake, AutoMTLS, health check,
// the handler proto, error kinds, shutdown. It needs a Python with the
// example's requirements installed:
//
//	python3 -m venv /tmp/pyvenv
//	/tmp/pyvenv/bin/pip install -r examples/plugin-python/requirements.txt
//	HOOKBRIDGE_TEST_PYTHON=/tmp/pyvenv/bin/python go test ./plugins/host/
func TestPythonPlugin(t *testing.T) {
	cfg := pythonConfig(t)
	cfg.Instances = config.Instances{Min: 1, Max: 2}
	p, logs := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	for i, key := range [][]byte{[]byte("k"), nil} {
		d := delivery(int64(10+i), "", []byte(`{"order":42}`))
		d.Record.Key = key
		res, err := p.Deliver(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != 1 {
			t.Fatalf("outputs = %+v, want one", res.Outputs)
		}
		var got map[string]any
		if err := json.Unmarshal(res.Outputs[0].Value, &got); err != nil {
			t.Fatal(err)
		}
		if got["order"] != float64(42) || got["enriched_by"] != "plugin-python" || got["source_id"] != d.Record.ID() {
			t.Errorf("reply = %v", got)
		}
		if res.Outputs[0].Key != nil {
			t.Errorf("output key = %q, want nil (the original key)", res.Outputs[0].Key)
		}
	}

	// A tombstone is passed on as a tombstone with the record's key; an
	// empty value is not JSON.
	res, err := p.Deliver(t.Context(), delivery(12, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Value != nil || res.Outputs[0].Key != nil {
		t.Errorf("tombstone: outputs %+v, want one with a nil value and a nil key", res.Outputs)
	}
	if _, err := p.Deliver(t.Context(), delivery(15, "", []byte{})); target.KindOf(err) != target.Permanent {
		t.Errorf("empty value: err = %v, want permanent", err)
	}

	// The largest trace context a record can pass on (a tracestate the
	// bridge shortens to 512 characters, baggage it cuts to 4,096 bytes)
	// goes in the call's gRPC metadata.
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(telemetry.RecordPropagator)
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })
	ctx, sc := telemetry.ExtractRecord(t.Context(), largeTraceContext(t))
	if n := len(baggage.FromContext(ctx).String()); !sc.IsValid() || n > telemetry.MaxBaggage || n < telemetry.MaxBaggage-200 {
		t.Fatalf("trace context %v, baggage of %d bytes", sc, len(baggage.FromContext(ctx).String()))
	}
	if _, err := p.Deliver(ctx, delivery(20, "", []byte(`{"order":43}`))); err != nil {
		t.Errorf("a call with the largest trace context: %v", err)
	}
	// Its log line about the record carries the call's trace, as the
	// bridge's lines do.
	waitFor(t, "the plugin's line about orders-1-20", func() bool { return strings.Contains(logs.String(), "id=orders-1-20") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "id=orders-1-20") && !strings.Contains(line, "trace_id="+sc.TraceID().String()) {
			t.Errorf("plugin's line %q: want trace_id=%s", line, sc.TraceID())
		}
	}

	// Members go out as they came: json.loads would turn 1e400 into inf,
	// written back as Infinity, which is not JSON.
	res, err = p.Deliver(t.Context(), delivery(14, "", []byte(`{"x":1e400,"big":123456789012345678901234567890,"f":1.50,"s":"\u00e9\ud800","n":[-0,{"t":true,"z":null}]}`)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"x":1e400,"big":123456789012345678901234567890,"f":1.50,"s":"\u00e9\ud800","n":[-0,{"t":true,"z":null}],"enriched_by":"plugin-python","source_id":"orders-1-14"}`
	if len(res.Outputs) != 1 || string(res.Outputs[0].Value) != want {
		t.Errorf("outputs = %+v, want the value %s", res.Outputs, want)
	}

	for i, bad := range []string{
		`not json`,
		`{"a":NaN}`,       // json.loads takes these by default
		`{"a":-Infinity}`, // and they are not JSON
		`[1]`,
		"\xff",
		strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000), // past Python's recursion limit
		strings.Repeat(`{"a":`, 900) + "1" + strings.Repeat("}", 900),         // decodes, too deep to encode
	} {
		off := int64(30 + i)
		_, err = p.Deliver(t.Context(), delivery(off, "", []byte(bad)))
		prefix := fmt.Sprintf("plugin enrich: plugin-python: orders-1-%d is ", off)
		if target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), prefix) {
			t.Errorf("%.20q: err = %v (kind %v), want the handler's permanent error", bad, err, target.KindOf(err))
		}
	}

	_, err = p.Deliver(t.Context(), delivery(13, "", make([]byte, 5_200_000)))
	if target.KindOf(err) != target.Permanent {
		t.Errorf("5.2 MB record: err = %v, want permanent", err)
	}

	waitFor(t, "the plugin's log line", func() bool { return strings.Contains(logs.String(), `msg=serving`) })
	// The example serves Handle only: the host found no HandleStream and
	// made a Handle call per record.
	if s := p.Stats(); s.Restarts != 0 || s.Streams != 0 {
		t.Errorf("stats = %+v, want no restart and no stream", s)
	}
}

// pythonConfig is the test config of examples/plugin-python, run by the
// interpreter HOOKBRIDGE_TEST_PYTHON names. Without one it skips the test,
// except in the end-to-end tier (HOOKBRIDGE_E2E=1), where that is a failure.
func pythonConfig(t *testing.T) config.Plugin {
	t.Helper()
	python := os.Getenv("HOOKBRIDGE_TEST_PYTHON")
	if python == "" {
		msg := "HOOKBRIDGE_TEST_PYTHON is not set: set it to a Python interpreter with examples/plugin-python/requirements.txt installed to run the Python plugin (the e2e tier does)"
		if os.Getenv("HOOKBRIDGE_E2E") == "1" {
			t.Fatal("HOOKBRIDGE_E2E=1 but " + msg)
		}
		t.Skip(msg)
	}
	script, err := filepath.Abs("../../examples/plugin-python/plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	return testConfig(python, script)
}

// envPythonHost, set to a run id, makes the test binary the host of
// TestPythonPluginExitsWhenItsHostDies instead of the test.
const envPythonHost = "HOOKBRIDGE_TEST_PYTHON_HOST"

// A bridge killed with SIGKILL (a crash, the OOM killer) cannot stop its
// plugins. The Python example, like a plugin on the Go SDK, notices that
// its parent is gone and exits rather than live on as an orphan holding its
// connections. The host is this test binary run again, which the test
// kills; the plugin's environment marks it as this run's.
func TestPythonPluginExitsWhenItsHostDies(t *testing.T) {
	if run := os.Getenv(envPythonHost); run != "" {
		hostPythonPlugin(t, run)
		return
	}
	pythonConfig(t) // skips without Python
	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	mark := "PLUGIN_PYTHON_TEST_RUN=" + run

	// The host serves until its standard input closes: should this test
	// die, the host stops the plugin and exits.
	stdin, keepOpen, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	h := exec.Command(os.Args[0], "-test.run=^TestPythonPluginExitsWhenItsHostDies$")
	h.Env = append(os.Environ(), envPythonHost+"="+run)
	h.Stdin, h.Stdout, h.Stderr = stdin, out, out
	h.WaitDelay = 10 * time.Second // Wait returns even if something held on to the output
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close()
	exited := make(chan struct{})
	go func() {
		_ = h.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = keepOpen.Close()
		_ = h.Process.Kill()
		<-exited
		// Should the test fail, leave no plugin behind.
		for _, pid := range processesWithEnv(t, mark) {
			if n, err := strconv.Atoi(pid); err == nil {
				if proc, err := os.FindProcess(n); err == nil {
					_ = proc.Kill()
				}
			}
		}
	})

	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "plugin started\n") {
		select {
		case <-exited:
			t.Fatalf("the host exited before it started the plugin:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the host to start the plugin:\n%s", out)
		}
	}
	pids := processesWithEnv(t, mark)
	if len(pids) != 1 {
		t.Fatalf("processes of the plugin: %v, want one", pids)
	}
	if err := h.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited

	// The plugin checks its parent every second and then has no call in
	// flight to wait for: the deadline is for a plugin that never exits.
	deadline = time.Now().Add(time.Minute)
	for len(processesWithEnv(t, mark)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin (pid %s) still runs a minute after its host was killed", pids[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostPythonPlugin is the host of TestPythonPluginExitsWhenItsHostDies: it
// starts one process of the plugin, marked with run, says so on stdout, and
// serves until its stdin closes or it is killed.
func hostPythonPlugin(t *testing.T, run string) {
	cfg := pythonConfig(t)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	cfg.Env = map[string]string{"PLUGIN_PYTHON_TEST_RUN": run}
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("plugin started")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// largeTraceContext returns record headers with a valid traceparent, a
// tracestate of 32 entries of 250 characters, and baggage of about 8,100
// bytes (the most W3C Baggage has a platform propagate is 8,192), which
// the bridge cuts down to MaxBaggage.
func largeTraceContext(t *testing.T) []target.Header {
	t.Helper()
	var state, bag []string
	for i := range 32 {
		state = append(state, fmt.Sprintf("v%02d=%s", i, strings.Repeat("s", 246)))
	}
	for i := range 60 {
		bag = append(bag, fmt.Sprintf("k%02d=%s", i, strings.Repeat("b", 130)))
	}
	return []target.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "tracestate", Value: []byte(strings.Join(state, ","))},
		{Key: "baggage", Value: []byte(strings.Join(bag, ","))},
	}
}
