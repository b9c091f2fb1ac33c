package host_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// A plugin that completes the handshake and then never answers the health
// check (its health service is stuck) fails to start within the start
// timeout: the call gets a retryable error, not its own context's end, the
// pool reports the failure, counts no start as in progress, and the process
// is stopped rather than left running without a parent.
func TestStartThatNeverAnswersTheHealthCheckFails(t *testing.T) {
	cfg := testConfig(testPlugin)
	// mark tells this test's processes from any other's.
	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	mark := "TESTPLUGIN_RUN=" + run
	cfg.Env = map[string]string{"TESTPLUGIN_HEALTH_HANG": "1", "TESTPLUGIN_RUN": run}
	cfg.StartTimeout = config.Duration(2 * time.Second)
	p, logs := newPool(t, cfg, host.Options{})
	// Far longer than the start timeout: a start the timeout does not
	// bound ends with this context instead.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	_, err := p.Deliver(ctx, delivery(1, "", nil))
	if err == nil || ctx.Err() != nil || target.KindOf(err) != target.Retryable ||
		!strings.Contains(err.Error(), "health check: no answer within 2s (plugins.enrich.start_timeout)") {
		t.Fatalf("Deliver: err = %v (kind %v, call's context: %v); want a retryable start failure naming the health check and start_timeout\n%s",
			err, target.KindOf(err), ctx.Err(), logs)
	}
	if s := p.Stats(); s.Starting != 0 || s.Instances != 0 {
		t.Errorf("stats = %+v, want no process started or starting", s)
	}
	if err := p.Health(); err == nil || !strings.Contains(err.Error(), "health check") {
		t.Errorf("Health = %v, want the start failure", err)
	}
	waitFor(t, "the process that failed its health check to be stopped", func() bool {
		return len(processesWithEnv(t, mark)) == 0
	})
}

// A plugin slow to start (one that loads a model before it serves, say)
// gets plugins.<name>.start_timeout for its handshake: within it the start
// succeeds, past it the error names the setting to raise.
func TestStartTimeoutIsTheConfigured(t *testing.T) {
	// The handshake comes a second after the process starts.
	slow := []string{"/bin/sh", "-c", "sleep 1; exec " + testPlugin}
	for _, tc := range []struct {
		timeout time.Duration
		want    string // in the error; "" = delivered
	}{
		{200 * time.Millisecond, "handshake: no answer within 200ms (plugins.enrich.start_timeout)"},
		{time.Minute, ""},
	} {
		t.Run(tc.timeout.String(), func(t *testing.T) {
			cfg := testConfig(slow...)
			cfg.StartTimeout = config.Duration(tc.timeout)
			p, logs := newPool(t, cfg, host.Options{})
			res, err := p.Deliver(t.Context(), delivery(1, "ack", []byte("v")))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Deliver: %v, want the record delivered within start_timeout %s\n%s", err, tc.timeout, logs)
			case tc.want == "" && (len(res.Outputs) != 1 || string(res.Outputs[0].Value) != "v"):
				t.Fatalf("result %+v, want the record's value back", res)
			case tc.want != "" && (err == nil || target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Deliver: err = %v (kind %v), want a retryable start failure with %q", err, target.KindOf(err), tc.want)
			}
		})
	}
}

// processesWithEnv lists the pids of the processes whose environment has
// the entry kv, zombies aside.
func processesWithEnv(t *testing.T, kv string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("cannot list processes in /proc: %v", err)
	}
	var pids []string
	for _, dir := range dirs {
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+kv+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		pids = append(pids, filepath.Base(dir))
	}
	return pids
}

// A plugin serving HandleStream itself that answers a call with its call_id
// alone (no response, no refusal) breaks the protocol: its handler may not
// have run, so the record is not delivered. The call fails as retryable,
// and the process, which is up, stays and serves the next call.
func TestStreamAnswerWithoutAResponseIsNotADelivery(t *testing.T) {
	p, logs := startOne(t, func(cfg *config.Plugin) {
		cfg.Env = map[string]string{"TESTPLUGIN_OWN_STREAM": "1"}
	})
	if s := p.Stats(); s.Streams != 1 {
		t.Fatalf("stats = %+v, want the process on its stream", s)
	}
	pid := p.PIDs()[0]
	res, err := p.Deliver(t.Context(), delivery(1, "no-answer", []byte("v")))
	if err == nil || target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "neither a response nor unavailable") {
		t.Fatalf("Deliver = %+v, %v (kind %v); want a retryable error naming the empty answer\n%s", res, err, target.KindOf(err), logs)
	}
	res, err = p.Deliver(t.Context(), delivery(2, "", []byte("v")))
	if err != nil {
		t.Fatalf("the next call: %v\n%s", err, logs)
	}
	if got := replyPID(t, res); got != pid {
		t.Errorf("the next call was answered by pid %d, want %d (the process was replaced)", got, pid)
	}
	if s := p.Stats(); s.Restarts != 0 {
		t.Errorf("stats = %+v, want no restart", s)
	}
}

// A Handle call that the plugin fails with the gRPC status CANCELED (its
// handler's own downstream call was canceled, say) is the call's retryable
// failure, as any other status is: the process that answered it is up and
// is not replaced, nor the call tried on process after process.
func TestHandlerCanceledStatusIsTheCallsFailure(t *testing.T) {
	p, logs := startOne(t, func(cfg *config.Plugin) {
		cfg.Env = map[string]string{"TESTPLUGIN_UNARY_ONLY": "1"}
	})
	pid := p.PIDs()[0]
	_, err := p.Deliver(t.Context(), delivery(1, "grpc-canceled", nil))
	if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "downstream call was canceled") {
		t.Fatalf("Deliver: err = %v (kind %v), want the handler's retryable failure\n%s", err, target.KindOf(err), logs)
	}
	res, err := p.Deliver(t.Context(), delivery(2, "", []byte("v")))
	if err != nil {
		t.Fatalf("the next call: %v\n%s", err, logs)
	}
	if got := replyPID(t, res); got != pid {
		t.Errorf("the next call was answered by pid %d, want %d (the process was replaced)", got, pid)
	}
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 {
		t.Errorf("stats = %+v, want the one process, no restart", s)
	}
}
