package kafka

import (
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// A send span whose write failed has the semantic conventions' error.type
// (conditionally required on a failed messaging operation): the kind of the
// failure, permanent for a record the broker refuses for what it is,
// retryable for one that may pass later (its topic does not exist yet); an
// acknowledged write has none.
func TestProduceFailureSpanErrorType(t *testing.T) {
	t.Parallel()
	p, _, tr, sr := tracedProducer(t, "orders.dlq")
	ctx, parent := tr.Start(t.Context(), "process orders")
	defer parent.End()
	for _, c := range []struct {
		out  target.Output
		want string // "" = none
	}{
		{target.Output{Topic: "orders.dlq", Value: make([]byte, 2<<20)}, "permanent"},
		{target.Output{Topic: "no-such-topic", Value: []byte("x")}, "retryable"},
		{target.Output{Topic: "orders.dlq", Value: []byte("x")}, ""},
	} {
		sr.Reset()
		err := p.Produce(ctx, []target.Output{c.out})
		if (err != nil) != (c.want != "") {
			t.Fatalf("%s (%d bytes): err = %v", c.out.Topic, len(c.out.Value), err)
		}
		ended := sr.Ended()
		if len(ended) != 1 {
			t.Fatalf("%s: %d spans ended, want one send span", c.out.Topic, len(ended))
		}
		got, has := attrs(ended[0])[telemetry.KeyErrorType]
		if c.want == "" && has || c.want != "" && got.AsString() != c.want {
			t.Errorf("%s (%d bytes): error.type = %q (set: %v), want %q", c.out.Topic, len(c.out.Value), got.String(), has, c.want)
		}
	}
}
