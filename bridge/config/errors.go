package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file, at a position.
type Problem struct {
	// File is the path of the configuration file.
	File string
	// Line is the 1-based line of the offending key, or of its nearest
	// parent in the file; 1 when none is (no routes key, say). It is 0 only
	// in the problems of Config.Validate, which has no file to point into.
	Line int
	// Path is the key path, e.g. "routes[1].concurrency"; empty for the
	// file as a whole.
	Path string
	// Message says what is wrong, in lower case.
	Message string
}

// String renders the problem as "file:line: path: message", leaving out
// ":line" when the line is unknown and "path: " when the path is empty.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found in a configuration file. Load and Parse
// return it as their error; test for it with errors.As.
type Errors []Problem

// Error renders one problem per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortByLine orders problems as they appear in the file; problems without a
// line come first, and problems on one line keep their order.
func (e Errors) sortByLine() {
	sort.SliceStable(e, func(i, j int) bool { return e[i].Line < e[j].Line })
}

// without returns the problems whose path is not at or below one of the
// given paths. It keeps validation from repeating a key that already failed
// to decode (an unset variable leaves a value empty, for one).
func (e Errors) without(paths map[string]bool) Errors {
	var kept Errors
	for _, p := range e {
		if !coveredBy(p.Path, paths) {
			kept = append(kept, p)
		}
	}
	return kept
}

// coveredBy reports whether path or one of its parents is in paths.
func coveredBy(path string, paths map[string]bool) bool {
	for p := path; p != ""; p = parentPath(p) {
		if paths[p] {
			return true
		}
	}
	return false
}

// parentPath strips the last ".key" or "[i]" of a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
