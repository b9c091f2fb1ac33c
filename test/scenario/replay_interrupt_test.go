package scenario

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// A replay stopped by SIGINT says how far it got and exits 0, as run does
// when a signal stops it; what it committed is committed, and the next
// replay sends the rest, the delivery the signal cut short included.
func TestDeadLetterReplayInterrupted(t *testing.T) {
	b := newBroker(t)
	source, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, source, 1)
	b.CreateTopic(t, dlq, 1)

	rcv := newReplayReceiver(t)

	b.Produce(t, dlq, deadLetters(source, "first", "second", "third"))
	// Attempts that never run out: "second" gets no outcome (a webhook
	// timeout is retried) until the signal, however long that takes.
	cfg := b.config(t, routeSpec{Topic: source, DLQ: dlq, Group: group, URL: rcv.URL, MaxAttempts: 1 << 30})

	cmd, stdout, exited := startReplay(t, cfg)

	// Records are replayed one at a time, so once "second" arrived "first"
	// was delivered and its offset marked.
	waitFor(t, time.Minute, `"second" at the receiver`, func() bool { return slices.Contains(rcv.received(), "second") })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute): // a hang guard only
		t.Fatal("dlq replay did not exit after SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGINT, want 0 (as run)", code)
	}
	out := stdout.String()
	for _, want := range []string{
		"dlq replay of route scenario interrupted",
		"2 read, replayed 2, 1 delivered, 0 dead-lettered again, 0 left in place",
		"committed (partition:next offset): 0:1\n",
		"1 record(s) were being delivered when it stopped",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("stdout does not say %q:\n%s", want, out)
		}
	}
	replayGroup := group + ".replay"
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != 1 {
		t.Fatalf("replay group committed %d after the interruption, want 1 (past \"first\" only)", got)
	}

	// The next replay starts at "second".
	rcv.release()
	out = replayCmd(t, cfg)
	if !strings.Contains(out, "2 read, replayed 2, 2 delivered") {
		t.Fatalf("replay after the interruption:\n%s", out)
	}
	if got := rcv.received(); !slices.Equal(got[len(got)-2:], []string{"second", "third"}) {
		t.Fatalf("receiver got %q, want it to end with [second third]", got)
	}
	if got := b.Committed(t, replayGroup, dlq, 1)[0]; got != 3 {
		t.Fatalf("replay group committed %d, want 3", got)
	}
}

// deadLetters are dead-letter records of route "scenario", one for each of
// values, as if dead-lettered from offsets 0, 1, ... of partition 0 of
// source.
func deadLetters(source string, values ...string) []testkit.Message {
	var msgs []testkit.Message
	for i, v := range values {
		msgs = append(msgs, testkit.Message{Value: []byte(v), Headers: []sarama.RecordHeader{
			{Key: []byte("hookbridge-error-route"), Value: []byte("scenario")},
			{Key: []byte("hookbridge-error-topic"), Value: []byte(source)},
			{Key: []byte("hookbridge-error-partition"), Value: []byte("0")},
			{Key: []byte("hookbridge-error-offset"), Value: []byte(strconv.Itoa(i))},
			{Key: []byte("hookbridge-error-kind"), Value: []byte("permanent")},
		}})
	}
	return msgs
}

// startReplay starts `hookbridge dlq replay` of route "scenario" under cfg;
// exited is closed once it exited. It is killed at the end of the test if
// it still runs, and its output logged if the test failed.
func startReplay(t *testing.T, cfg string) (cmd *exec.Cmd, stdout *testkit.LockedBuffer, exited <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(bridgeBin, "dlq", "replay", "-c", cfg, "--route", "scenario")
	var stderr testkit.LockedBuffer
	stdout = &testkit.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("dlq replay stdout:\n%s\nstderr:\n%s", stdout.String(), testkit.Tail(stderr.String(), 40))
		}
	})
	return cmd, stdout, done
}

// replayReceiver is the webhook receiver of the replay scenarios. It
// refuses the body "bad" for good (400), holds "second" until release is
// called (or the request is abandoned), and accepts the rest.
type replayReceiver struct {
	URL     string
	release func()

	mu     sync.Mutex
	bodies []string       // every request's, in order
	oks    map[string]int // by body, the requests answered 200
}

func newReplayReceiver(t *testing.T) *replayReceiver {
	r := &replayReceiver{oks: map[string]int{}}
	held := make(chan struct{})
	var once sync.Once
	r.release = func() { once.Do(func() { close(held) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		body := string(raw)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		switch body {
		case "bad":
			w.WriteHeader(http.StatusBadRequest)
			return
		case "second":
			select {
			case <-held:
			case <-req.Context().Done():
				return
			}
		}
		r.mu.Lock()
		r.oks[body]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(r.release) // before srv.Close, which waits for the held request
	r.URL = srv.URL
	return r
}

// received returns the body of every request so far, in order.
func (r *replayReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// accepted returns how many requests with body were answered 200.
func (r *replayReceiver) accepted(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oks[body]
}
