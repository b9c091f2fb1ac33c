package scenario

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README's first command, `hookbridge demo`, runs the whole path on its
// embedded broker: every record reaches the webhook and the plugin, except
// record 13, which both routes dead-letter. Each request the receiver prints
// carries a valid signature and the trace id of its traceparent. With fewer
// than 13 records nothing is dead-lettered, and the demo still waits for the
// last record, not for one fewer.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		records, delivered, dead int
	}{
		{5, 5, 0},
		{13, 12, 1},
		{20, 19, 1},
	} {
		t.Run(strconv.Itoa(tc.records), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // a hang guard only
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bridgeBin, "demo", "--records", strconv.Itoa(tc.records))
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			out := stdout.String()
			m := regexp.MustCompile(`summary: (\d+) produced; webhook: (\d+) delivered \((\d+) requests incl\. retries\), (\d+) dead-lettered; plugin: (\d+) replies, (\d+) dead-lettered`).
				FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary in the demo's output:\n%s", out)
			}
			n := make([]int, len(m))
			for i := 1; i < len(m); i++ {
				n[i], _ = strconv.Atoi(m[i])
			}
			produced, delivered, requests, dead, replies, pdead := n[1], n[2], n[3], n[4], n[5], n[6]
			if produced != tc.records || delivered != tc.delivered || dead != tc.dead || replies != tc.delivered || pdead != tc.dead {
				t.Fatalf("summary %q, want %d produced, %d delivered and replies, %d dead-lettered on each route", m[0],
					tc.records, tc.delivered, tc.dead)
			}
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "webhook ←") {
					lines = append(lines, l)
				}
			}
			if len(lines) != requests || requests < tc.records {
				t.Fatalf("%d request lines, the summary says %d requests; want one per request, at least one per record:\n%s",
					len(lines), requests, out)
			}
			for _, l := range lines {
				if !strings.Contains(l, "signature ok") || strings.Contains(l, "trace=none") {
					t.Errorf("request line without a valid signature or a trace id: %s", l)
				}
			}
			if got := strings.Count(out, "plugin  → orders.enriched"); got != replies {
				t.Errorf("%d reply lines, the summary says %d replies", got, replies)
			}
		})
	}
}
