package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunRejectsABadConfiguration(t *testing.T) {
	var stderr bytes.Buffer
	vars := map[string]string{"PG_MODE": "merge", "PG_COLUMNS": "offset=-"}
	code := run(t.Context(), func(k string) string { return vars[k] }, &stderr)
	if code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
	for _, want := range []string{"hookbridge-postgres: invalid configuration", "PG_DSN: required", "PG_TABLE: required", `PG_MODE: "merge"`, "PG_COLUMNS: offset=-"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
}

func TestRunOutsideTheBridge(t *testing.T) {
	var stderr bytes.Buffer
	vars := map[string]string{"PG_DSN": "postgres://u@127.0.0.1:1/db", "PG_TABLE": "events"}
	if code := run(t.Context(), func(k string) string { return vars[k] }, &stderr); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "Hookbridge plugin") {
		t.Errorf("stderr %q does not say it must be started by Hookbridge", stderr.String())
	}
}
