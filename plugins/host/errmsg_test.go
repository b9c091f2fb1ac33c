package host_test

import (
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// A plain error from the handler is retryable however long its message: one
// above the message limit used to come back as the permanent "answer exceeds
// the message limit" error, and the record was dead-lettered instead of
// retried. Through a Handle call too (a plugin without HandleStream).
func TestLongHandlerErrorStaysRetryable(t *testing.T) {
	for _, env := range []map[string]string{nil, {"TESTPLUGIN_UNARY_ONLY": "1"}} {
		cfg := testConfig(testPlugin)
		cfg.Env = env
		cfg.MaxMessageBytes = 64 << 10
		p, _ := newPool(t, cfg, host.Options{})
		_, err := p.Deliver(t.Context(), delivery(1, "long-error:200000", nil))
		if err == nil {
			t.Fatal("the call succeeded; want the handler's error")
		}
		if got := target.KindOf(err); got != target.Retryable || !strings.Contains(err.Error(), "downstream answered xxx") {
			t.Errorf("env %v: kind %v (%.200s), want the handler's retryable error", env, got, err)
		}
		if s := p.Stats(); s.Restarts != 0 {
			t.Errorf("env %v: stats %+v: a handler's error must not cost a process", env, s)
		}
	}
}
