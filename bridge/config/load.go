package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path, expands environment variables
// from the process environment, applies defaults and validates the result.
// Problems with the configuration come back together as Errors; a file that
// cannot be read is an ordinary error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
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
		v := newChecker(file, d.lines, d.failed)
		cfg.validate(v)
		problems = append(d.problems, v.problems.without(d.failed)...)
	}
	if len(problems) > 0 {
		problems.sortByLine()
		return nil, problems
	}
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
		return nil, Errors{syntaxProblem(file, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &root, nil
	case err != nil:
		return nil, Errors{syntaxProblem(file, err)}
	}
	return nil, Errors{{File: file, Line: next.Line, Message: "only one YAML document is allowed"}}
}

// yamlLineRE finds the line in a yaml error message.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxProblem turns a yaml parse error into a problem with its line.
func syntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Message: "invalid YAML: " + msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = "invalid YAML: " + m[2]
	}
	return p
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
	d.value(doc, configType, "")
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
