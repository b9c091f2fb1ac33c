package bench

import (
	"strings"
	"testing"
)

// Every scenario, over a few thousand records, delivers every record exactly
// once to the receiver, and the bridge exits 0 on SIGTERM. Only data is
// asserted; the figures are logged, never checked.
func TestDrainSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bridge three times")
	}
	const n = 2000
	rep, err := Run(t.Context(), Options{Records: n, Brokers: brokersFlag(), Bridge: *flagBridge, Log: t.Output()}, Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(Scenarios()) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(Scenarios()))
	}
	for _, r := range rep.Results {
		if r.Delivered != n || r.Duplicates != 0 || r.Invalid != 0 {
			t.Errorf("(%s) %s: %d of %d records delivered, %d duplicates, %d invalid",
				r.Scenario.Letter, r.Scenario.Title, r.Delivered, n, r.Duplicates, r.Invalid)
		}
		if r.Bridge != nil && r.Bridge.ExitCode != 0 {
			t.Errorf("(%s) hookbridge exited with %d after SIGTERM", r.Scenario.Letter, r.Bridge.ExitCode)
		}
		if r.Bridge == nil && r.Scenario.Target != nil {
			t.Errorf("(%s) has no bridge figures", r.Scenario.Letter)
		}
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
}

func TestRecordValueRoundTrip(t *testing.T) {
	for _, i := range []int{0, 7, 199_999, 9_999_999_999 / 10} {
		v := value(i, 256)
		if len(v) != 256 {
			t.Fatalf("value(%d) has %d bytes", i, len(v))
		}
		got, err := indexOf(v)
		if err != nil || got != i {
			t.Fatalf("indexOf(value(%d)) = %d, %v", i, got, err)
		}
	}
	if _, err := indexOf([]byte("not a record")); err == nil {
		t.Fatal("indexOf accepted a foreign body")
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := SelectScenarios(" f,(a), b ")
	if err != nil {
		t.Fatal(err)
	}
	var letters []string
	for _, s := range got {
		letters = append(letters, s.Letter)
	}
	if strings.Join(letters, "") != "abf" {
		t.Fatalf("got %v, want a, b, f in run order", letters)
	}
	if _, err := SelectScenarios("a,g"); err == nil {
		t.Fatal("unknown letter accepted")
	}
}
