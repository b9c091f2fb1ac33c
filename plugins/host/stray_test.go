package host_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A plugin serving HandleStream itself that answers call_ids the host never
// sent (ids mixed up, so that the calls they were meant for time out with
// nothing in the log to say why) gets one warning naming such an id; the
// answers are ignored, and the calls it does answer right are delivered.
func TestStreamAnswerForACallNeverSentIsLoggedOnce(t *testing.T) {
	p, logs := startOne(t, func(c *config.Plugin) {
		c.Env = map[string]string{"TESTPLUGIN_OWN_STREAM": "1"}
	})
	for i := range 3 {
		want := fmt.Sprintf("value-%d", i)
		res, err := p.Deliver(t.Context(), delivery(int64(i), "dup-answer", []byte(want)))
		if err != nil {
			t.Fatalf("call %d: %v\n%s", i, err, logs)
		}
		if len(res.Outputs) != 1 || string(res.Outputs[0].Value) != want {
			t.Fatalf("call %d got %+v, want its own value %q", i, res.Outputs, want)
		}
	}
	const warning = "plugin answered a call_id never sent on its HandleStream"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Fatalf("%d log lines say %q, want one\n%s", n, warning, logs)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, warning) && (!strings.Contains(line, "level=WARN") || !strings.Contains(line, "call_id=")) {
			t.Errorf("log line %q: want a warning naming the call_id", line)
		}
	}
}
