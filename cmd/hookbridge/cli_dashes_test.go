package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The go flag package takes -name and --name alike, and so does every
// command of hookbridge (dlq -help, version -help, run -help): the
// top-level -help and -version must too, not be an unknown command that
// exits 2.
func TestTopLevelSingleDashHelpAndVersion(t *testing.T) {
	tests := []struct {
		arg    string
		stdout string
	}{
		{arg: "-help", stdout: usage},
		{arg: "-version", stdout: "hookbridge " + versionString() + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // nothing may start
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{tt.arg}, &stdout, &stderr)
			if code != exitOK || stdout.String() != tt.stdout || stderr.Len() != 0 {
				first, _, _ := strings.Cut(stderr.String(), "\n")
				t.Errorf("hookbridge %s: exit code %d, stdout %q, stderr begins %q; want %d, %q and nothing on stderr",
					tt.arg, code, stdout.String(), first, exitOK, tt.stdout)
			}
		})
	}
}
