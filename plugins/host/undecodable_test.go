package host_test

import (
	"strings"
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
	check := callsInFlight(t, p, pid, "the bad answer came")
	_, err := p.Deliver(t.Context(), delivery(9, "bad-utf8", nil))
	if err == nil || target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "bad") {
		t.Errorf("the call with the bad answer: err = %v (kind %v), want its retryable failure", err, target.KindOf(err))
	}
	check()
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
