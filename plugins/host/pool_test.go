package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestDeliverCarriesTheRecordAcrossTheWire(t *testing.T) {
	p, _ := newPool(t, testConfig(testPlugin), host.Options{})
	ts := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	cases := []struct {
		name    string
		key     []byte
		keyNull bool
	}{
		{"with key", []byte("k-1"), false},
		{"null key", nil, true},
		{"empty key", []byte{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &target.Delivery{Route: "orders-enrich", Attempt: 3, Record: &target.Record{
				Topic: "orders", Partition: 2, Offset: 77, Key: tc.key, Value: []byte("v"), Timestamp: ts,
				Headers: []target.Header{{Key: "x-test", Value: []byte("describe")}, {Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}},
			}}
			res, err := p.Deliver(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}
			replyPID(t, res)
			var got struct {
				Topic     string
				Partition int32
				Offset    int64
				Key       []byte
				KeyNull   bool
				Value     []byte
				Headers   []struct{ Key, Value string }
				Timestamp time.Time
				Route     string
				Attempt   int
				ID        string
			}
			if err := json.Unmarshal(res.Outputs[0].Value, &got); err != nil {
				t.Fatal(err)
			}
			if got.Topic != "orders" || got.Partition != 2 || got.Offset != 77 || string(got.Value) != "v" ||
				!got.Timestamp.Equal(ts) || got.Route != "orders-enrich" || got.Attempt != 3 || got.ID != "orders-2-77" {
				t.Errorf("message = %+v", got)
			}
			if got.KeyNull != tc.keyNull || !bytes.Equal(got.Key, tc.key) {
				t.Errorf("key = %q (null %v), want %q (null %v)", got.Key, got.KeyNull, tc.key, tc.keyNull)
			}
			if len(got.Headers) != 3 || got.Headers[1].Key != "h" || got.Headers[2].Key != "h" {
				t.Errorf("headers = %+v, want x-test, h, h in order", got.Headers)
			}
			if res.Outputs[0].Key != nil {
				t.Errorf("output key = %q, want nil (the original key)", res.Outputs[0].Key)
			}
		})
	}
}

// A null value (a tombstone) and an empty one stay apart in both
// directions: the handler sees nil and empty, and an output it returns with
// a nil value is produced as null, one with an empty value as empty. Over
// the stream, packed or not, and over the unary call.
func TestDeliverKeepsNullAndEmptyValuesApart(t *testing.T) {
	for _, env := range []map[string]string{nil, {"TESTPLUGIN_UNARY_ONLY": "1"}} {
		cfg := testConfig(testPlugin)
		cfg.Env = env
		p, _ := newPool(t, cfg, host.Options{})
		for _, v := range [][]byte{nil, {}} {
			res, err := p.Deliver(t.Context(), delivery(1, "describe", v))
			if err != nil {
				t.Fatal(err)
			}
			var got struct{ ValueNull bool }
			if err := json.Unmarshal(res.Outputs[0].Value, &got); err != nil {
				t.Fatal(err)
			}
			if got.ValueNull != (v == nil) {
				t.Errorf("%v: value %q: the handler saw null = %v", env, v, got.ValueNull)
			}
			res, err = p.Deliver(t.Context(), delivery(2, "ack", v)) // replies with the value it got
			if err != nil {
				t.Fatal(err)
			}
			if out := res.Outputs[0].Value; (out == nil) != (v == nil) || len(out) != 0 {
				t.Errorf("%v: value %q (null %v) came back as %q (null %v)", env, v, v == nil, out, out == nil)
			}
		}
	}
}

func TestExamplePluginGo(t *testing.T) {
	t.Run("enrich", func(t *testing.T) {
		p, _ := newPool(t, testConfig(examplePlugin), host.Options{})
		res, err := p.Deliver(t.Context(), delivery(5, "", []byte(`{"order":42}`)))
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
		if got["order"] != float64(42) || got["enriched_by"] != "plugin-go" || got["source_id"] != "orders-1-5" {
			t.Errorf("reply = %v", got)
		}
		_, err = p.Deliver(t.Context(), delivery(6, "", []byte(`not json`)))
		if target.KindOf(err) != target.Permanent {
			t.Errorf("non-JSON value: err = %v (kind %v), want permanent", err, target.KindOf(err))
		}
		_, err = p.Deliver(t.Context(), delivery(7, "", []byte{}))
		if target.KindOf(err) != target.Permanent {
			t.Errorf("empty value: err = %v (kind %v), want permanent", err, target.KindOf(err))
		}
		// A tombstone is passed on as a tombstone, with the record's key.
		res, err = p.Deliver(t.Context(), delivery(8, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != 1 || res.Outputs[0].Value != nil || res.Outputs[0].Key != nil {
			t.Errorf("tombstone: outputs %+v, want one with a nil value and a nil key", res.Outputs)
		}
	})
	t.Run("ack only", func(t *testing.T) {
		cfg := testConfig(examplePlugin)
		cfg.Env = map[string]string{"ENRICH_ACK_ONLY": "1"}
		p, _ := newPool(t, cfg, host.Options{})
		res, err := p.Deliver(t.Context(), delivery(5, "", []byte(`{"order":42}`)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Outputs) != 0 {
			t.Errorf("outputs = %+v, want none", res.Outputs)
		}
	})
}

func TestHandlerErrorKinds(t *testing.T) {
	p, _ := newPool(t, testConfig(testPlugin), host.Options{})
	cases := []struct {
		behaviour  string
		kind       target.Kind
		retryAfter time.Duration
		message    string
	}{
		{"permanent", target.Permanent, 0, "plugin enrich: bad record"},
		{"retry-after:2s", target.Retryable, 2 * time.Second, "plugin enrich: slow down"},
		{"error", target.Retryable, 0, "plugin enrich: downstream unavailable"},
		{"panic", target.Retryable, 0, "handler panicked"},
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			res, err := p.Deliver(t.Context(), delivery(1, tc.behaviour, nil))
			if err == nil {
				t.Fatalf("result %+v, want an error", res)
			}
			if got := target.KindOf(err); got != tc.kind {
				t.Errorf("kind = %v, want %v (%v)", got, tc.kind, err)
			}
			if got := target.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("retry after = %v, want %v", got, tc.retryAfter)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", err, tc.message)
			}
		})
	}
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 {
		t.Errorf("stats %+v: handler errors (a panic included) must not cost a process", s)
	}
}

func TestCrashMidCallIsRetriedOnAnotherProcess(t *testing.T) {
	p, logs := newPool(t, testConfig(testPlugin), host.Options{})
	marker := filepath.Join(t.TempDir(), "crashed")
	res, err := p.Deliver(t.Context(), delivery(1, "crash-once:"+marker, []byte("v")))
	if err != nil {
		t.Fatalf("the crash must not be the handler's failure: %v", err)
	}
	crashed, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	if pid := replyPID(t, res); string(crashed) == strconv.Itoa(pid) {
		t.Fatalf("reply came from the process that crashed (%s)", crashed)
	}
	if s := p.Stats(); s.Restarts != 1 || s.Started != 2 {
		t.Errorf("stats = %+v, want 1 restart and 2 starts", s)
	}
	// The warning quotes the plain line the process wrote to its standard
	// error before it died, which the log has at debug level only, and not
	// its log lines, relayed at their own level.
	var died string
	waitFor(t, "the warning that the process died", func() bool {
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "plugin process died") {
				died = line
				return true
			}
		}
		return false
	})
	if !strings.Contains(died, `stderr_tail="Traceback: testplugin crashed on orders-1-1"`) || strings.Contains(died, "crashing once") {
		t.Errorf("warning %q: want the plain stderr line quoted, and no log line", died)
	}
}

func TestEveryCallSurvivesAKill9MidStream(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 2, Max: 2}
	cfg.ConcurrencyPerInstance = 4
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pids := p.PIDs()
	if len(pids) != 2 {
		t.Fatalf("pids = %v, want 2 after Start", pids)
	}
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = p.Deliver(t.Context(), delivery(int64(i), "sleep:100ms", []byte("v")))
		})
	}
	waitFor(t, "calls in flight on both processes", func() bool { return p.Stats().InFlight == 8 })
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	s := p.Stats()
	if s.Restarts < 1 {
		t.Errorf("stats = %+v, want the killed process counted as a restart", s)
	}
	if slices.Contains(p.PIDs(), pids[0]) {
		t.Errorf("killed pid %d still in the pool %v", pids[0], p.PIDs())
	}
}

func TestScaleToZeroAndColdStart(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 2}
	cfg.IdleTimeout = config.Duration(100 * time.Millisecond)
	p, _ := newPool(t, cfg, host.Options{})
	if s := p.Stats(); s.Instances != 0 {
		t.Fatalf("stats = %+v, want no process before the first record", s)
	}
	res, err := p.Deliver(t.Context(), delivery(1, "ack", []byte("a")))
	if err != nil {
		t.Fatal(err)
	}
	first := replyPID(t, res)
	if s := p.Stats(); s.Instances != 1 || s.ColdStarts != 1 {
		t.Fatalf("stats = %+v, want one instance from one cold start", s)
	}
	waitFor(t, "scale to zero", func() bool { return p.Stats().Instances == 0 })
	res, err = p.Deliver(t.Context(), delivery(2, "ack", []byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	if pid := replyPID(t, res); pid == first {
		t.Errorf("second call answered by pid %d, the process that was stopped", pid)
	}
	if s := p.Stats(); s.ColdStarts != 2 || s.ScaledDown != 1 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want 2 cold starts, 1 scale-down, no restart", s)
	}
}

func TestPoolGrowsUnderLoadAndShrinksWhenIdle(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 1, Max: 3}
	cfg.ConcurrencyPerInstance = 1
	cfg.IdleTimeout = config.Duration(200 * time.Millisecond)
	p, _ := newPool(t, cfg, host.Options{})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 12
	pids := make([]int, n)
	var wg sync.WaitGroup
	var peak int
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:150ms", []byte("v")))
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			mu.Lock()
			pids[i] = replyPID(t, res)
			peak = max(peak, p.Stats().Instances)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(pids)
	if distinct := slices.Compact(pids); len(distinct) != 3 {
		t.Errorf("calls were served by %d processes %v, want 3 (instances.max)", len(distinct), distinct)
	}
	s := p.Stats()
	if peak != 3 || s.Started != 3 || s.ColdStarts != 2 {
		t.Errorf("peak %d, stats %+v: want 3 instances, 3 starts of which 2 cold", peak, s)
	}
	waitFor(t, "shrink to instances.min", func() bool { return p.Stats().Instances == 1 })
	if s := p.Stats(); s.ScaledDown != 2 || s.Restarts != 0 {
		t.Errorf("stats = %+v, want 2 processes stopped for idleness and no restart", s)
	}
}

func TestChecksum(t *testing.T) {
	t.Run("mismatch refused", func(t *testing.T) {
		cfg := testConfig(testPlugin)
		cfg.SHA256 = strings.Repeat("ab", 32)
		_, err := host.New("enrich", cfg, host.Options{})
		if !errors.Is(err, host.ErrChecksumMismatch) {
			t.Fatalf("err = %v, want ErrChecksumMismatch", err)
		}
		sum := fileSum(t, testPlugin)
		for _, want := range []string{"plugin enrich", sum, cfg.SHA256, "plugins.enrich.sha256"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
	t.Run("match runs", func(t *testing.T) {
		cfg := testConfig(testPlugin)
		cfg.SHA256 = strings.ToUpper(fileSum(t, testPlugin))
		p, _ := newPool(t, cfg, host.Options{})
		if _, err := p.Deliver(t.Context(), delivery(1, "ack", nil)); err != nil {
			t.Fatal(err)
		}
	})
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestMessageLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 5_200_000)
	t.Run("record above the default limit", func(t *testing.T) {
		p, _ := newPool(t, testConfig(testPlugin), host.Options{})
		_, err := p.Deliver(t.Context(), delivery(1, "ack", big))
		if target.KindOf(err) != target.Permanent {
			t.Fatalf("err = %v (kind %v), want permanent", err, target.KindOf(err))
		}
		const want = "plugin enrich: record of 5.2 MB exceeds the 4 MiB message limit (plugins.enrich.max_message_bytes)"
		if err.Error() != want {
			t.Errorf("error = %q\nwant    %q", err, want)
		}
		if s := p.Stats(); s.Started != 0 {
			t.Errorf("stats = %+v: a record refused by size must not start a process", s)
		}
	})
	t.Run("reply above the limit", func(t *testing.T) {
		p, _ := newPool(t, testConfig(testPlugin), host.Options{})
		_, err := p.Deliver(t.Context(), delivery(1, "big-reply:5000000", nil))
		if target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), "plugins.enrich.max_message_bytes") {
			t.Fatalf("err = %v (kind %v), want a permanent error naming the limit", err, target.KindOf(err))
		}
	})
	t.Run("outputs above max_outputs", func(t *testing.T) {
		cfg := testConfig(testPlugin)
		cfg.MaxOutputs = 3
		p, _ := newPool(t, cfg, host.Options{})
		if res, err := p.Deliver(t.Context(), delivery(1, "outputs:3", nil)); err != nil || len(res.Outputs) != 3 {
			t.Fatalf("3 outputs: %v, %v; want them", res, err)
		}
		_, err := p.Deliver(t.Context(), delivery(2, "outputs:4", nil))
		const want = "plugin enrich: the answer has 4 outputs, more than 3 (plugins.enrich.max_outputs)"
		if target.KindOf(err) != target.Permanent || err.Error() != want {
			t.Fatalf("4 outputs: %v (kind %v), want permanent %q", err, target.KindOf(err), want)
		}
		if s := p.Stats(); s.Restarts != 0 {
			t.Errorf("stats = %+v: an answer with too many outputs is the handler's failure, not the process's", s)
		}
	})
	t.Run("raised limit carries both ways", func(t *testing.T) {
		cfg := testConfig(testPlugin)
		cfg.MaxMessageBytes = 8 << 20
		p, _ := newPool(t, cfg, host.Options{})
		res, err := p.Deliver(t.Context(), delivery(1, "ack", big))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Outputs[0].Value, big) {
			t.Errorf("reply of %d bytes, want the %d-byte record back", len(res.Outputs[0].Value), len(big))
		}
	})
}

func TestTimeoutIsRetryableAndTheNextCallWorks(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 1}
	cfg.ConcurrencyPerInstance = 1
	cfg.Timeout = config.Duration(300 * time.Millisecond)
	p, _ := newPool(t, cfg, host.Options{})
	_, err := p.Deliver(t.Context(), delivery(1, "hang", nil))
	if target.KindOf(err) != target.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (kind %v), want a retryable deadline error", err, target.KindOf(err))
	}
	if want := "no answer within 300ms (plugins.enrich.timeout)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if _, err := p.Deliver(t.Context(), delivery(2, "ack", nil)); err != nil {
		t.Fatalf("call after the timeout: %v", err)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("stats = %+v: a timeout is not a crash", s)
	}
}

// A process whose calls keep running out of time, none answered in between,
// is taken as hung and replaced after three; one timeout between answers is
// not (TestTimeoutIsRetryableAndTheNextCallWorks).
func TestHungProcessIsReplaced(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 1}
	cfg.ConcurrencyPerInstance = 1
	cfg.Timeout = config.Duration(200 * time.Millisecond)
	p, _ := newPool(t, cfg, host.Options{})
	pidOf := func(offset int64) int {
		t.Helper()
		res, err := p.Deliver(t.Context(), delivery(offset, "ack", nil))
		if err != nil {
			t.Fatalf("ack %d: %v", offset, err)
		}
		return replyPID(t, res)
	}
	first := pidOf(1)
	for i := range 2 {
		if _, err := p.Deliver(t.Context(), delivery(int64(10+i), "hang", nil)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hang %d: %v", i, err)
		}
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Fatalf("replaced after two timeouts: %+v", s)
	}
	if pid := pidOf(2); pid != first {
		t.Fatalf("an answer between timeouts: process %d, want %d still", pid, first)
	}
	for i := range 3 {
		if _, err := p.Deliver(t.Context(), delivery(int64(20+i), "hang", nil)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hang %d: %v", i, err)
		}
	}
	waitFor(t, "the hung process to be replaced", func() bool { return p.Stats().Restarts == 1 })
	if pid := pidOf(3); pid == first {
		t.Fatalf("process %d still answers after three timeouts in a row", pid)
	}
}

func TestCanceledCallIsCanceled(t *testing.T) {
	p, _ := newPool(t, testConfig(testPlugin), host.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		waitFor(t, "the call in flight", func() bool { return p.Stats().InFlight == 1 })
		cancel()
	}()
	_, err := p.Deliver(ctx, delivery(1, "sleep:1m", nil))
	if target.KindOf(err) != target.Canceled {
		t.Fatalf("err = %v (kind %v), want canceled", err, target.KindOf(err))
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("stats = %+v: a cancellation is not a crash", s)
	}
}

// A call still waiting for a slot (or for a process to start) when the bridge
// begins to shut down was not sent: it ends at once, canceled (redelivered
// after restart, not counted by the breaker), instead of keeping the drain
// waiting until the shutdown timeout. The call in flight keeps running.
func TestCallWaitingForASlotEndsWhenStopping(t *testing.T) {
	cfg := testConfig(testPlugin)
	cfg.Instances = config.Instances{Min: 0, Max: 1}
	cfg.ConcurrencyPerInstance = 1
	p, _ := newPool(t, cfg, host.Options{})
	inFlight, cancelInFlight := context.WithCancel(t.Context())
	defer cancelInFlight()
	first := make(chan error, 1)
	go func() { _, err := p.Deliver(inFlight, delivery(1, "sleep:1m", nil)); first <- err }()
	waitFor(t, "the first call in flight", func() bool { return p.Stats().InFlight == 1 })

	stop := make(chan struct{})
	second := make(chan error, 1)
	go func() {
		_, err := p.Deliver(dispatch.WithStop(t.Context(), stop), delivery(2, "ack", nil))
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("the second call ended before the stop: %v", err)
	case err := <-first:
		t.Fatalf("the first call ended: %v", err)
	case <-time.After(200 * time.Millisecond): // it waits for the only slot
	}
	close(stop)
	err := <-second
	if target.KindOf(err) != target.Canceled || !errors.Is(err, dispatch.ErrStopping) {
		t.Fatalf("waiting call after the stop: %v (kind %v), want canceled, stopping", err, target.KindOf(err))
	}
	select {
	case err := <-first:
		t.Fatalf("the call in flight ended with the stop: %v", err)
	default:
	}
}

func TestCloseWaitsForCallsInFlightThenStopsProcesses(t *testing.T) {
	p, _ := newPool(t, testConfig(testPlugin), host.Options{})
	type outcome struct {
		res *target.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := p.Deliver(t.Context(), delivery(1, "sleep:300ms", []byte("v")))
		done <- outcome{res, err}
	}()
	waitFor(t, "the call in flight", func() bool { return p.Stats().InFlight == 1 })
	pids := p.PIDs()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Had Close not waited for it, the call would have lost its process
	// and failed (the pool is closed: no other process to retry on). Its
	// goroutine may hand the outcome over just after Close returned.
	if o := <-done; o.err != nil {
		t.Fatalf("call in flight during Close: %v", o.err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	if _, err := p.Deliver(t.Context(), delivery(2, "ack", nil)); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Deliver after Close: %v, want ErrClosed", err)
	}
}

func TestSIGTERMLetsTheCallInFlightFinish(t *testing.T) {
	p, logs := startOne(t, nil)
	pid := p.PIDs()[0]
	done := make(chan error, 1)
	go func() {
		res, err := p.Deliver(t.Context(), delivery(1, "sleep:300ms", nil))
		if err == nil && replyPID(t, res) != pid {
			err = errors.New("answered by another process")
		}
		done <- err
	}()
	waitFor(t, "the handler running", func() bool { return strings.Contains(logs.String(), "testplugin sleeping") })
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("call in flight at SIGTERM: %v", err)
	}
	waitFor(t, "the stopped process replaced", func() bool {
		pids := p.PIDs()
		return len(pids) == 1 && pids[0] != pid
	})
	if _, err := p.Deliver(t.Context(), delivery(2, "ack", nil)); err != nil {
		t.Fatal(err)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("HOOKBRIDGE_TEST_SECRET", "s3cret")
	t.Setenv("OTEL_TEST_ATTRIBUTE", "passed")
	cfg := testConfig(testPlugin)
	cfg.Env = map[string]string{"GREETING": "hello", "OTEL_TEST_ATTRIBUTE": "configured"}
	p, _ := newPool(t, cfg, host.Options{Env: map[string]string{"FROM_BRIDGE": "yes"}})
	cases := map[string]string{
		"HOOKBRIDGE_TEST_SECRET":              "", // the bridge's environment stays in the bridge
		"GREETING":                            "hello",
		"FROM_BRIDGE":                         "yes",
		"OTEL_TEST_ATTRIBUTE":                 "configured", // configured env wins over the bridge's
		"HOOKBRIDGE_PLUGIN_NAME":              "enrich",
		"HOOKBRIDGE_PLUGIN_MAX_MESSAGE_BYTES": "4194304",
		"PATH":                                os.Getenv("PATH"),
	}
	for name, want := range cases {
		res, err := p.Deliver(t.Context(), delivery(1, "env:"+name, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.Outputs[0].Value); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// A plugin's log lines reach the bridge's log at their level, with
// plugin=<name> and their own attributes. A line the handler logs with its
// call's ctx carries the trace_id and span_id of the delivery it serves, as
// the bridge's own lines do: one search finds both sides of a delivery.
func TestPluginLogLinesReachTheBridgeLog(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)

	p, logs := newPool(t, testConfig(testPlugin), host.Options{})
	if _, err := p.Deliver(ctx, delivery(9, "log", nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin's log line", func() bool { return strings.Contains(logs.String(), "testplugin log line") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "testplugin log line") {
			// The span is the one the handler runs under: the bridge's
			// client span of the call when a provider records spans (another
			// test of the package may have set one), else the caller's.
			for _, want := range []string{"level=INFO", "plugin=enrich", "id=orders-1-9",
				"trace_id=" + sc.TraceID().String(), "span_id="} {
				if !strings.Contains(line, want) {
					t.Errorf("log line %q lacks %q", line, want)
				}
			}
		}
	}
}

// A pool is healthy scaled to zero and while it runs a process; it is not
// after a start failed with no process running, and is again once a start
// succeeds.
func TestHealth(t *testing.T) {
	dir := t.TempDir()
	cmd := filepath.Join(dir, "plugin")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\necho not a plugin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, _ := newPool(t, testConfig(cmd), host.Options{})
	if err := p.Health(); err != nil {
		t.Fatalf("a pool scaled to zero: Health = %v", err)
	}
	if _, err := p.Deliver(t.Context(), delivery(1, "", nil)); err == nil {
		t.Fatal("a call to a plugin that does not start succeeded")
	}
	if err := p.Health(); err == nil {
		t.Fatal("Health = nil after the plugin failed to start")
	}
	// The binary is fixed in place (a new image, a mounted volume).
	real, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cmd+".new", real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cmd+".new", cmd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a call after the fix", func() bool {
		_, err := p.Deliver(t.Context(), delivery(2, "", nil))
		return err == nil
	})
	if err := p.Health(); err != nil {
		t.Fatalf("Health = %v with the plugin running", err)
	}
}

func TestStartFailure(t *testing.T) {
	notAPlugin := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(notAPlugin, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("deliver", func(t *testing.T) {
		p, _ := newPool(t, testConfig(notAPlugin), host.Options{})
		_, err := p.Deliver(t.Context(), delivery(1, "", nil))
		if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "plugin enrich: start") {
			t.Fatalf("err = %v (kind %v), want a retryable start error", err, target.KindOf(err))
		}
		if s := p.Stats(); s.StartFailures != 1 || s.Instances != 0 {
			t.Errorf("stats = %+v", s)
		}
		if err := p.Health(); err == nil || !strings.Contains(err.Error(), "cannot start: plugin enrich: start") {
			t.Errorf("Health = %v, want the start error", err)
		}
	})
	t.Run("factory with min 1", func(t *testing.T) {
		cfg := testConfig(notAPlugin)
		cfg.Instances = config.Instances{Min: 1, Max: 1}
		_, err := host.Factory(t.Context(), host.Options{})("enrich", cfg)
		if err == nil || !strings.Contains(err.Error(), "plugin enrich") {
			t.Fatalf("err = %v, want the start error", err)
		}
	})
	t.Run("missing command", func(t *testing.T) {
		_, err := host.New("enrich", testConfig(filepath.Join(t.TempDir(), "missing")), host.Options{})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("err = %v", err)
		}
	})
}

// A plugin that fails to start often says why on its standard error before
// it exits (a Python traceback, a shell's "not found", a configuration
// error printed as plain text). Such a line reaches the bridge's log only
// at debug level, below the default: the start error, which the log, Health
// (/readyz) and a failing `hookbridge run` show, quotes it.
func TestStartFailureQuotesWhatThePluginWroteToStderr(t *testing.T) {
	script := filepath.Join(t.TempDir(), "plugin")
	body := "#!/bin/sh\necho 'starting' >&2\necho \"ModuleNotFoundError: No module named 'grpc'\" >&2\nexit 2\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p, _ := newPool(t, testConfig(script), host.Options{})
	_, err := p.Deliver(t.Context(), delivery(1, "", nil))
	if err == nil || target.KindOf(err) != target.Retryable {
		t.Fatalf("err = %v (kind %v), want a retryable start error", err, target.KindOf(err))
	}
	const said = "No module named 'grpc'"
	if !strings.Contains(err.Error(), said) {
		t.Errorf("start error %q does not quote the plugin's %q", err, said)
	}
	if h := p.Health(); h == nil || !strings.Contains(h.Error(), said) {
		t.Errorf("Health = %v, want it to quote the plugin's %q", h, said)
	}
}
