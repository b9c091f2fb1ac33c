package config

import (
	"strings"
	"testing"
)

// A value that holds a "$" after expansion (written "$$", or "$${X}" to
// pass the text ${X} on, as a plugin that fills its own templates wants)
// is printed by validate --print so that, loaded again, it is the same
// value: neither expanded a second time nor refused as an unset variable.
func TestEffectiveYAMLKeepsDollars(t *testing.T) {
	src := `
kafka: {brokers: ["127.0.0.1:9092"]}
plugins:
  p:
    command: [/bin/sh, -c, 'echo $$$$ $${HOME}']
    env: {TEMPLATE: '$${user}', PRICE: 'cost $5'}
routes:
  - name: r
    topics: [t]
    filter: {headers: {'a$$b': 'x$${Y}'}, key_prefix: 'a$$$$'}
    target: {plugin: p}
`
	c := mustParse(t, src, nil)
	out, err := c.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("printed.yaml", out, envOf(map[string]string{"HOME": "/root", "user": "u", "Y": "y"}))
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"command", strings.Join(again.Plugins["p"].Command, " "), "/bin/sh -c echo $$ ${HOME}"},
		{"env TEMPLATE", again.Plugins["p"].Env["TEMPLATE"], "${user}"},
		{"env PRICE", again.Plugins["p"].Env["PRICE"], "cost $5"},
		{"filter header", again.Routes[0].Filter.Headers["a$$b"], "x${Y}"},
		{"key_prefix", again.Routes[0].Filter.KeyPrefix, "a$$"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s loads again as %q, want %q (printed:\n%s)", tt.name, tt.got, tt.want, out)
		}
	}
}

// An integer written with a leading zero is octal to YAML 1.1, which
// yaml.v3 follows, and decimal to YAML 1.2: "010" would silently be 8. It
// is refused where a number belongs, written in the file or coming from
// the environment; 0o10 and 0x10 say what they mean and are taken.
func TestIntegersWithALeadingZero(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		vars       map[string]string
		path, msg  string
		want       int
	}{
		{"decimal", "    concurrency: 10\n", nil, "", "", 10},
		{"zero is the default", "    concurrency: 0\n", nil, "", "", 64},
		{"explicit octal", "    concurrency: 0o10\n", nil, "", "", 8},
		{"hex", "    concurrency: 0x10\n", nil, "", "", 16},
		{"leading zero", "    concurrency: 010\n", nil, "routes[0].concurrency", `"010" has a leading zero`, 0},
		{"leading zero, signed", "    concurrency: +010\n", nil, "routes[0].concurrency", `"+010" has a leading zero`, 0},
		{"leading zero, not octal", "    concurrency: 08\n", nil, "routes[0].concurrency", `"08" has a leading zero`, 0},
		{"leading zero from the environment", "    concurrency: ${N}\n", map[string]string{"N": "0123"}, "routes[0].concurrency", "the value (from ${N}) has a leading zero", 0},
		{"leading zero as a number", "    target: {webhook: {url: 'http://h/x', rate_limit: 010}}\n", nil, "routes[0].target.webhook.rate_limit", `"010" has a leading zero`, 0},
		{"leading zero in a string", "    filter: {key_prefix: 010}\n", nil, "", "", 64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(minimal, "    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n", "", 1) + tt.line
			if !strings.Contains(tt.line, "target:") {
				src += "    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n"
			}
			errs := checkParse(t, src, tt.vars, tt.path, tt.msg, 6)
			if tt.msg != "" {
				if tt.vars != nil && strings.Contains(errs.Error(), tt.vars["N"]) {
					t.Errorf("a value from the environment is shown:\n%v", errs)
				}
				return
			}
			c := mustParse(t, src, tt.vars)
			if tt.name == "leading zero in a string" {
				if c.Routes[0].Filter.KeyPrefix != "010" {
					t.Errorf("key_prefix = %q, want \"010\"", c.Routes[0].Filter.KeyPrefix)
				}
				return
			}
			if c.Routes[0].Concurrency != tt.want {
				t.Errorf("concurrency = %d, want %d", c.Routes[0].Concurrency, tt.want)
			}
		})
	}
}

// ${VAR} is expanded in values only. A key that holds one is taken as
// written, which in a filter's headers matches no record (every record is
// committed without being delivered) and in a plugin's env sets a variable
// of that odd name: it is valid, and gets advice at its line.
func TestAdviceEnvReferenceInAKey(t *testing.T) {
	src := `kafka: {brokers: ["127.0.0.1:9092"]}
plugins:
  p:
    command: [/bin/sh]
    env:
      ${NAME}: v
routes:
  - name: r
    topics: [t]
    filter:
      headers:
        "${TENANT_HEADER}": acme
        plain: x
    target: {plugin: p}
`
	c := mustParse(t, src, map[string]string{"NAME": "n", "TENANT_HEADER": "tenant"})
	want := map[string]int{"plugins.p.env.${NAME}": 6, "routes[0].filter.headers.${TENANT_HEADER}": 12}
	for _, p := range c.Advice {
		if line, ok := want[p.Path]; ok && strings.Contains(p.Message, "not expanded in keys") {
			if p.Line != line {
				t.Errorf("%s: line %d, want %d", p.Path, p.Line, line)
			}
			delete(want, p.Path)
		}
	}
	if len(want) > 0 {
		t.Errorf("no advice at %v in:\n%v", want, c.Advice)
	}
}
