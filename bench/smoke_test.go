package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every scenario, over a few thousand records, delivers every record exactly
// once (to the receiver, or for the plugin route (p) as counted by the bridge),
// the bridge commits every offset and exits 0 on SIGTERM, and one plugin cold
// start completes. Only data is asserted; the figures are logged, never
// checked.
func TestDrainSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bridge and the plugin and runs the bridge seven times")
	}
	const n = 2000
	profiles := t.TempDir()
	rep, err := Run(t.Context(), Options{Records: n, Runs: 1, ColdStarts: 1, Brokers: brokersFlag(), Bridge: *flagBridge,
		ProfileDir: profiles, Log: t.Output()}, Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(Scenarios()) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(Scenarios()))
	}
	for _, r := range rep.Results {
		if r.Delivered != n || r.Duplicates != 0 || r.Invalid != 0 || r.Failed != 0 {
			t.Errorf("(%s) %s: %d of %d records delivered, %d duplicates, %d invalid, %d failed deliveries",
				r.Scenario.Letter, r.Scenario.Title, r.Delivered, n, r.Duplicates, r.Invalid, r.Failed)
		}
		// The bridge's webhook target sends the trace context of its
		// client span, in the bridge and in the ceilings measured with it.
		if l := r.Scenario.Letter; (l == "hx" || l == "ct" || l == "d" || l == "e" || l == "f") && r.Traced != r.Requests {
			t.Errorf("(%s) %d of %d requests carried a traceparent, want all", l, r.Traced, r.Requests)
		}
		if r.Scenario.OwnProcess != (r.ClientCPU > 0) {
			t.Errorf("(%s) client process CPU %s: want it exactly for the scenarios with a client process of their own",
				r.Scenario.Letter, r.ClientCPU)
		}
		if r.Scenario.Bridge != (r.Bridge != nil) {
			t.Errorf("(%s) bridge figures: %v, want them exactly for the bridge scenarios", r.Scenario.Letter, r.Bridge != nil)
		}
		if r.Bridge == nil {
			continue
		}
		if r.Bridge.ExitCode != 0 {
			t.Errorf("(%s) hookbridge exited with %d after SIGTERM", r.Scenario.Letter, r.Bridge.ExitCode)
		}
		// Each bridge run wrote its Go CPU profile (Options.ProfileDir).
		if err := checkCPUProfile(filepath.Join(profiles, "cpu-"+r.Scenario.Letter+"-1.pprof")); err != nil {
			t.Errorf("(%s) %v", r.Scenario.Letter, err)
		}
		if r.Bridge.Committed != n {
			t.Errorf("(%s) the bridge's group committed %d offsets, want %d", r.Scenario.Letter, r.Bridge.Committed, n)
		}
		if r.Scenario.Plugin {
			if len(r.Bridge.Plugins) == 0 || len(r.Bridge.Plugins) > DefaultPluginInstances {
				t.Errorf("(%s) %d plugin processes seen, want 1 to %d", r.Scenario.Letter, len(r.Bridge.Plugins), DefaultPluginInstances)
			}
			for _, p := range r.Bridge.Plugins {
				if p.PeakRSS <= 0 {
					t.Errorf("(%s) plugin process %d: no peak RSS", r.Scenario.Letter, p.PID)
				}
			}
		} else if len(r.Bridge.Plugins) != 0 {
			t.Errorf("(%s) %d plugin processes on a webhook route", r.Scenario.Letter, len(r.Bridge.Plugins))
		}
		if r.Scenario.Letter == "g" || r.Scenario.Letter == "g2" {
			if r.Requests == 0 || r.Requests >= n {
				t.Errorf("(%s) %d requests for %d records: not batched", r.Scenario.Letter, r.Requests, n)
			}
		}
	}
	if cs := rep.ColdStart; cs == nil || len(cs.Cold) != 1 || len(cs.Warm) != 1 {
		t.Errorf("plugin cold starts: %+v, want one cold and one warm record", cs)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
}

// checkCPUProfile reports whether path holds a CPU profile as pprof writes
// one: gzipped, with "cpu" and "nanoseconds" (its sample type) in its
// string table.
func checkCPUProfile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !bytes.Contains(raw, []byte("cpu")) || !bytes.Contains(raw, []byte("nanoseconds")) {
		return fmt.Errorf("%s: not a CPU profile (%d bytes)", path, len(raw))
	}
	return nil
}

// countBatch finds every record of a batch body the way the bridge writes it.
func TestCountBatch(t *testing.T) {
	var body strings.Builder
	body.WriteString("[")
	for i := range 3 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"specversion":"1.0","id":"t-0-%d","source":"/kafka/t","type":"dev.hookbridge.kafka.record","data_base64":%q,"topic":"t","partition":0,"offset":%d}`,
			i, base64.StdEncoding.EncodeToString(value(i*7, 256)), i)
	}
	body.WriteString("]")
	tl := newTally(100)
	if got := countBatch([]byte(body.String()), base64.StdEncoding.EncodedLen(256), tl); got != 3 {
		t.Fatalf("found %d records, want 3", got)
	}
	if tl.unique.Load() != 3 || tl.invalid.Load() != 0 {
		t.Fatalf("%d counted, %d invalid", tl.unique.Load(), tl.invalid.Load())
	}
	for _, i := range []int{0, 7, 14} {
		if tl.seen[0].Load()&(1<<i) == 0 {
			t.Errorf("record %d not counted", i)
		}
	}
	if countBatch([]byte(`[{"data_base64":"MDAw"}]`), base64.StdEncoding.EncodedLen(256), tl); tl.invalid.Load() != 1 {
		t.Fatal("a short record was not invalid")
	}
}

func TestSumMetric(t *testing.T) {
	page := []byte(`# HELP hookbridge_records_delivered_total Records the target accepted.
# TYPE hookbridge_records_delivered_total counter
hookbridge_records_delivered_total{route="bench",topic="t"} 1500
hookbridge_records_delivered_total{route="other",topic="t"} 2.5e+02
hookbridge_records_delivered_totalx{route="bench"} 7
hookbridge_records_failed_total{route="bench",outcome="timeout"} 3
`)
	if got := sumMetric(page, "hookbridge_records_delivered_total"); got != 1750 {
		t.Errorf("delivered = %d, want 1750", got)
	}
	if got := sumMetric(page, "hookbridge_records_failed_total"); got != 3 {
		t.Errorf("failed = %d, want 3", got)
	}
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
	if _, err := SelectScenarios("a,z"); err == nil {
		t.Fatal("unknown letter accepted")
	}
}
