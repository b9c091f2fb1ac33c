package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docCommands reads the first code block after heading in the document at
// path, and returns the flags each `hookbridge <command>` line of it names
// (a line that starts with white space goes on the command above it; what
// follows a # is a comment).
func docCommands(t *testing.T, path, heading string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("%s has no %q", path, heading)
	}
	text = text[start:]
	open := strings.Index(text, "\n```")
	if open < 0 {
		t.Fatalf("%s: no code block under %q", path, heading)
	}
	block := text[open+4:]
	block = block[strings.Index(block, "\n")+1:]
	block = block[:strings.Index(block, "```")]

	commands := []string{"dlq replay", "run", "validate", "demo", "version"}
	flagRE := regexp.MustCompile(`(?:^|[\s\[])--?([a-z][a-z-]*)`)
	out := map[string][]string{}
	current := ""
	for line := range strings.SplitSeq(block, "\n") {
		code, _, _ := strings.Cut(line, "#")
		if rest, ok := strings.CutPrefix(code, "hookbridge "); ok {
			rest = strings.TrimSpace(rest)
			current = ""
			for _, c := range commands {
				if rest == c || strings.HasPrefix(rest, c+" ") {
					current = c
					code = strings.TrimPrefix(rest, c)
					break
				}
			}
			if current == "" {
				t.Errorf("%s: %q names no known command", path, line)
				continue
			}
			if _, ok := out[current]; !ok {
				out[current] = []string{}
			}
		} else if strings.TrimSpace(code) == "" || current == "" || !strings.HasPrefix(code, " ") {
			continue
		}
		for _, m := range flagRE.FindAllStringSubmatch(code, -1) {
			if !slices.Contains(out[current], m[1]) {
				out[current] = append(out[current], m[1])
			}
		}
	}
	return out
}

// commandFlags returns the flags the command accepts, as its -h lists them.
func commandFlags(t *testing.T, command string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append(strings.Fields(command), "-h")
	if code := run(t.Context(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("hookbridge %s -h: exit %d\n%s", command, code, stderr.String())
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`).FindAllStringSubmatch(stdout.String(), -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// The commands and flags the README's "Running it" and the dead-letter
// replay of docs/operations.md show are the ones the binary has, and every
// flag of every command is shown in one of them.
func TestDocumentedCommandsAndFlagsMatch(t *testing.T) {
	readme := docCommands(t, "../../README.md", "## Running it")
	replay := docCommands(t, "../../docs/operations.md", "## Dead-letter replay")
	for _, c := range []string{"run", "validate", "dlq replay", "demo", "version"} {
		if _, ok := readme[c]; !ok {
			t.Errorf("README's Running it does not show hookbridge %s", c)
		}
	}
	for _, c := range []string{"run", "validate", "dlq replay", "demo"} {
		have := commandFlags(t, c)
		documented := append(slices.Clone(readme[c]), replay[c]...)
		for _, f := range documented {
			if !slices.Contains(have, f) {
				t.Errorf("the docs show hookbridge %s -%s, which it does not accept", c, f)
			}
		}
		for _, f := range have {
			if !slices.Contains(documented, f) {
				t.Errorf("hookbridge %s accepts -%s, which neither the README's Running it nor docs/operations.md shows", c, f)
			}
		}
	}
}
