package envconfig

import "testing"

func TestProblems(t *testing.T) {
	var p Problems
	if err := p.Err("hookbridge-x"); err != nil {
		t.Fatalf("no problems: %v", err)
	}
	p.Add("X_URL", "is required")
	p.Add("X_TTL", "%q is not a duration", "soon")
	want := "hookbridge-x: invalid configuration:\n  X_URL: is required\n  X_TTL: \"soon\" is not a duration"
	if err := p.Err("hookbridge-x"); err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
