package target_test

import (
	"errors"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record a batch answer named as failed is retried, but its target
// answered: it does not count as the target being down (the breaker would
// otherwise pause a route whose receiver is up and refuses a few records).
func TestTargetDownNotForRecordTheTargetNamed(t *testing.T) {
	named := &target.Error{Kind: target.Retryable, Status: 200, TargetUp: true, Err: errors.New("named failed")}
	if target.TargetDown(named) {
		t.Fatal("TargetDown is true for a record the target named as failed")
	}
	if target.KindOf(named) != target.Retryable {
		t.Fatalf("kind %v, want retryable", target.KindOf(named))
	}
	if !target.TargetDown(&target.Error{Kind: target.Retryable, Status: 503, Err: errors.New("503")}) {
		t.Fatal("TargetDown is false for a 503")
	}
}
