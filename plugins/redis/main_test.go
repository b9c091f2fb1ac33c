package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunRejectsABadConfiguration(t *testing.T) {
	var stderr bytes.Buffer
	vars := map[string]string{"REDIS_MODE": "hash"}
	code := run(func(k string) string { return vars[k] }, &stderr)
	if code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
	for _, want := range []string{"hookbridge-redis: invalid configuration", "REDIS_URL: required", "REDIS_KEY: required", `REDIS_MODE: "hash"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
}

func TestRunOutsideTheBridge(t *testing.T) {
	var stderr bytes.Buffer
	vars := map[string]string{"REDIS_URL": "redis://127.0.0.1:1", "REDIS_KEY": "events"}
	if code := run(func(k string) string { return vars[k] }, &stderr); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "Hookbridge plugin") {
		t.Errorf("stderr %q does not say it must be started by Hookbridge", stderr.String())
	}
}
