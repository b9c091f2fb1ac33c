package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docBuiltBinaries returns the names under bin/ that a newcomer gets by
// following the docs: what `make build` writes there, and every
// `go build -o bin/NAME` that doc shows.
func docBuiltBinaries(t *testing.T, doc string) map[string]bool {
	t.Helper()
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]bool{}
	_, target, ok := strings.Cut(string(makefile), "\nbuild:\n")
	if !ok {
		t.Fatal("Makefile has no build target")
	}
	for line := range strings.SplitSeq(target, "\n") {
		if !strings.HasPrefix(line, "\t") {
			break
		}
		if m := regexp.MustCompile(`-o \$\(dir \$\(BIN\)\)(\S+)`).FindStringSubmatch(line); m != nil {
			built[m[1]] = true
		} else if strings.Contains(line, "-o $(BIN) ") {
			built["hookbridge"] = true
		}
	}
	for _, m := range regexp.MustCompile("go build -o bin/([A-Za-z0-9._-]+) ").FindAllStringSubmatch(doc, -1) {
		built[m[1]] = true
	}
	return built
}

// Every complete configuration docs/plugins.md shows (one with routes)
// validates once the binaries it names under ./bin are built the way the
// docs say: `make build`, or a `go build -o bin/NAME` the page shows.
func TestDocsPluginConfigsValidate(t *testing.T) {
	raw, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	built := docBuiltBinaries(t, doc)
	blocks := regexp.MustCompile("(?s)\n```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	n := 0
	for _, b := range blocks {
		snippet := b[1]
		if !strings.Contains(snippet, "\nroutes:\n") || !strings.Contains(snippet, "./bin/") {
			continue
		}
		n++
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name := range built {
			if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`).FindAllStringSubmatch(snippet, -1) {
			t.Setenv(m[1], "x")
		}
		file := filepath.Join(dir, "hookbridge.yaml")
		if err := os.WriteFile(file, []byte("kafka: {brokers: [\"127.0.0.1:9092\"]}\n"+snippet), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{"validate", "-c", file}, &stdout, &stderr); code != exitOK {
			t.Errorf("docs/plugins.md snippet does not validate with the binaries the docs build (%v): exit %d\n%s\n%s",
				built, code, stderr.String(), snippet)
		}
	}
	if n < 3 {
		t.Fatalf("found %d complete plugin configurations in docs/plugins.md, want the plugin-go, Redis and PostgreSQL ones", n)
	}
}
