package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Files that are valid YAML but hostile to a loader: aliases that stand for
// far more than the file holds, merge values that contain themselves,
// explicit tags, null list items. Each must come back as problems with
// their lines and paths, quickly, never as a crash.

// A merge value (<<) that is a list containing itself, or a list of lists,
// is reported where it is; the walk does not follow it for ever (a stack
// overflow ends the process, and a SIGHUP reload with it ended a running
// bridge), and the file's other problems are reported too.
func TestMergeValuesThatAreNotMappings(t *testing.T) {
	for _, tt := range []struct{ name, log string }{
		{"a list that contains itself", "log:\n  <<: &a [*a]\n"},
		{"a list of lists", "log:\n  <<: [[{level: info}]]\n"},
		{"an alias to a list of lists", "x-anchors: &l [[{level: info}]]\nlog:\n  <<: *l\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.log + strings.Replace(minimal, "    topics: [t]\n", "    topics: [t]\n    concurrency: -5\n", 1)
			errs := problemsOf(t, src, nil)
			if strings.HasPrefix(tt.log, "x-anchors") {
				wantProblem(t, errs, "x-anchors", "unknown key")
			}
			p := wantProblem(t, errs, "log", "the value of a merge key (<<) must be a mapping or a list of mappings")
			if want := strings.Count(tt.log, "\n"); p.Line != want {
				t.Errorf("line %d, want %d", p.Line, want)
			}
			wantProblem(t, errs, "routes[0].concurrency", "must be >= 1")
		})
	}
}

// A small file whose merge keys or aliases stand for an exponential (or a
// quadratic) number of values is refused as excessive aliasing, at the
// place where the walk gave up, instead of taking minutes or all memory.
func TestExcessiveAliasing(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("x0: &m0 {level: info}\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", ")
		fmt.Fprintf(&bomb, "x%d: &m%d {<<: [%s]}\n", i, i, refs)
	}
	bomb.WriteString("log: {<<: *m9}\n")

	var wide strings.Builder // 50,000 topics, named by 100 routes
	wide.WriteString("kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r0\n    topics: &t [")
	for i := range 50_000 {
		if i > 0 {
			wide.WriteString(", ")
		}
		fmt.Fprintf(&wide, "t%d", i)
	}
	wide.WriteString("]\n    target: {webhook: {url: \"http://127.0.0.1/h\"}}\n")
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&wide, "  - {name: r%d, topics: *t, target: {webhook: {url: \"http://127.0.0.1/h\"}}}\n", i)
	}

	for _, tt := range []struct{ name, src, path string }{
		{"nested merge keys", bomb.String() + minimal, "log."},
		{"one long list named often", wide.String(), "routes["},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			var found bool
			for _, p := range errs {
				if strings.Contains(p.Message, "excessive aliasing") && strings.HasPrefix(p.Path, tt.path) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no excessive aliasing problem under %s in:\n%v", tt.path, errs)
			}
		})
	}

	// Within the budget, aliases are followed as before.
	var shared strings.Builder
	shared.WriteString("kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r0\n    topics: &t [a, b, c]\n    target: &w {webhook: {url: \"http://127.0.0.1/h\"}}\n")
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&shared, "  - {name: r%d, topics: *t, target: *w}\n", i)
	}
	c := mustParse(t, shared.String(), nil)
	if len(c.Routes) != 500 || len(c.Routes[499].Topics) != 3 {
		t.Errorf("%d routes, the last with %d topics", len(c.Routes), len(c.Routes[499].Topics))
	}
}

// A scalar with an explicit tag that does not decode as its tag says
// (!!bool maybe, !!binary with bad base64) is reported at its line and path
// with the file's other problems, and a value from the environment is not
// shown.
func TestExplicitTagsThatDoNotDecode(t *testing.T) {
	src := `kafka:
  brokers: ["127.0.0.1:9092"]
  embedded: !!bool maybe
routes:
  - name: r
    topics: [t]
    concurrency: -5
    target:
      webhook:
        url: "https://x.example/h"
        rate_limit: !!float ${RL}
`
	errs := problemsOf(t, src, map[string]string{"RL": "hunter2-secret"})
	p := wantProblem(t, errs, "kafka.embedded", `"maybe" tagged !!bool does not decode as true or false`)
	if p.Line != 3 {
		t.Errorf("line %d, want 3", p.Line)
	}
	p = wantProblem(t, errs, "routes[0].target.webhook.rate_limit", "the value tagged !!float does not decode as a number")
	if p.Line != 11 {
		t.Errorf("line %d, want 11", p.Line)
	}
	wantProblem(t, errs, "routes[0].concurrency", "must be >= 1")
	if strings.Contains(errs.Error(), "hunter2") {
		t.Errorf("a value from the environment is shown:\n%v", errs)
	}
}

// A null list item would be dropped by the YAML decoder, moving the items
// after it up an index (and their problems to the wrong line), and a null
// signing secret would leave the webhook unsigned: it is a problem of its
// own.
func TestNullListItems(t *testing.T) {
	src := `kafka:
  brokers:
    - ~
    - "no-port"
routes:
  - ~
  - name: "bad name"
    topics: [t]
    target:
      webhook:
        url: "https://x.example/h"
        signing_secrets:
          -
`
	errs := problemsOf(t, src, nil)
	for _, w := range []struct {
		path, msg string
		line      int
	}{
		{"kafka.brokers[0]", "expected a string, got null", 3},
		{"kafka.brokers[1]", "must be host:port", 4},
		{"routes[0]", "expected a mapping, got null", 6},
		{"routes[1].name", "must contain only letters", 7},
		{"routes[1].target.webhook.signing_secrets[0]", "expected a string, got null", 13},
	} {
		if p := wantProblem(t, errs, w.path, w.msg); p.Line != w.line {
			t.Errorf("%s: line %d, want %d", w.path, p.Line, w.line)
		}
	}
	if len(errs) != 5 {
		t.Errorf("want 5 problems, got:\n%v", errs)
	}
}

// A list item of the wrong type takes the place of a zero value, as a null
// item does: the items after it keep their indexes, and their own problems
// are reported at their paths (they were shifted onto the failed item's
// path, and so left out), with no problem about the list as a whole.
func TestProblemsAfterAListItemOfTheWrongType(t *testing.T) {
	src := `kafka: {brokers: ["127.0.0.1:9092", [x], "nohost"]}
routes:
  - name: r
    topics: [{x: y}, "bad topic"]
    target:
      webhook:
        url: "https://h/x"
        signing_secrets: [[s], "whsec_bad"]
        batch: {max_wait: 1s}
`
	errs := problemsOf(t, src, nil)
	for _, w := range []struct {
		path, msg string
		line      int
	}{
		{"kafka.brokers[1]", "expected a string, got a list", 1},
		{"kafka.brokers[2]", "must be host:port", 1},
		{"routes[0].topics[0]", "expected a string, got a mapping", 4},
		{"routes[0].topics[1]", `"bad topic" is not a legal Kafka topic name`, 4},
		{"routes[0].target.webhook.signing_secrets[0]", "expected a string, got a list", 8},
		{"routes[0].target.webhook.signing_secrets[1]", "invalid signing secret", 8},
	} {
		if p := wantProblem(t, errs, w.path, w.msg); p.Line != w.line {
			t.Errorf("%s: line %d, want %d", w.path, p.Line, w.line)
		}
	}
	if len(errs) != 6 {
		t.Errorf("want 6 problems, got:\n%v", errs)
	}
}

// Numbers the bridge cannot use as written: counts that size its
// structures or that its libraries keep in narrower types, and rates that
// are not finite.
func TestNumbersOutOfRange(t *testing.T) {
	route := func(extra, webhook string) string {
		return "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r\n    topics: [t]\n" + extra +
			"    target: {webhook: {url: \"https://x.example/h\"" + webhook + "}}\n"
	}
	for _, tt := range []struct{ src, path, msg string }{
		{route("    concurrency: 2305843009213693951\n", ""), "routes[0].concurrency", "must be <= 65536"},
		{route("    concurrency: 65537\n", ""), "routes[0].concurrency", "must be <= 65536"},
		{"kafka: {embedded: true, embedded_partitions: 4294967297}\nroutes:\n  - name: r\n    topics: [t]\n    target: {webhook: {url: \"https://x.example/h\"}}\n",
			"kafka.embedded_partitions", "must be <= 1024"},
		{route("    breaker: {consecutive_failures: 4294967296}\n", ""), "routes[0].breaker.consecutive_failures", "must be <= 2147483647"},
		{route("    breaker: {min_requests: 4294967296}\n", ""), "routes[0].breaker.min_requests", "must be <= 2147483647"},
		{route("", ", rate_limit: .nan"), "routes[0].target.webhook.rate_limit", "must be a finite number"},
		{route("", ", rate_limit: .inf"), "routes[0].target.webhook.rate_limit", "must be a finite number"},
	} {
		wantProblem(t, problemsOf(t, tt.src, nil), tt.path, tt.msg)
	}
	mustParse(t, route("    concurrency: 65536\n", ""), nil)
}

// URLs no request can be sent to: a port outside 1-65535, an empty port,
// no host name (a request to one goes to the local machine).
func TestURLsWithoutAUsableHostOrPort(t *testing.T) {
	for _, tt := range []struct{ url, msg string }{
		{"https://x.example:99999/h", "has a port outside 1-65535"},
		{"https://x.example:0/h", "has a port outside 1-65535"},
		{"https://x.example:/h", "has an empty port"},
		{"http://:80/h", "must have a host"},
	} {
		src := withRoute("    target: {webhook: {url: \""+tt.url+"\", proxy: {url: \""+tt.url+"\"}}}\n") +
			"telemetry: {otlp_endpoint: \"" + tt.url + "\"}\n"
		errs := problemsOf(t, src, nil)
		for _, path := range []string{"routes[0].target.webhook.url", "routes[0].target.webhook.proxy.url", "telemetry.otlp_endpoint"} {
			wantProblem(t, errs, path, tt.msg)
		}
	}
	mustParse(t, strings.Replace(minimal, "http://127.0.0.1/h", "http://[::1]:8080/h", 1), nil)
}

// An unset variable in an anchored value is one problem, wherever the
// anchor is used: the paths that reach it again are not reported as
// missing on top.
func TestUnsetVariableInAnAnchoredValue(t *testing.T) {
	src := `kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: a
    topics: [a]
    target: {webhook: {url: &u "${HOOK_URL_UNSET}"}}
  - name: b
    topics: [b]
    target: {webhook: {url: *u}}
`
	errs := problemsOf(t, src, nil)
	wantProblem(t, errs, "routes[0].target.webhook.url", "environment variable HOOK_URL_UNSET is not set")
	if len(errs) != 1 {
		t.Errorf("want 1 problem, got:\n%v", errs)
	}
}

// Load reads only regular files, of at most 16 MiB: a device or a named
// pipe would be read for ever, or block.
func TestLoadRefusesWhatIsNotAConfigFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, append([]byte(minimal), make([]byte, 16<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "/dev/zero is not a regular file",
		fifo:        "fifo.yaml is not a regular file",
		dir:         "is not a regular file",
		big:         "big.yaml is larger than 16 MiB",
	} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want %q", path, err, want)
		}
	}
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml") // as a Kubernetes ConfigMap mounts it
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err != nil {
		t.Errorf("Load through a symbolic link: %v", err)
	}
}
