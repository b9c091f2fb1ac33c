package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Batch settings given without max_messages do nothing: each is advised on
// at its line; with batches on, turned off by an explicit max_messages: 0,
// or with none given, there is no advice.
func TestAdviceBatchSettingsWithoutBatches(t *testing.T) {
	const route = `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: r
    topics: [t]
    target:
      webhook:
        url: "http://127.0.0.1/h"
`
	for _, c := range []struct {
		name, batch string
		want        []string // "line: path" of each piece of advice
	}{
		{"none given", "", nil},
		{"max_wait alone", "        batch: {max_wait: 50ms}\n", []string{"9: routes[0].target.webhook.batch.max_wait"}},
		{"both", "        batch:\n          max_bytes: 2MiB\n          max_wait: 1s\n",
			[]string{"10: routes[0].target.webhook.batch.max_bytes", "11: routes[0].target.webhook.batch.max_wait"}},
		{"max_messages: 0 written", "        batch: {max_messages: 0, max_bytes: 1MiB, max_wait: 20ms}\n", nil},
		{"batches on", "        batch: {max_messages: 10, max_wait: 50ms}\n    concurrency: 10\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, route+c.batch, nil)
			var got []string
			for _, a := range cfg.Advice {
				got = append(got, strings.TrimPrefix(a.String(), "test.yaml:"))
				if !strings.Contains(a.Message, "has no effect without batch.max_messages") {
					t.Errorf("advice %q does not say why", a)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("advice %q, want %q", got, c.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]+": ") {
					t.Errorf("advice %q, want it at %q", got[i], c.want[i])
				}
			}
		})
	}
}

// A plugin no route uses is not started; the file gets advice at its
// name, the plugins a route uses none.
func TestAdviceUnusedPlugin(t *testing.T) {
	dir := t.TempDir()
	cmd := filepath.Join(dir, "handler")
	if err := os.WriteFile(cmd, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `
kafka: {brokers: ["127.0.0.1:9092"]}
plugins:
  used: {command: [` + cmd + `]}
  spare: {command: [` + cmd + `]}
routes:
  - name: r
    topics: [t]
    target: {plugin: used}
`
	cfg := mustParse(t, src, nil)
	if len(cfg.Advice) != 1 {
		t.Fatalf("advice %q, want one piece, on plugins.spare", cfg.Advice)
	}
	if got := cfg.Advice[0]; got.Path != "plugins.spare" || got.Line != 5 || !strings.Contains(got.Message, "not started") {
		t.Errorf("advice %q (line %d, path %s), want it at line 5 on plugins.spare saying it is not started", got, got.Line, got.Path)
	}
}
