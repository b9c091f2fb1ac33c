package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// userDocs are the pages a newcomer reads and copies from, relative to the
// repository's root.
func userDocs(t *testing.T) []string {
	t.Helper()
	var docs []string
	for _, pattern := range []string{"README.md", "docs/*.md", "examples/*/README.md", "deploy/*/README.md", "bench/README.md"} {
		m, err := filepath.Glob(filepath.Join("../..", pattern))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m...)
	}
	if len(docs) < 8 {
		t.Fatalf("found only %d documents: %v", len(docs), docs)
	}
	return docs
}

// fencedBlocks matches a fenced code block, indented or not, and its
// language.
var fencedBlocks = regexp.MustCompile("(?ms)^[ \t]*```([a-z]*)\n(.*?)^[ \t]*```")

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text: lower case, punctuation dropped, spaces as hyphens, a
// repeated one numbered from -1.
func headingAnchors(text string) map[string]bool {
	text = fencedBlocks.ReplaceAllString(text, "")
	seen := map[string]int{}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*$`).FindAllStringSubmatch(text, -1) {
		title := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n, ok := seen[a]; ok {
			seen[a] = n + 1
			a += "-" + strconv.Itoa(n+1)
		} else {
			seen[a] = 0
		}
		anchors[a] = true
	}
	return anchors
}

// Every relative link of the user docs ([text](path#anchor)) names a file
// of the repository and, for a Markdown page, one of its headings.
func TestDocsLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	n := 0
	for _, doc := range userDocs(t) {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := fencedBlocks.ReplaceAllString(string(raw), "")
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			path, anchor, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), path)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %s: %v", doc, target, err)
				continue
			}
			if anchor == "" || !strings.HasSuffix(file, ".md") {
				continue
			}
			page, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !headingAnchors(string(page))[anchor] {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", doc, target, file, anchor)
			}
		}
	}
	if n < 30 {
		t.Fatalf("checked only %d links", n)
	}
}

// The README's Contents list links every section of the README, in order.
func TestReadmeContentsListsEverySection(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := fencedBlocks.ReplaceAllString(string(raw), "")
	_, contents, ok := strings.Cut(text, "\n## Contents\n")
	if !ok {
		t.Fatal("README has no Contents section")
	}
	contents, _, _ = strings.Cut(contents, "\n## ")
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^- \[[^\]]+\]\(#([^)]+)\)`).FindAllStringSubmatch(contents, -1) {
		listed = append(listed, m[1])
	}
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(text, -1) {
		if m[1] == "Contents" {
			continue
		}
		for a := range headingAnchors("## " + m[1]) {
			sections = append(sections, a)
		}
	}
	if !slices.Equal(listed, sections) {
		t.Errorf("README's Contents lists\n  %v\nbut its sections are\n  %v", listed, sections)
	}
}

// Every complete configuration (a YAML block with routes) of the README,
// the examples' and the deployment READMEs validates as written, with the
// variables it names set to a signing secret. (docs/plugins.md has its own
// test, which builds the binaries its configurations name.)
func TestDocsConfigsValidate(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	n := 0
	for _, doc := range userDocs(t) {
		if strings.HasSuffix(doc, filepath.Join("docs", "plugins.md")) {
			continue
		}
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fencedBlocks.FindAllStringSubmatch(string(raw), -1) {
			snippet := m[2]
			if m[1] != "yaml" || !regexp.MustCompile(`(?m)^routes:`).MatchString(snippet) {
				continue
			}
			n++
			if !regexp.MustCompile(`(?m)^kafka:`).MatchString(snippet) {
				snippet = "kafka: {brokers: [\"127.0.0.1:9092\"]}\n" + snippet
			}
			for _, v := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`).FindAllStringSubmatch(snippet, -1) {
				t.Setenv(v[1], secret)
			}
			file := filepath.Join(t.TempDir(), "hookbridge.yaml")
			if err := os.WriteFile(file, []byte(snippet), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), []string{"validate", "-c", file}, &stdout, &stderr); code != exitOK {
				t.Errorf("%s: a configuration does not validate: exit %d\n%s\n%s", doc, code, stderr.String(), snippet)
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d complete configurations, want at least the README's and the FastAPI receiver's", n)
	}
}
