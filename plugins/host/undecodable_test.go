package host_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A plugin serving HandleStream itself (in another language, say) that
// answers a call with a message Go's protobuf cannot decode (an error
// message that is not UTF-8) makes gRPC end the stream. The process is
// fine, as with an answer above the limit: the calls that were waiting on
// the stream go as Handle calls to the same process, not torn off and
// handled a second time elsewhere, the process is not replaced, and only
// the call that got the bad answer fails, as retryable.
func TestUndecodableStreamAnswerFailsOnlyItsCall(t *testing.T) {
	p, logs := startOne(t, func(c *config.Plugin) {
		c.ConcurrencyPerInstance = 8
		c.Env = map[string]string{"TESTPLUGIN_OWN_STREAM": "1"}
	})
	pid := p.PIDs()[0]
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			want := fmt.Sprintf("value-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:300ms", []byte(want)))
			if err != nil {
				t.Errorf("call %d, in flight when the bad answer came: %v", i, err)
				return
			}
			if got := replyPID(t, res); got != pid || string(res.Outputs[0].Value) != want {
				t.Errorf("call %d answered %q by pid %d, want %q by %d", i, res.Outputs[0].Value, got, want, pid)
			}
		})
	}
	waitFor(t, "the calls in flight", func() bool { return p.Stats().InFlight == 4 })
	_, err := p.Deliver(t.Context(), delivery(9, "bad-utf8", nil))
	if err == nil || target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "bad") {
		t.Errorf("the call with the bad answer: err = %v (kind %v), want its retryable failure", err, target.KindOf(err))
	}
	wg.Wait()
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 {
		t.Errorf("stats = %+v, want the one process kept", s)
	}
	const warning = "ended on a message that cannot be decoded"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("%d log lines say %q, want one", n, warning)
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}
