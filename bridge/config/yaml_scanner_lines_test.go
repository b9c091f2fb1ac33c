package config

import (
	"strings"
	"testing"
)

// TestScannerErrorLines checks that a "did not find expected ..." error of
// the YAML scanner (an alias or anchor without a name, a bad escape), whose
// line yaml.v3 already counts from 1, is reported at its own line, not the
// next one as the parser's errors of that wording are corrected.
func TestScannerErrorLines(t *testing.T) {
	for _, tt := range []struct {
		src  string
		line int
	}{
		{"kafka:\n  brokers: [\"k:1\"]\nroutes:\n  - name: *\n    topics: [a]\n", 4},
		{"kafka:\n  brokers: [\"k:1\"]\n  client_id: &\n", 3},
		{"kafka:\n  client_id: \"\\xZZ\"\n  brokers: [\"k:1\"]\n", 2},
		{"kafka:\n  client_id: !<x\n  brokers: [\"k:1\"]\n", 2},
	} {
		errs := problemsOf(t, tt.src, nil)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Message, "invalid YAML: did not find") {
			t.Errorf("%q: problems %v, want one syntax error", tt.src, errs)
			continue
		}
		if errs[0].Line != tt.line {
			t.Errorf("%q: %v at line %d, want %d", tt.src, errs[0], errs[0].Line, tt.line)
		}
	}
}
