package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is a valid config that cases extend.
const minimal = `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: r
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1/h"}}
`

func TestLoadFullExample(t *testing.T) {
	dir := t.TempDir()
	writeExecutable(t, dir, "bin/enrich")
	src, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "hookbridge.yaml", string(src), 0o644)
	whsec := secretOf(32)
	t.Setenv("BILLING_TOKEN", "tok123")
	t.Setenv("BILLING_WHSEC", whsec)

	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ratio, forward := 1.0, true
	want := &Config{
		Kafka: Kafka{
			Brokers:            []string{"127.0.0.1:9092"},
			EmbeddedPartitions: 6,
			ClientID:           "hookbridge",
			Version:            "3.0.0",
			InitialOffset:      "oldest",
			SessionTimeout:     Duration(10 * time.Second),
			Balance:            "cooperative-sticky",
		},
		Admin:     Admin{Listen: "127.0.0.1:9464"},
		Telemetry: Telemetry{ServiceName: "hookbridge", SampleRatio: &ratio},
		Log:       Log{Level: "info", Format: "json"},
		Plugins: map[string]Plugin{"enrich": {
			Command:                []string{"./bin/enrich"},
			Env:                    map[string]string{},
			Instances:              Instances{Min: 0, Max: 4},
			ConcurrencyPerInstance: 16,
			IdleTimeout:            Duration(60 * time.Second),
			Timeout:                Duration(10 * time.Second),
			StartTimeout:           Duration(30 * time.Second),
			MaxMessageBytes:        ByteSize(4 << 20),
			MaxOutputs:             1000,
		}},
		Routes: []Route{{
			Name:             "orders-billing",
			Topics:           []string{"orders"},
			Ordering:         OrderingKey,
			Concurrency:      64,
			MaxInFlightBytes: 64 << 20,
			Target: RouteTarget{Webhook: &Webhook{
				URL:            "https://billing.internal/hooks/orders",
				Timeout:        Duration(10 * time.Second),
				Headers:        map[string]string{"Authorization": "Bearer tok123"},
				SigningSecrets: []string{whsec},
				ForwardHeaders: &forward,
				SecretPath:     new(bool),
				Batch:          Batch{MaxBytes: 1 << 20, MaxWait: Duration(20 * time.Millisecond)},
			}},
			Retry:      Retry{MaxAttempts: 10, InitialBackoff: Duration(200 * time.Millisecond), MaxBackoff: Duration(time.Minute)},
			Breaker:    Breaker{FailureRatio: 0.5, MinRequests: 20, ConsecutiveFailures: 5, OpenTimeout: Duration(15 * time.Second)},
			DeadLetter: DeadLetter{Topic: "orders.dlq"},
		}},
		ShutdownTimeout: Duration(25 * time.Second),
		File:            path,
	}
	// The example declares a plugin that its route, a webhook's, does not use.
	if len(got.Advice) != 1 || got.Advice[0].Path != "plugins.enrich" {
		t.Errorf("advice %q, want one piece, on the unused plugins.enrich", got.Advice)
	}
	want.Advice = got.Advice
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", got, want)
	}
	if g := got.Routes[0].GroupID(); g != "hookbridge.orders-billing" {
		t.Errorf("GroupID = %q", g)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, `
kafka: {embedded: true}
plugins:
  p: {command: [/bin/sh]}
routes:
  - name: w
    topics: [a]
    target: {webhook: {url: "https://h/x"}}
  - name: p
    topics: [b]
    target: {plugin: p}
`, nil)
	w, p, plugin := c.Routes[0].Target.Webhook, c.Routes[1], c.Plugins["p"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"shutdown_timeout", c.ShutdownTimeout, Duration(25 * time.Second)},
		{"kafka.client_id", c.Kafka.ClientID, "hookbridge"},
		{"kafka.version", c.Kafka.Version, "3.0.0"},
		{"kafka.initial_offset", c.Kafka.InitialOffset, "oldest"},
		{"kafka.session_timeout", c.Kafka.SessionTimeout, Duration(10 * time.Second)},
		{"kafka.balance", c.Kafka.Balance, "cooperative-sticky"},
		{"kafka.embedded_partitions", c.Kafka.EmbeddedPartitions, 6},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9464"},
		{"telemetry.service_name", c.Telemetry.ServiceName, "hookbridge"},
		{"telemetry.sample_ratio", *c.Telemetry.SampleRatio, 1.0},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"plugin.concurrency_per_instance", plugin.ConcurrencyPerInstance, 16},
		{"plugin.idle_timeout", plugin.IdleTimeout, Duration(time.Minute)},
		{"plugin.timeout", plugin.Timeout, Duration(10 * time.Second)},
		{"plugin.start_timeout", plugin.StartTimeout, Duration(30 * time.Second)},
		{"plugin.instances", plugin.Instances, Instances{Min: 0, Max: 4}},
		{"route.group", p.Group, ""},
		{"route.GroupID", p.GroupID(), "hookbridge.p"},
		{"route.ordering", p.Ordering, "key"},
		{"route.concurrency", p.Concurrency, 64},
		{"route.max_in_flight_bytes", p.MaxInFlightBytes, ByteSize(64 << 20)},
		{"route.retry", p.Retry, Retry{MaxAttempts: 10, InitialBackoff: Duration(200 * time.Millisecond), MaxBackoff: Duration(time.Minute)}},
		{"route.breaker", p.Breaker, Breaker{FailureRatio: 0.5, MinRequests: 20, ConsecutiveFailures: 5, OpenTimeout: Duration(15 * time.Second)}},
		{"route.target.webhook", p.Target.Webhook, (*Webhook)(nil)},
		{"webhook.timeout", w.Timeout, Duration(10 * time.Second)},
		{"webhook.forward_headers", *w.ForwardHeaders, true},
		{"webhook.secret_path", *w.SecretPath, false},
		{"webhook.batch", w.Batch, Batch{MaxBytes: 1 << 20, MaxWait: Duration(20 * time.Millisecond)}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// Cooperative rebalancing needs Kafka 2.4: with an older kafka.version the
// default balance is sticky.
func TestDefaultBalanceFollowsVersion(t *testing.T) {
	for version, want := range map[string]string{"3.0.0": "cooperative-sticky", "2.4.0": "cooperative-sticky", "2.3.0": "sticky",
		"0.11.0.2": "sticky"} {
		k := Kafka{Version: version}
		k.applyDefaults()
		if k.Balance != want {
			t.Errorf("kafka.version %s: balance %q, want %q", version, k.Balance, want)
		}
	}
}

func TestDefaultsKeepSetValues(t *testing.T) {
	c := mustParse(t, `
kafka: {brokers: ["k:9092"], version: "2.8.0", balance: range}
telemetry: {sample_ratio: 0}
log: {level: debug}
routes:
  - name: r
    topics: [t]
    group: g
    ordering: none
    concurrency: 3
    max_in_flight_bytes: 512KiB
    target:
      webhook: {url: "https://h/x", forward_headers: false, timeout: 2s}
    retry: {max_attempts: 1, initial_backoff: 1s, max_backoff: 2s}
    breaker: {failure_ratio: 1}
`, nil)
	r := c.Routes[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"kafka.version", c.Kafka.Version, "2.8.0"},
		{"kafka.balance", c.Kafka.Balance, "range"},
		{"telemetry.sample_ratio", *c.Telemetry.SampleRatio, 0.0},
		{"log.level", c.Log.Level, "debug"},
		{"route.GroupID", r.GroupID(), "g"},
		{"route.ordering", r.Ordering, "none"},
		{"route.concurrency", r.Concurrency, 3},
		{"route.max_in_flight_bytes", r.MaxInFlightBytes, ByteSize(512 << 10)},
		{"webhook.forward_headers", *r.Target.Webhook.ForwardHeaders, false},
		{"webhook.timeout", r.Target.Webhook.Timeout, Duration(2 * time.Second)},
		{"retry", r.Retry, Retry{MaxAttempts: 1, InitialBackoff: Duration(time.Second), MaxBackoff: Duration(2 * time.Second)}},
		{"breaker.failure_ratio", r.Breaker.FailureRatio, 1.0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{"A": "alpha", "EMPTY": "", "N": "8", "DUR": "3s"}
	tests := []struct {
		raw  string // single-quoted YAML, so no YAML escapes apply
		want string
	}{
		{"${A}", "alpha"},
		{"x-${A}-y", "x-alpha-y"},
		{"${A}${A}", "alphaalpha"},
		{"${UNSET:-dflt}", "dflt"},
		{"${EMPTY:-dflt}", "dflt"},
		{"${A:-dflt}", "alpha"},
		{"${UNSET:-}", ""},
		{"${EMPTY}", ""},
		{"$$", "$"},
		{"$${A}", "${A}"},
		{"a$$$$b", "a$$b"},
		{"cost $5", "cost $5"},
		{"trailing $", "trailing $"},
		{"no vars", "no vars"},
		{"${UNSET:-a: b # c}", "a: b # c"},
		{"${A:-$$}", "alpha"},
		{"${UNSET:-$}", "$"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c := mustParse(t, minimal+"    filter: {headers: {h: '"+tt.raw+"'}}\n", vars)
			if got := c.Routes[0].Filter.Headers["h"]; got != tt.want {
				t.Errorf("%q expanded to %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestEnvExpansionTypedValues(t *testing.T) {
	vars := map[string]string{"N": "8", "DUR": "3s", "SIZE": "2MiB", "ON": "true", "EMPTY": ""}
	c := mustParse(t, `
kafka:
  brokers: ["127.0.0.1:${PORT:-9092}"]
  embedded_partitions: ${N}
routes:
  - name: r
    topics: [t]
    concurrency: "${N}"
    max_in_flight_bytes: ${SIZE}
    target:
      webhook:
        url: http://h/x
        timeout: ${DUR}
        forward_headers: ${ON}
        rate_limit: ${EMPTY}
`, vars)
	r := c.Routes[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"broker", c.Kafka.Brokers[0], "127.0.0.1:9092"},
		{"embedded_partitions", c.Kafka.EmbeddedPartitions, 8},
		{"concurrency (quoted)", r.Concurrency, 8},
		{"max_in_flight_bytes", r.MaxInFlightBytes, ByteSize(2 << 20)},
		{"timeout", r.Target.Webhook.Timeout, Duration(3 * time.Second)},
		{"forward_headers", *r.Target.Webhook.ForwardHeaders, true},
		{"rate_limit (empty)", r.Target.Webhook.RateLimit, 0.0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name, value, msg string
	}{
		{"unset", "${NOPE}", "environment variable NOPE is not set"},
		{"unterminated", "${NOPE", `unterminated "${"`},
		{"bad name", "${1X}", `invalid environment variable reference "${1X}"`},
		{"other syntax", "${X:?e}", `invalid environment variable reference "${X:?e}"`},
		{"nested", "${X:-${Y}}", `nested "${" in a default is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, minimal+"    filter:\n      key_prefix: '"+tt.value+"'\n", nil)
			p := wantProblem(t, errs, "routes[0].filter.key_prefix", tt.msg)
			if p.Line != 8 {
				t.Errorf("line = %d, want 8", p.Line)
			}
			if len(errs) != 1 {
				t.Errorf("want 1 problem, got:\n%v", errs)
			}
		})
	}
}

func TestEnvExpandsOnlyValues(t *testing.T) {
	c := mustParse(t, minimal+"    filter: {headers: {'${K}': v}}\n", map[string]string{"K": "x"})
	if _, ok := c.Routes[0].Filter.Headers["${K}"]; !ok {
		t.Errorf("keys must not be expanded: %v", c.Routes[0].Filter.Headers)
	}
}

func TestUnsetVariableLine(t *testing.T) {
	src := `kafka:
  brokers: ["127.0.0.1:9092"]
routes:
  - name: r
    topics: [t]
    target:
      webhook:
        url: https://h/x
        headers:
          Authorization: "Bearer ${TOKEN_NOT_SET}"
`
	errs := problemsOf(t, src, nil)
	p := wantProblem(t, errs, "routes[0].target.webhook.headers.Authorization", "environment variable TOKEN_NOT_SET is not set")
	if p.Line != 10 {
		t.Errorf("line = %d, want 10", p.Line)
	}
	want := `test.yaml:10: routes[0].target.webhook.headers.Authorization: environment variable TOKEN_NOT_SET is not set`
	if errs.Error() != want {
		t.Errorf("Error() = %q, want %q", errs.Error(), want)
	}
}

func TestUnknownKeys(t *testing.T) {
	src := `kafka:
  brokers: ["127.0.0.1:9092"]
  brokerz: []
loggin: {level: info}
plugins:
  p:
    command: [/bin/sh]
    comand: [x]
routes:
  - name: r
    topics: [t]
    target:
      webhok:
        url: https://h/x
      plugin: p
    retry: {max_attempts: 3, zzzzzz: 1}
`
	errs := problemsOf(t, src, nil)
	tests := []struct {
		path, msg string
		line      int
	}{
		{"kafka.brokerz", `unknown key (did you mean "brokers"?)`, 3},
		{"loggin", `unknown key (did you mean "log"?)`, 4},
		{"plugins.p.comand", `unknown key (did you mean "command"?)`, 8},
		{"routes[0].target.webhok", `unknown key (did you mean "webhook"?)`, 13},
		{"routes[0].retry.zzzzzz", "unknown key", 16},
	}
	for _, tt := range tests {
		p := wantProblem(t, errs, tt.path, tt.msg)
		if p.Line != tt.line {
			t.Errorf("%s: line = %d, want %d", tt.path, p.Line, tt.line)
		}
	}
	if p := wantProblem(t, errs, "routes[0].retry.zzzzzz", "unknown key"); p.Message != "unknown key" {
		t.Errorf("no suggestion expected for a key close to nothing: %q", p.Message)
	}
	if len(errs) != len(tests) {
		t.Errorf("want %d problems, got:\n%v", len(tests), errs)
	}
}

// TestAllProblemsAtOnce is the acceptance case: a route with both a webhook
// and a plugin, a negative concurrency and an unset variable, all in one
// file, come back together with their lines.
func TestAllProblemsAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeExecutable(t, dir, "enrich")
	unsetEnv(t, "HOOKBRIDGE_TEST_UNSET_URL")
	path := writeFile(t, dir, "hb.yaml", `kafka:
  brokers: ["127.0.0.1:9092"]
plugins:
  enrich: {command: [./enrich]}
routes:
  - name: both
    topics: [a]
    target:
      webhook: {url: "https://h/x"}
      plugin: enrich
  - name: negative
    topics: [b]
    concurrency: -1
    target: {plugin: enrich}
  - name: unset
    topics: [c]
    target:
      webhook:
        url: ${HOOKBRIDGE_TEST_UNSET_URL}
`, 0o644)

	_, err := Load(path)
	errs := asErrors(t, err)
	want := Errors{
		{File: path, Line: 8, Path: "routes[0].target", Message: "exactly one of webhook or plugin must be set"},
		{File: path, Line: 13, Path: "routes[1].concurrency", Message: "must be >= 1"},
		{File: path, Line: 19, Path: "routes[2].target.webhook.url", Message: "environment variable HOOKBRIDGE_TEST_UNSET_URL is not set"},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("problems:\n%v\nwant:\n%v", errs, want)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 3 {
		t.Errorf("Error() has %d lines, want 3:\n%v", got, err)
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name, src, path, msg string
		line                 int
	}{
		{"string for int", minimal + "    concurrency: lots\n", "routes[0].concurrency", `expected an integer, got "lots"`, 7},
		{"float for int", minimal + "    concurrency: 1.5\n", "routes[0].concurrency", `expected an integer, got "1.5"`, 7},
		{"list for string", minimal + "    ordering: [key]\n", "routes[0].ordering", "expected a string, got a list", 7},
		{"string for list", "kafka: {brokers: \"k:9092\"}\nroutes: []\n", "kafka.brokers", "expected a list, got a string", 1},
		{"scalar for mapping", minimal + "    retry: 3\n", "routes[0].retry", "expected a mapping, got an integer", 7},
		{"bad bool", "kafka: {embedded: yes}\n", "kafka.embedded", `expected true or false, got "yes"`, 1},
		{"bad duration", minimal + "    retry: {max_age: 5}\n", "routes[0].retry.max_age", `invalid duration "5"`, 7},
		{"bad size", minimal + "    max_in_flight_bytes: 5XB\n", "routes[0].max_in_flight_bytes", `unknown unit "XB"`, 7},
		{"mapping for duration", "shutdown_timeout: {s: 1}\n", "shutdown_timeout", "expected a duration such as 10s, got a mapping", 1},
		{"bad float", "telemetry: {sample_ratio: half}\n", "telemetry.sample_ratio", `expected a number, got "half"`, 1},
		{"int overflow", minimal + "    concurrency: 99999999999999999999\n", "routes[0].concurrency", "expected an integer", 7},
		{"duplicate key", minimal + "    ordering: key\n    ordering: none\n", "routes[0].ordering", "duplicate key (first at line 7)", 8},
		{"complex key", "? [a]\n: b\n", "", "keys must be plain strings", 1},
		{"root not a mapping", "- a\n", "", "expected a mapping, got a list", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			p := wantProblem(t, errs, tt.path, tt.msg)
			if p.Line != tt.line {
				t.Errorf("line = %d, want %d", p.Line, tt.line)
			}
		})
	}
}

func TestExpandedValueNotQuotedInProblems(t *testing.T) {
	errs := problemsOf(t, minimal+"    concurrency: ${C}\n", map[string]string{"C": "hunter2"})
	p := wantProblem(t, errs, "routes[0].concurrency", "expected an integer, got a string")
	if strings.Contains(errs.Error(), "hunter2") {
		t.Errorf("problem repeats the variable's value: %v", p)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	errs := problemsOf(t, "kafka:\n  brokers: [a\nroutes: x: y\n", nil)
	if len(errs) != 1 || errs[0].Line == 0 || !strings.HasPrefix(errs[0].Message, "invalid YAML: ") {
		t.Errorf("syntax error: %#v", errs)
	}
}

// yaml.v3 counts the line of a parser's error ("did not find expected
// ...") from 0: the problem must name the line where the collection that
// is not closed begins (or where parsing stopped), counted from 1 as every
// other problem. An unquoted ${VAR} in a flow collection, a common cause,
// gets a hint.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tt := range []struct {
		src  string
		line int
		hint bool
	}{
		{"kafka: {brokers: [\"k:1\"]}\nroutes:\n  - target:\n      webhook: {url: \"https://h\", headers: {Authorization: Bearer ${T}}}\n", 4, true},
		{"kafka:\n  brokers: [${BROKER}]\n", 2, true},
		{"kafka: {brokers: [\"k:1\"]}\nroutes: {a: 1 b: 2}\n", 2, false},
		{"kafka:\n  brokers:\n    - k:1\n  client_id: x\n    y: 2\n", 5, false},
		{"kafka:\n  - k:1\n  client_id: x\n", 2, false},
		{"kafka:\n  client_id: x\n routes: 2\n", 3, false},
	} {
		errs := problemsOf(t, tt.src, nil)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Message, "invalid YAML: ") {
			t.Errorf("%q: problems %v, want one syntax error", tt.src, errs)
			continue
		}
		if errs[0].Line != tt.line {
			t.Errorf("%q: %v at line %d, want %d", tt.src, errs[0], errs[0].Line, tt.line)
		}
		if hint := strings.Contains(errs[0].Message, "must be quoted"); hint != tt.hint {
			t.Errorf("%q: %v: hint %v, want %v", tt.src, errs[0], hint, tt.hint)
		}
	}
}

func TestMultipleDocuments(t *testing.T) {
	errs := problemsOf(t, minimal+"---\nkafka: {}\n", nil)
	wantProblem(t, errs, "", "only one YAML document is allowed")
}

func TestEmptyFile(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n"} {
		errs := problemsOf(t, src, nil)
		wantProblem(t, errs, "routes", "at least one route is required")
		wantProblem(t, errs, "kafka.brokers", "at least one broker is required")
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := mustParse(t, `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: a
    topics: [a]
    target: {webhook: &hook {url: "https://h/a", timeout: 2s}}
    retry: &retry {max_attempts: 3, initial_backoff: 1s}
  - name: b
    topics: [b]
    target:
      webhook:
        <<: *hook
        url: https://h/b
    retry:
      <<: *retry
      max_attempts: 5
  - name: c
    topics: [c]
    target: {webhook: *hook}
    retry: *retry
`, nil)
	tests := []struct {
		name      string
		got, want any
	}{
		{"b url", c.Routes[1].Target.Webhook.URL, "https://h/b"},
		{"b timeout (merged)", c.Routes[1].Target.Webhook.Timeout, Duration(2 * time.Second)},
		{"b max_attempts", c.Routes[1].Retry.MaxAttempts, 5},
		{"b initial_backoff (merged)", c.Routes[1].Retry.InitialBackoff, Duration(time.Second)},
		{"c url (alias)", c.Routes[2].Target.Webhook.URL, "https://h/a"},
		{"c max_attempts (alias)", c.Routes[2].Retry.MaxAttempts, 3},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestMergeKeyProblems(t *testing.T) {
	errs := problemsOf(t, `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: a
    topics: [a]
    target: {webhook: {url: "https://h/a"}}
    retry: &retry {max_attempts: 3, initial_bakoff: 1s}
  - name: b
    topics: [b]
    target: {webhook: {url: "https://h/b"}}
    retry:
      <<: *retry
`, nil)
	p := wantProblem(t, errs, "routes[0].retry.initial_bakoff", `unknown key (did you mean "initial_backoff"?)`)
	if p.Line != 7 || len(errs) != 1 {
		t.Errorf("want one problem on line 7, got:\n%v", errs)
	}
}

// A key that more than one mapping of a merge list (<<: [*a, *b]) holds
// takes its value from the first, as YAML merges them: a problem with that
// value is on the first one's line, not on the line of the value that lost.
func TestMergeListProblemOnTheLineOfTheValueMerged(t *testing.T) {
	errs := problemsOf(t, `
kafka: {brokers: ["127.0.0.1:9092"]}
routes:
  - name: a
    topics: [a]
    concurrency: 100
    target: {webhook: &a {url: "https://h/a", batch: {max_messages: 100}}}
  - name: b
    topics: [b]
    target: {webhook: &b {url: "https://h/b", batch: {max_messages: 1}}}
  - name: c
    topics: [c]
    target:
      webhook:
        <<: [*a, *b]
`, nil)
	p := wantProblem(t, errs, "routes[2].target.webhook.batch.max_messages", "100 is above the route's concurrency (64)")
	if p.Line != 7 || len(errs) != 1 {
		t.Errorf("want one problem, on line 7 (where max_messages is 100), got:\n%v", errs)
	}
}

// A value used through an alias (or merged) where a value of another type
// belongs is reported there, and only there: the walk that fixes the tree
// for decoding must not change the value where it is of its own type, which
// made problems appear at that path that the file does not have.
func TestAliasOfAnotherTypeLeavesTheValueAlone(t *testing.T) {
	route := "kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: a\n    topics: [a]\n"
	tests := []struct {
		name, src, path, msg string
		line                 int
		also                 string // another path with the same problem, if any
	}{
		{"alias", route + "    target: &t\n      webhook: {url: \"https://h/a\"}\n    retry: *t\n",
			"routes[0].retry.webhook", "unknown key", 6, ""},
		{"merge", route + "    target: &t\n      webhook: {url: \"https://h/a\"}\n    retry: {<<: *t}\n",
			"routes[0].retry.webhook", "unknown key", 6, ""},
		{"merge list", route + "    target: &t\n      webhook: {url: \"https://h/a\"}\n    retry: {<<: [{max_attempts: 3}, *t]}\n",
			"routes[0].retry.webhook", "unknown key", 6, ""},
		{"scalar", route + "    target: {webhook: {url: &u \"https://h/a\"}}\n    retry: {max_attempts: *u}\n",
			"routes[0].retry.max_attempts", "expected an integer, got", 5, ""},
		{"list item", route + "    target: {webhook: &w {url: \"https://h/a\"}}\n  - name: b\n    topics: [*w, b]\n    target: {webhook: {url: \"https://h/b\"}}\n",
			"routes[1].topics[0]", "expected a string, got a mapping", 5, ""}, // where the mapping is written
		{"list", "kafka: {brokers: &b [\"127.0.0.1:9092\"], client_id: *b}\n" + hookRoute,
			"kafka.client_id", "expected a string, got a list", 1, ""},
		// The second use is reported as the first is: the value did not
		// become null at the first.
		{"list items", "kafka: {brokers: &b [\"127.0.0.1:9092\"]}\nroutes: [{name: r, topics: [*b, *b], target: {webhook: {url: \"https://h\"}}}]\n",
			"routes[0].topics[1]", "expected a string, got a list", 1, "routes[0].topics[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			want := 1
			if tt.also != "" {
				want = 2
				wantProblem(t, errs, tt.also, tt.msg)
			}
			if p := wantProblem(t, errs, tt.path, tt.msg); p.Line != tt.line || len(errs) != want {
				t.Errorf("want %d problem(s), on line %d, got:\n%v", want, tt.line, errs)
			}
		})
	}
}

func TestAliasCycle(t *testing.T) {
	tests := []struct {
		name, src, path, msg string
	}{
		{"alias", minimal + "    filter: &f {headers: {h: v}, key_prefix: *f}\n", "routes[0].filter.key_prefix", `alias "f" refers to a value that contains it`},
		{"merge", minimal + "    retry: &r {max_attempts: 2, <<: *r}\n", "routes[0].retry", "the value of a merge key (<<) must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			wantProblem(t, errs, tt.path, tt.msg)
			if len(errs) != 1 {
				t.Errorf("want 1 problem, got:\n%v", errs)
			}
		})
	}
}

// TestFileValuesNotShown checks that a value written in the file where it
// may be a secret (a scalar where a list or mapping belongs, a broker, a
// header line written as a key) is never repeated in a problem.
func TestFileValuesNotShown(t *testing.T) {
	webhook := func(keys string) string {
		return withRoute("    target: {webhook: {url: \"https://h/x\", " + keys + "}}\n")
	}
	tests := []struct {
		name, src, path, msg, secret string
	}{
		{"signing secret for a list", webhook("signing_secrets: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
			"routes[0].target.webhook.signing_secrets", "expected a list, got a string", "MfKQ9r8"},
		{"header line for headers", webhook(`headers: "Authorization: Bearer s3cr3tT0ken"`),
			"routes[0].target.webhook.headers", "expected a mapping, got a string", "s3cr3t"},
		{"header line as a header name", webhook(`headers: {"Authorization: Bearer s3cr3tT0ken"}`),
			"routes[0].target.webhook.headers", "a header name must be an HTTP token", "s3cr3t"},
		{"env line for env", strings.Replace(withRoute(hook), "command: [/bin/sh]", `command: [/bin/sh], env: "API_KEY=s3cr3t"`, 1),
			"plugins.p.env", "expected a mapping, got a string", "s3cr3t"},
		{"command line for a list", strings.Replace(withRoute(hook), "command: [/bin/sh]", `command: "/bin/tool --token s3cr3t"`, 1),
			"plugins.p.command", "expected a list, got a string", "s3cr3t"},
		{"credentials for sasl", "kafka: {brokers: [\"k:1\"], sasl: \"hookbridge:s3cr3t\"}\n",
			"kafka.sasl", "expected a mapping, got a string", "s3cr3t"},
		{"token for endpoint params", webhook("oauth2: {token_url: \"https://idp/t\", client_id: c, client_secret: x, endpoint_params: s3cr3t}"),
			"routes[0].target.webhook.oauth2.endpoint_params", "expected a mapping, got a string", "s3cr3t"},
		{"number for a list", "kafka: {brokers: 12345678}\n", "kafka.brokers", "expected a list, got an integer", "12345678"},
		{"broker with credentials", "kafka: {brokers: [\"user:s3cr3t@k:9092\"]}\n", "kafka.brokers[0]", "must be host:port", "s3cr3t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			wantProblem(t, errs, tt.path, tt.msg)
			if strings.Contains(errs.Error(), tt.secret) {
				t.Errorf("a problem shows %q:\n%v", tt.secret, errs)
			}
		})
	}
}

// TestEnvValuesNotShown checks that no problem shows any part of a value
// that came from the environment, trimmed or cut up as it may be; it says
// which variables the value came from instead.
func TestEnvValuesNotShown(t *testing.T) {
	dir := t.TempDir()
	writeExecutable(t, dir, "bin/ok")
	exe := writeExecutable(t, dir, "bin/SECRETEXE")
	vars := map[string]string{
		"T":    " SECRETDUR",
		"SIZE": "12SECRETUNIT",
		"N":    "SECRET",
		"A":    "1SECRET",
		"B":    "SECRETs",
		"BIG":  "99999999999SECRETGiB",
		"OFF":  "SECRETOFFSET",
		"V":    "SECRETVERSION",
		"CA":   "/nonexistent/SECRETCA",
		"NAME": "SECRETNAME",
		"P":    "SECRETPLUGIN",
		"TOP":  "SECRETTOPIC",
		"CMD":  "./bin/SECRETCMD",
		"ABS":  "/nonexistent/SECRETCMD",
		"BAD":  "SECRET TOPIC",
		"EXE":  exe,
	}
	tests := []struct {
		name, src, path, msg string
	}{
		{"duration trimmed", "kafka: {session_timeout: \"${T}\"}\n", "kafka.session_timeout", "invalid duration (from ${T}): want a number with a unit"},
		{"unknown unit", minimal + "    max_in_flight_bytes: ${SIZE}\n", "routes[0].max_in_flight_bytes", "invalid size (from ${SIZE}): unknown unit (use B, KB"},
		{"size in part", minimal + "    max_in_flight_bytes: \"${N}MiB\"\n", "routes[0].max_in_flight_bytes", "invalid size (from ${N}): want bytes"},
		{"size too large", minimal + "    max_in_flight_bytes: ${BIG}\n", "routes[0].max_in_flight_bytes", "invalid size (from ${BIG})"},
		{"two variables", "kafka: {session_timeout: \"${A}${B}\"}\n", "kafka.session_timeout", "invalid duration (from ${A}, ${B})"},
		{"enum", "kafka: {initial_offset: \"${OFF}\"}\n", "kafka.initial_offset", "must be one of oldest, newest, not (from ${OFF})"},
		{"version", "kafka: {version: \"${V}\"}\n", "kafka.version", "not (from ${V})"},
		{"file", "kafka: {tls: {ca_file: \"${CA}\"}}\n", "kafka.tls.ca_file", "file (from ${CA}) does not exist"},
		{"route name", withRoute(hook + "  - {name: \"${NAME}\", topics: [u], target: {plugin: p}}\n  - {name: \"${NAME}\", topics: [v], target: {plugin: p}}\n"),
			"routes[2].name", "duplicate route name (from ${NAME}) (also routes[1])"},
		{"group", withRoute(hook + "  - {name: s, group: \"${NAME}\", topics: [u], target: {plugin: p}}\n  - {name: u, group: \"${NAME}\", topics: [v], target: {plugin: p}}\n"),
			"routes[2].group", "consumer group (from ${NAME}) is also used by routes[1]"},
		{"plugin", withRoute("    target: {plugin: \"${P}\"}\n"), "routes[0].target.plugin", "no plugin named (from ${P}) under plugins"},
		{"own topic", withRoute("    dead_letter: {topic: \"${TOP}\"}\n" + hook + "  - {name: s, topics: [\"${TOP}\"], dead_letter: {topic: \"${TOP}\"}, target: {plugin: p}}\n"),
			"routes[1].dead_letter.topic", "must not be one of the route's own topics"},
		{"command", strings.Replace(withRoute(hook), "[/bin/sh]", "[\"${CMD}\"]", 1), "plugins.p.command[0]", "(from ${CMD}) not found in"},
		{"absolute command", strings.Replace(withRoute(hook), "[/bin/sh]", "[\"${ABS}\"]", 1), "plugins.p.command[0]", "(from ${ABS}) does not exist"},
		{"illegal topic", withRoute("") + "  - {name: s, topics: [\"${BAD}\"], target: {plugin: p}}\n", "routes[1].topics[0]",
			"(from ${BAD}) is not a legal Kafka topic name"},
		{"illegal dead-letter topic", withRoute("    dead_letter: {topic: \"${BAD}\"}\n" + hook), "routes[0].dead_letter.topic",
			"(from ${BAD}) is not a legal Kafka topic name"},
		{"illegal reply topic", withRoute("    reply: {topic: \"${BAD}\"}\n" + hook), "routes[0].reply.topic",
			"(from ${BAD}) is not a legal Kafka topic name"},
		{"command of another sha256", strings.Replace(withRoute(hook), "[/bin/sh]", "[\"${EXE}\"], sha256: "+strings.Repeat("0", 64), 1),
			"plugins.p.sha256", "does not match the command (from ${EXE}), whose sha256 is "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "hb.yaml"), []byte(tt.src), envOf(vars))
			errs := asErrors(t, err)
			wantProblem(t, errs, tt.path, tt.msg)
			for _, part := range []string{"SECRET", "DUR", "UNIT", "99999999999"} {
				if strings.Contains(errs.Error(), part) {
					t.Errorf("a problem shows %q of a value from the environment:\n%v", part, errs)
				}
			}
		})
	}
}

// TestProblemsAlwaysHaveALine checks the file:line: key: message form of
// every problem of a file, when the key and all its parents are absent too.
func TestProblemsAlwaysHaveALine(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"no routes key", "kafka: {brokers: [\"k:1\"]}\n", "test.yaml:1: routes: at least one route is required", 1},
		{"no kafka key", "\n\nroutes: [{name: r, topics: [t], target: {webhook: {url: \"https://h\"}}}]\n", "test.yaml:1: kafka.brokers: at least one broker is required", 1},
		{"empty file", "", "test.yaml:1: routes: at least one route is required", 1},
		{"invalid base64", "kafka: {brokers: [\"k:1\"]}\nroutes: [{name: !!binary 'not base64!!', topics: [t]}]\n", "test.yaml:2: routes[0].name: the value tagged !!binary does not decode as a string", 2},
		{"control character", "kafka:\n  brokers: [\"k:1\"]\nroutes: \x01\n", "test.yaml:3: invalid YAML: control characters are not allowed", 3},
		{"invalid UTF-8", "kafka:\n  client_id: \"\xff\"\n", "test.yaml:2: invalid YAML: invalid leading UTF-8 octet", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			for _, p := range errs {
				if p.Line < 1 {
					t.Errorf("problem without a line: %q", p)
				}
			}
			var found bool
			for _, p := range errs {
				if strings.HasPrefix(p.String(), tt.want) {
					found = true
					if p.Line != tt.line {
						t.Errorf("line %d, want %d", p.Line, tt.line)
					}
				}
			}
			if !found {
				t.Errorf("no problem reads %q in:\n%v", tt.want, errs)
			}
		})
	}
}

// kafka.client_rack goes out on fetches from kafka.version 2.3.0 on (Fetch
// v11, KIP-392): with an older one it would do nothing, which validate says.
func TestClientRackNeedsKafka23(t *testing.T) {
	src := strings.Replace(minimal, `kafka: {brokers: ["127.0.0.1:9092"]}`,
		`kafka: {brokers: ["127.0.0.1:9092"], client_rack: eu-west-1a, version: 2.2.0, balance: sticky}`, 1)
	wantProblem(t, problemsOf(t, src, nil), "kafka.client_rack", "needs kafka.version 2.3.0 or later")
	cfg := mustParse(t, strings.Replace(minimal, `kafka: {brokers: ["127.0.0.1:9092"]}`,
		`kafka: {brokers: ["127.0.0.1:9092"], client_rack: eu-west-1a}`, 1), nil)
	if cfg.Kafka.ClientRack != "eu-west-1a" {
		t.Errorf("ClientRack = %q", cfg.Kafka.ClientRack)
	}
}
