package dispatch_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A record the bridge abandons because it is shutting down, while it waits
// for its next attempt or for its target's open breaker, is canceled, as one
// abandoned in a call or in a rate_limit wait is: its process span says so
// (hookbridge.error.kind and error.type "canceled"), not "retryable", which
// would read in Jaeger as a failure of the target.
func TestTraceAbandonedAtStopIsCanceled(t *testing.T) {
	t.Parallel()
	never := make(chan struct{})
	tests := []struct {
		name  string
		step  func(context.Context, *target.Delivery) (*target.Result, error)
		event string
	}{
		{"in the backoff", fail(errBoom), evRetrying},
		{"waiting for the breaker", fail(&dispatch.BreakerOpenError{Target: "http://x", State: dispatch.BreakerOpen, Ready: never}), evWaiting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, sr := newTracer(t)
			stop := make(chan struct{})
			ev := &recorder{}
			chain := target.Chain(&script{steps: steps(0, nil, tt.step)},
				dispatch.Trace(tr, traceRoute, traceGroup),
				dispatch.DeadLetter(dlqPolicy(), &producer{}, ev),
				dispatch.Retry(slowPolicy(10), ev),
				dispatch.AttemptTrace(tr),
			)
			ch := start(dispatch.WithStop(t.Context(), stop), chain, delivery(testRecord()))
			waitFor(t, "the record to wait", func() bool { return ev.count(tt.event) == 1 })
			close(stop)
			if o := await(t, ch); !errors.Is(o.err, dispatch.ErrStopping) {
				t.Fatalf("Deliver error = %v, want ErrStopping", o.err)
			}
			if k := target.KindOf(dispatch.ErrStopping); k != target.Canceled {
				t.Errorf("KindOf(ErrStopping) = %v, want canceled", k)
			}
			var found bool
			for _, s := range sr.Ended() {
				if s.Name() != "process orders" {
					continue
				}
				found = true
				attrs := attrMap(s.Attributes())
				if s.Status().Code != codes.Error ||
					attrs[telemetry.KeyOutcome] != attribute.StringValue(telemetry.OutcomeAbandoned) ||
					attrs[telemetry.KeyErrorKind] != attribute.StringValue("canceled") ||
					attrs[telemetry.KeyErrorType] != attribute.StringValue("canceled") {
					t.Errorf("process span: status %v, attributes %v; want error, outcome abandoned, error kind and type canceled",
						s.Status(), s.Attributes())
				}
			}
			if !found {
				t.Fatal("no process span ended")
			}
		})
	}
}
