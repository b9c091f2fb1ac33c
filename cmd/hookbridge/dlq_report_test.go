package main

import (
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge"
)

// The report accounts for every record read: those an interrupted replay
// read and did not finish (waiting for --rate, or cut short) get a line of
// their own, which a replay that finished everything does not print.
func TestReplayReportCountsRecordsNotFinished(t *testing.T) {
	for _, c := range []struct {
		name   string
		dryRun bool
		rep    bridge.ReplayReport
		left   string // "" when no line is due
	}{
		{"all finished", false, bridge.ReplayReport{Seen: 10, Replayed: 7, Delivered: 6, DeadLettered: 1, Skipped: 2, OtherRoute: 1}, ""},
		{"interrupted", false, bridge.ReplayReport{Seen: 18, Replayed: 15, Delivered: 14}, "4 read and not finished"},
		{"dry run interrupted", true, bridge.ReplayReport{Seen: 9, Replayed: 5, Skipped: 1}, "3 read and not finished"},
		{"dry run finished", true, bridge.ReplayReport{Seen: 9, Replayed: 8, OtherRoute: 1}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			printReplayReport(&out, bridge.ReplayOptions{Route: "orders", DryRun: c.dryRun}, &c.rep)
			got := out.String()
			if c.left == "" && strings.Contains(got, "not finished") {
				t.Errorf("report says records were not finished:\n%s", got)
			}
			if c.left != "" && !strings.Contains(got, c.left+" (the replay was interrupted") {
				t.Errorf("report does not say %q:\n%s", c.left, got)
			}
		})
	}
}
