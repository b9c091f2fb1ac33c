package config

import (
	"strings"
	"testing"
)

// A filter header written with no value ("x-priority:", null) decodes as the
// empty value: the route then delivers only records carrying that header
// empty, and commits every other record without delivering it. That is
// valid, but almost never what was meant: it gets advice at the header's
// line, saying what happens. A header with a value gets none.
func TestAdviceFilterHeaderWithoutValue(t *testing.T) {
	for _, c := range []struct {
		name, filter string
		want         []string // "line: path" of each piece of advice
	}{
		{"with values", "    filter:\n      headers: {tenant: acme}\n", nil},
		{"null", "    filter:\n      headers:\n        tenant: acme\n        x-priority:\n", []string{"10: routes[0].filter.headers.x-priority"}},
		{"tilde", "    filter:\n      headers:\n        x-priority: ~\n", []string{"9: routes[0].filter.headers.x-priority"}},
		{"empty string", "    filter:\n      headers:\n        x-priority: ''\n", []string{"9: routes[0].filter.headers.x-priority"}},
		// A block scalar keeps its final newline; a quoted value its
		// spaces: the filter compares bytes.
		{"block scalar", "    filter:\n      headers:\n        tenant: |\n          acme\n", []string{"9: routes[0].filter.headers.tenant"}},
		{"stripped block scalar", "    filter:\n      headers:\n        tenant: |-\n          acme\n", nil},
		{"spaces", "    filter:\n      headers: {tenant: ' acme'}\n      key_prefix: 'eu- '\n",
			[]string{"8: routes[0].filter.headers.tenant", "9: routes[0].filter.key_prefix"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, minimal+c.filter, nil)
			var got []string
			for _, a := range cfg.Advice {
				got = append(got, strings.TrimPrefix(a.String(), "test.yaml:"))
				if !strings.Contains(a.Message, "committed without being delivered") {
					t.Errorf("advice %q does not say what happens to the other records", a)
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
