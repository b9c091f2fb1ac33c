package target

import (
	"errors"
	"testing"
)

// A shared outcome is classified as the error it marks, and only a marked
// error or a Result with Shared set is shared.
func TestShared(t *testing.T) {
	down := &Error{Kind: Retryable, Status: 502, Err: errors.New("502")}
	shared := Shared(down)
	if !TargetDown(shared) || KindOf(shared) != Retryable || StatusOf(shared) != 502 || shared.Error() != "502" {
		t.Errorf("Shared(%v) classifies as down %v, kind %v, status %d, text %q", down, TargetDown(shared), KindOf(shared),
			StatusOf(shared), shared.Error())
	}
	if Shared(nil) != nil {
		t.Error("Shared(nil) is not nil")
	}
	for _, c := range []struct {
		res  *Result
		err  error
		want bool
	}{
		{nil, shared, true},
		{nil, down, false},
		{&Result{Shared: true}, nil, true},
		{&Result{}, nil, false},
		{nil, nil, false},
	} {
		if got := IsShared(c.res, c.err); got != c.want {
			t.Errorf("IsShared(%+v, %v) = %v, want %v", c.res, c.err, got, c.want)
		}
	}
}
