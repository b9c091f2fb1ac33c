package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// keyPaths lists every leaf key of t as written in the README: maps of
// structs as `<name>`, slices of structs as `[]`.
func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		path := prefix + tag
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(ft, path+".")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), path+".<name>.")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem(), path+"[].")...)
		default:
			out = append(out, path)
		}
	}
	return out
}

// readmeConfigSection returns the README's configuration reference section.
func readmeConfigSection(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "## Configuration reference")
	if start < 0 {
		t.Fatal("README has no Configuration reference section")
	}
	section := text[start+3:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}

// The README's configuration reference lists exactly the keys the config
// structs have.
func TestReadmeConfigReferenceMatchesStructs(t *testing.T) {
	section := readmeConfigSection(t)
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	want := keyPaths(reflect.TypeOf(Config{}), "")
	for _, k := range want {
		if !slices.Contains(documented, k) {
			t.Errorf("config key %s is not in the README's configuration reference", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(want, k) {
			t.Errorf("the README documents %s, which is not a config key", k)
		}
	}
}

// readmeDefaults returns, for every row of the README's configuration
// reference whose default is one plain value (`10s`, or `10s` followed by a
// remark in parentheses), the key and that value as written.
func readmeDefaults(t *testing.T) map[string]string {
	t.Helper()
	section := readmeConfigSection(t)
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| ([^|]*) \\|")
	plain := regexp.MustCompile("^`([^`<]+)`(?: \\(.*\\))?$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		if d := plain.FindStringSubmatch(strings.TrimSpace(m[2])); d != nil {
			out[m[1]] = d[1]
		}
	}
	return out
}

// setPath sets the key path of the README (`plugins.<name>.x`,
// `routes[].x`) in doc, a decoded YAML document whose plugin is named p
// and whose first route is the one set.
func setPath(t *testing.T, doc map[string]any, path string, value any) {
	t.Helper()
	path = strings.ReplaceAll(path, "plugins.<name>.", "plugins.p.")
	path = strings.ReplaceAll(path, "routes[].", "routes.0.")
	parts := strings.Split(path, ".")
	var node any = doc
	for i, p := range parts {
		last := i == len(parts)-1
		switch n := node.(type) {
		case map[string]any:
			if last {
				n[p] = value
				return
			}
			if _, ok := n[p]; !ok {
				n[p] = map[string]any{}
			}
			node = n[p]
		case []any:
			if p != "0" || len(n) == 0 {
				t.Fatalf("%s: cannot follow %q", path, p)
			}
			node = n[0]
		default:
			t.Fatalf("%s: %q is not a mapping", path, p)
		}
	}
}

// Every default the README's configuration reference states is the default
// the configuration takes: a file that writes that value out means the same
// as one that leaves the key out.
func TestReadmeDefaultsAreTheDefaults(t *testing.T) {
	const base = `
kafka: {brokers: ["k:9092"]}
plugins:
  p: {command: [/bin/sh]}
routes:
  - name: r
    topics: [t]
    target: {webhook: {url: "https://h/x"}}
`
	parse := func(src []byte) *Config {
		t.Helper()
		c, err := Parse("test.yaml", src, envOf(nil))
		if err != nil {
			t.Fatalf("Parse:\n%s\n%v", src, err)
		}
		c.Advice = nil // positions differ once the document is written again
		return c
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(base), &doc); err != nil {
		t.Fatal(err)
	}
	again, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := parse(again)

	defaults := readmeDefaults(t)
	if len(defaults) < 30 {
		t.Fatalf("read only %d plain defaults from the README's configuration reference", len(defaults))
	}
	for key, literal := range defaults {
		var value any
		if err := yaml.Unmarshal([]byte(literal), &value); err != nil {
			t.Errorf("%s: README default %q is not YAML: %v", key, literal, err)
			continue
		}
		var d map[string]any
		if err := yaml.Unmarshal([]byte(base), &d); err != nil {
			t.Fatal(err)
		}
		setPath(t, d, key, value)
		src, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse("test.yaml", src, envOf(nil))
		if err != nil {
			t.Errorf("%s: the README's default %s is refused: %v", key, literal, err)
			continue
		}
		c.Advice = nil
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s: the README says the default is %s, but writing it out changes the configuration", key, literal)
		}
	}
}
