package host_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// A plugin that fails a Handle call with a gRPC status of its own (a plugin
// without the SDK; a Python plugin's uncaught exception is status UNKNOWN
// with the exception's text) sends a message as long as it likes: gRPC
// takes trailers up to 16 MiB. The bridge put it whole into the record's
// error, hence into every log line about the failure and onto its spans,
// where the SDK bounds no event attribute and no status description: the
// deliver span's exception event and status, the retry and dead_lettered
// events. A handler's error in the answer is cut at 1 KiB; a call's status
// is now cut the same way. The call's client span, whose status the gRPC
// instrumentation sets, keeps a bounded description too.
func TestCallStatusMessageIsBounded(t *testing.T) {
	rec, _ := recordSpans(t)
	p, _ := startOne(t, func(cfg *config.Plugin) { cfg.Env = map[string]string{"TESTPLUGIN_UNARY_ONLY": "1"} })
	_, err := p.Deliver(t.Context(), delivery(1, "grpc-long-error:1000000", nil))
	if err == nil {
		t.Fatal("the call succeeded; want its failure")
	}
	if got := target.KindOf(err); got != target.Retryable {
		t.Errorf("kind %v, want retryable (a failed call)", got)
	}
	msg := err.Error()
	if len(msg) > 2<<10 || !strings.Contains(msg, "downstream answered xxx") || !strings.Contains(msg, "more bytes)") {
		t.Errorf("error of %d bytes (%.120q...): want the status message's start within about 1 KiB, and how much was cut", len(msg), msg)
	}
	checkSpanStatuses(t, rec)
}

// checkSpanStatuses checks that the ended Handle call spans have a status
// description of at most a few KiB.
func checkSpanStatuses(t *testing.T, rec *tracetest.SpanRecorder) {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() != protocol.CallSpanName {
			continue
		}
		if d := s.Status().Description; len(d) > 2<<10 {
			t.Errorf("span %q (%v): status description of %d bytes", s.Name(), s.SpanKind(), len(d))
		}
	}
}
