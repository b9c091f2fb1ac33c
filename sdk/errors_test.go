package sdk_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/sdk"
)

func TestErrorClassification(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		name      string
		err       error
		permanent bool
		after     time.Duration
		hasAfter  bool
	}{
		{"plain", base, false, 0, false},
		{"permanent", sdk.Permanent(base), true, 0, false},
		{"wrapped permanent", fmt.Errorf("handler: %w", sdk.Permanent(base)), true, 0, false},
		{"retry after", sdk.RetryAfter(3*time.Second, base), false, 3 * time.Second, true},
		{"negative wait is none", sdk.RetryAfter(-time.Second, base), false, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sdk.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			after, ok := sdk.RetryAfterOf(tc.err)
			if after != tc.after || ok != tc.hasAfter {
				t.Errorf("RetryAfterOf = %v, %v; want %v, %v", after, ok, tc.after, tc.hasAfter)
			}
			if !errors.Is(tc.err, base) {
				t.Error("the cause must stay reachable with errors.Is")
			}
			if tc.err.Error() != "boom" && tc.name != "wrapped permanent" {
				t.Errorf("message = %q, want the cause's", tc.err)
			}
		})
	}
	if sdk.Permanent(nil) != nil || sdk.RetryAfter(time.Second, nil) != nil {
		t.Error("marking a nil error must give nil")
	}
}
