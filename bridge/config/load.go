package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path, expands environment variables
// from the process environment, applies defaults and validates the result.
// Problems with the configuration come back together as Errors; a file that
// cannot be read is an ordinary error.
func Load(path string) (*Config, error) {
	data, err := readFile(path, maxFileSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// maxFileSize bounds a configuration file: far more than any configuration
// needs, far less than would hurt to read.
const maxFileSize = 16 << 20

// readFile reads a file the configuration is or names: a regular file (a
// device or a pipe could be endless, or block) of at most max bytes, whole
// MiB. It reads no more than that of a larger one. Its errors never contain
// what the file holds.
func readFile(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, max>>20)
	}
	return data, nil
}

// Parse is Load from bytes: file names the source in problems and is stored
// in Config.File (plugin commands resolve against its directory), and
// lookupEnv supplies the values of ${VAR} references (nil means an empty
// environment). Every problem found is returned at once, as Errors; a YAML
// syntax error stops at the first.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	d := newDecoder(file, lookupEnv)
	cfg := &Config{File: file}
	problems := d.document(root, cfg)
	if problems == nil {
		cfg.ApplyDefaults()
		v := newChecker(file, d.lines, d.failed, d.fromEnv)
		v.withDefault = d.withDefault
		cfg.validate(v)
		problems = append(d.problems, v.problems.without(d.failed)...)
	}
	if len(problems) > 0 {
		problems.sortByLine()
		return nil, problems
	}
	a := newChecker(file, d.lines, d.failed, d.fromEnv)
	for _, path := range d.keyRefs {
		a.addf(path, "holds \"${\", but variables are not expanded in keys, only in values: the key is taken as written")
	}
	cfg.advise(a)
	cfg.Advice = a.problems
	cfg.Advice.sortByLine()
	return cfg, nil
}

// parseYAML parses data into a node tree; nil with no error for an empty
// document. Only one document is allowed.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{syntaxProblem(file, data, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &root, nil
	case err != nil:
		return nil, Errors{syntaxProblem(file, data, err)}
	}
	return nil, Errors{{File: file, Line: next.Line, Message: "only one YAML document is allowed"}}
}

// yamlLineRE finds the line in a yaml error message.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxProblem turns a yaml parse error into a problem with its line. The
// errors of the yaml reader (a control character, invalid UTF-8) name no
// line: the problem is on the line of the first character YAML refuses, or
// on line 1.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Line: unreadableLine(data), Message: "invalid YAML: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = "invalid YAML: " + m[2]
		if what, ok := strings.CutPrefix(m[2], "did not find expected "); ok && slices.Contains(parserExpected, what) {
			// A parser's error: yaml.v3 gives the line counted from 0,
			// where the collection it parsed began (or the token it
			// stopped at). The scanner's errors of the same wording (an
			// alias without a name, a bad escape) it counts from 1.
			p.Line = min(p.Line+1, bytes.Count(data, []byte("\n"))+1)
			if strings.HasSuffix(m[2], "']'") || strings.HasSuffix(m[2], "'}'") {
				if line, ok := lineOf(data, p.Line); ok && strings.Contains(line, "${") {
					p.Message += ` (a ${VAR} inside [...] or {...} must be quoted: "${VAR}")`
				}
			}
		}
	}
	return p
}

// parserExpected lists what yaml.v3's parser (not its scanner) says it "did
// not find expected".
var parserExpected = []string{"<stream-start>", "<document start>", "node content", "'-' indicator", "key",
	"',' or ']'", "',' or '}'"}

// lineOf returns line n (from 1) of data.
func lineOf(data []byte, n int) (string, bool) {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if i+1 == n {
			return string(l), true
		}
	}
	return "", false
}

// unreadableLine returns the line of the first character that YAML does not
// allow in a document (YAML 1.2 section 5.1: a control character other than
// tab, LF, CR and NEL, a surrogate, U+FFFE, U+FFFF, or invalid UTF-8), or 1
// when there is none.
func unreadableLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f && r != 0x85,
			r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
			return line
		case r == '\n':
			line++
		}
		i += size
	}
	return 1
}

// document checks the tree against Config and decodes it into cfg. It
// returns the problems when decoding stopped early, leaving nothing worth
// validating; the decoder collects the problems otherwise.
func (d *decoder) document(root *yaml.Node, cfg *Config) Errors {
	if root == nil {
		return nil
	}
	doc := root
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	d.setBudget(doc)
	d.value(doc, configType, "")
	if d.excessive {
		return d.problems // decoding would expand the aliases again
	}
	err := doc.Decode(cfg)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		d.typeErrors(te)
	default:
		d.addf(0, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return d.problems
	}
	return nil
}

// typeErrors records what the yaml decoder still refused after the walk;
// it went on decoding the rest.
func (d *decoder) typeErrors(te *yaml.TypeError) {
	for _, msg := range te.Errors {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		d.addf(line, "", "%s", msg)
	}
}
