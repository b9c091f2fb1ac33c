package config

import (
	"strings"
	"testing"
)

// TestWebhookHeadersDifferOnlyInCase checks that two configured headers whose
// names differ only in case are refused: HTTP names are not case-sensitive,
// so the target would send one of the two values, a different one from start
// to start. A merge that overrides a header in another case is the usual way
// to write it.
func TestWebhookHeadersDifferOnlyInCase(t *testing.T) {
	const headers = "routes[0].target.webhook.headers"
	tests := []struct {
		name, src, path, msg string // msg "" means valid
		line                 int
	}{
		{"two cases", hookWith("https://h/x", "headers:", "  X-Api-Key: one", "  x-api-key: two"),
			headers + ".x-api-key", `the same header as "X-Api-Key" (line 11): header names are not case-sensitive`, hookLine + 2},
		{"the lower case first", hookWith("https://h/x", "headers:", "  content-type: a/b", "  Content-Type: c/d"),
			headers + ".Content-Type", `the same header as "content-type" (line 11)`, hookLine + 2},
		{"three cases", hookWith("https://h/x", "headers:", "  X-A: 1", "  x-a: 2", "  X-a: 3"),
			headers + ".X-a", `the same header as "X-A" (line 11)`, hookLine + 3},
		{"overridden through a merge", withRoute(`    target:
      webhook:
        url: "https://h/x"
        headers:
          <<: {Authorization: Basic a}
          authorization: Basic b
`), headers + ".authorization", `the same header as "Authorization" (line 11)`, 12},
		{"one name each", hookWith("https://h/x", "headers:", "  X-A: 1", "  X-B: 2"), "", "", 0},
		{"the same case overridden through a merge", withRoute(`    target:
      webhook:
        url: "https://h/x"
        headers:
          <<: {Authorization: Basic a}
          Authorization: Basic b
`), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkParse(t, tt.src, nil, tt.path, tt.msg, tt.line)
			if strings.Contains(errs.Error(), "Basic") {
				t.Errorf("a problem shows a header value:\n%v", errs)
			}
		})
	}
}

// TestNullMapKeys checks that a key that YAML reads as null (~, null, or no
// key at all) in a mapping of names is refused at its line rather than left
// out: the entry would be dropped without a word, and a filter that loses
// its only header lets every record through.
func TestNullMapKeys(t *testing.T) {
	tests := []struct {
		name, src, path string
		line            int
	}{
		{"filter header ~", withRoute("    filter:\n      headers:\n        ~: b\n" + hook), "routes[0].filter.headers.~", 9},
		{"filter header null", withRoute("    filter:\n      headers:\n        null: b\n" + hook), "routes[0].filter.headers.null", 9},
		{"filter header NULL", withRoute("    filter:\n      headers:\n        NULL: b\n" + hook), "routes[0].filter.headers.NULL", 9},
		{"webhook header", hookWith("https://h/x", "headers:", "  X-A: a", "  ~: b"), "routes[0].target.webhook.headers.~", hookLine + 2},
		{"plugin env", "kafka: {brokers: [\"k:1\"]}\nplugins:\n  p:\n    command: [/bin/sh]\n    env: {A: a, null: b}\n" +
			"routes: [{name: r, topics: [t], target: {plugin: p}}]\n", "plugins.p.env.null", 5},
		{"plugin name", "kafka: {brokers: [\"k:1\"]}\nplugins:\n  p: {command: [/bin/sh]}\n  ~: {command: [/bin/sh]}\n" +
			"routes: [{name: r, topics: [t], target: {plugin: p}}]\n", "plugins.~", 4},
		{"oauth2 endpoint param", hookWith("https://h/x", "oauth2:", "  token_url: https://t/token", "  client_id: c",
			"  client_secret: s", "  endpoint_params: {resource: r, ~: x}"), "routes[0].target.webhook.oauth2.endpoint_params.~", hookLine + 4},
		{"empty key", withRoute("    filter:\n      headers:\n        ? \n        : b\n" + hook), "routes[0].filter.headers", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParse(t, tt.src, nil, tt.path, "the key is null", tt.line)
		})
	}
	// Quoted, the same names are names.
	c := mustParse(t, withRoute("    filter:\n      headers: {\"~\": a, \"null\": b}\n"+hook), nil)
	if got := c.Routes[0].Filter.Headers; got["~"] != "a" || got["null"] != "b" || len(got) != 2 {
		t.Errorf("filter.headers = %q, want ~ and null", got)
	}
}
