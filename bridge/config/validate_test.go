package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// withRoute is a valid kafka section and plugin followed by one route.
func withRoute(route string) string {
	return `kafka: {brokers: ["127.0.0.1:9092"]}
plugins:
  p: {command: [/bin/sh]}
routes:
  - name: r
    topics: [t]
` + route
}

const hook = "    target: {webhook: {url: \"https://h/x\"}}\n"

// hookRoute is a valid routes key, for cases about the kafka section.
const hookRoute = "routes: [{name: r, topics: [t], target: {webhook: {url: \"https://h\"}}}]\n"

func TestValidation(t *testing.T) {
	tests := []struct {
		name, src, path, msg string
	}{
		{"no routes", "kafka: {brokers: [\"k:1\"]}\n", "routes", "at least one route is required"},
		{"empty routes", "kafka: {brokers: [\"k:1\"]}\nroutes: []\n", "routes", "at least one route is required"},
		{"no brokers", "routes: [{name: r, topics: [t], target: {plugin: p}}]\nplugins: {p: {command: [/bin/sh]}}\n", "kafka.brokers", "at least one broker is required"},
		{"broker without port", "kafka: {brokers: [k]}\n", "kafka.brokers[0]", "must be host:port"},
		{"broker port 0", "kafka: {brokers: [\"k:0\"]}\n", "kafka.brokers[0]", "the port must be a number from 1 to 65535"},
		{"broker without host", "kafka: {brokers: [\":9092\"]}\n", "kafka.brokers[0]", "the host is missing"},
		{"initial offset", "kafka: {initial_offset: latest}\n", "kafka.initial_offset", `must be one of oldest, newest, not "latest"`},
		{"sasl mechanism", "kafka: {sasl: {mechanism: GSSAPI}}\n", "kafka.sasl.mechanism", `must be one of "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, not "GSSAPI"`},
		{"sasl username", "kafka: {sasl: {mechanism: SCRAM-SHA-512}}\n", "kafka.sasl.username", "is required when a mechanism is set"},
		{"tls file missing", "kafka: {tls: {ca_file: /nonexistent/ca.pem}}\n", "kafka.tls.ca_file", `file "/nonexistent/ca.pem" does not exist`},
		{"tls file a directory", "kafka: {tls: {ca_file: /}}\n", "kafka.tls.ca_file", "is a directory"},
		{"tls file a device", "kafka: {tls: {enabled: true, ca_file: /dev/zero}}\n", "kafka.tls.ca_file", `"/dev/zero" is not a regular file (a device, pipe or socket)`},
		{"tls cert without key", "kafka: {tls: {cert_file: /dev/null}}\n", "kafka.tls", "cert_file and key_file must be set together"},
		{"tls settings without enabled", "kafka: {tls: {server_name: broker.internal}}\n", "kafka.tls.enabled", "must be true when other kafka.tls settings are given"},
		{"balance", "kafka: {balance: random}\n", "kafka.balance", "must be one of cooperative-sticky, sticky, range, roundrobin"},
		{"cooperative before 2.4", "kafka: {balance: cooperative-sticky, version: 2.3.0}\n", "kafka.balance", "cooperative-sticky needs kafka.version 2.4.0 or later"},
		{"group instance id characters", "kafka: {group_instance_id: \"pod 0\"}\n", "kafka.group_instance_id", `"pod 0" is not a legal Kafka group instance id: it may contain only letters`},
		{"group instance id dot", "kafka: {group_instance_id: \".\"}\n", "kafka.group_instance_id", `"." is not a legal Kafka group instance id`},
		{"group instance id length", "kafka: {group_instance_id: " + strings.Repeat("p", 250) + "}\n", "kafka.group_instance_id", "is 250 characters long; a Kafka group instance id has at most 249"},
		{"group instance id before 2.3", "kafka: {group_instance_id: hookbridge-0, balance: sticky, version: 2.2.0}\n", "kafka.group_instance_id", "needs kafka.version 2.3.0 or later"},
		{"version", "kafka: {version: \"3.0\"}\n", "kafka.version", "must be a Kafka version such as 3.0.0"},
		{"embedded partitions", "kafka: {embedded_partitions: -1}\n", "kafka.embedded_partitions", "must be >= 1"},
		{"session timeout", "kafka: {session_timeout: -1s}\n", "kafka.session_timeout", "must not be negative"},
		{"sample ratio", "telemetry: {sample_ratio: 1.5}\n", "telemetry.sample_ratio", "must be from 0 to 1"},
		{"otlp scheme", "telemetry: {otlp_endpoint: \"grpc://c:4317\"}\n", "telemetry.otlp_endpoint", "must be an http:// or https:// URL"},
		{"otlp not a url", "telemetry: {otlp_endpoint: \"127.0.0.1:4317\"}\n", "telemetry.otlp_endpoint", ""},
		{"log level", "log: {level: trace}\n", "log.level", "must be one of debug, info, warn, error"},
		{"log format", "log: {format: xml}\n", "log.format", "must be one of json, text"},
		{"shutdown timeout", "shutdown_timeout: -1s\n", "shutdown_timeout", "must be > 0"},
		{"admin listen", "admin: {listen: \"9464\"}\n", "admin.listen", `or "off"`},
		{"plugin command missing", "plugins: {p: {}}\n", "plugins.p.command", "is required"},
		{"plugin command empty", "plugins: {p: {command: [\"\"]}}\n", "plugins.p.command[0]", "must not be empty"},
		{"plugin sha256", "plugins: {p: {command: [/bin/sh], sha256: abc}}\n", "plugins.p.sha256", "must be 64 hexadecimal characters"},
		{"plugin sha256 of another file", "plugins: {p: {command: [/bin/sh], sha256: " + strings.Repeat("0", 64) + "}}\n", "plugins.p.sha256", "does not match /bin/sh, whose sha256 is "},
		{"plugin env name with =", "plugins: {p: {command: [/bin/sh], env: {\"A=B\": x}}}\n", "plugins.p.env", `variable name "A=B" must be non-empty, without "=" or NUL`},
		{"plugin env empty name", "plugins: {p: {command: [/bin/sh], env: {\"\": x}}}\n", "plugins.p.env", `variable name "" must be`},
		{"plugin env NUL in a name", "plugins: {p: {command: [/bin/sh], env: {\"A\\0\": x}}}\n", "plugins.p.env", `variable name "A\x00" must be`},
		{"plugin env NUL in a value", "plugins: {p: {command: [/bin/sh], env: {V: \"a\\0b\"}}}\n", "plugins.p.env.V", "must not contain a NUL byte"},
		{"plugin min", "plugins: {p: {command: [/bin/sh], instances: {min: -1}}}\n", "plugins.p.instances.min", "must not be negative"},
		{"plugin max", "plugins: {p: {command: [/bin/sh], instances: {max: -1}}}\n", "plugins.p.instances.max", "must be >= 1"},
		{"plugin min > max", "plugins: {p: {command: [/bin/sh], instances: {min: 3, max: 2}}}\n", "plugins.p.instances.min", "must be <= instances.max (2)"},
		{"plugin concurrency", "plugins: {p: {command: [/bin/sh], concurrency_per_instance: -2}}\n", "plugins.p.concurrency_per_instance", "must be >= 1"},
		{"plugin max outputs", "plugins: {p: {command: [/bin/sh], max_outputs: -1}}\n", "plugins.p.max_outputs", "must be >= 1"},
		{"plugin timeout", "plugins: {p: {command: [/bin/sh], timeout: -1s}}\n", "plugins.p.timeout", "must not be negative"},
		{"plugin idle timeout", "plugins: {p: {command: [/bin/sh], idle_timeout: -1s}}\n", "plugins.p.idle_timeout", "must not be negative"},
		{"plugin start timeout", "plugins: {p: {command: [/bin/sh], start_timeout: -1s}}\n", "plugins.p.start_timeout", "must not be negative"},
		{"route name missing", "routes: [{topics: [t], target: {plugin: p}}]\n", "routes[0].name", "is required"},
		{"route name chars", "routes: [{name: \"a b\", topics: [t], target: {plugin: p}}]\n", "routes[0].name", "must contain only letters, digits"},
		{"route names unique", withRoute(hook + "  - {name: r, topics: [u], group: other, target: {plugin: p}}\n"), "routes[1].name", `duplicate route name "r" (also routes[0])`},
		{"groups unique", withRoute(hook + "  - {name: s, topics: [u], group: hookbridge.r, target: {plugin: p}}\n"), "routes[1].group", `consumer group "hookbridge.r" is also used by routes[0]`},
		{"topics missing", "routes: [{name: r, target: {plugin: p}}]\n", "routes[0].topics", "at least one topic is required"},
		{"topic empty", "routes: [{name: r, topics: [\"\"], target: {plugin: p}}]\n", "routes[0].topics[0]", "must not be empty"},
		{"ordering", withRoute("    ordering: fifo\n" + hook), "routes[0].ordering", "must be one of partition, key, none"},
		{"concurrency", withRoute("    concurrency: -1\n" + hook), "routes[0].concurrency", "must be >= 1"},
		{"max in flight bytes", withRoute("    max_in_flight_bytes: -1\n" + hook), "routes[0].max_in_flight_bytes", "must not be negative"},
		{"no target", withRoute(""), "routes[0].target", "exactly one of webhook or plugin must be set"},
		{"both targets", withRoute("    target: {plugin: p, webhook: {url: \"https://h\"}}\n"), "routes[0].target", "exactly one of webhook or plugin must be set"},
		{"unknown plugin", withRoute("    target: {plugin: q}\n"), "routes[0].target.plugin", `no plugin named "q" under plugins`},
		{"url missing", withRoute("    target: {webhook: {timeout: 1s}}\n"), "routes[0].target.webhook.url", "is required"},
		{"url scheme", withRoute("    target: {webhook: {url: \"ftp://h/x\"}}\n"), "routes[0].target.webhook.url", "must be an http:// or https:// URL"},
		{"url host", withRoute("    target: {webhook: {url: \"http:///x\"}}\n"), "routes[0].target.webhook.url", "must have a host"},
		{"url invalid", withRoute("    target: {webhook: {url: \"http://h/%zz\"}}\n"), "routes[0].target.webhook.url", "is not a valid URL"},
		{"webhook timeout", withRoute("    target: {webhook: {url: \"https://h\", timeout: -1s}}\n"), "routes[0].target.webhook.timeout", "must not be negative"},
		{"rate limit", withRoute("    target: {webhook: {url: \"https://h\", rate_limit: -0.5}}\n"), "routes[0].target.webhook.rate_limit", "must not be negative"},
		{"batch max messages", withRoute("    target: {webhook: {url: \"https://h\", batch: {max_messages: -1}}}\n"), "routes[0].target.webhook.batch.max_messages", "must not be negative"},
		{"batch over concurrency", withRoute("    concurrency: 8\n    target: {webhook: {url: \"https://h\", batch: {max_messages: 9}}}\n"),
			"routes[0].target.webhook.batch.max_messages", "9 is above the route's concurrency (8): a batch holds at most one record per delivery in flight"},
		{"batch max bytes", withRoute("    target: {webhook: {url: \"https://h\", batch: {max_bytes: -1}}}\n"), "routes[0].target.webhook.batch.max_bytes", "must not be negative"},
		{"batch max wait", withRoute("    target: {webhook: {url: \"https://h\", batch: {max_wait: -1s}}}\n"), "routes[0].target.webhook.batch.max_wait", "must not be negative"},
		{"max attempts", withRoute("    retry: {max_attempts: -1}\n" + hook), "routes[0].retry.max_attempts", "must be >= 1"},
		{"initial backoff", withRoute("    retry: {initial_backoff: -1s}\n" + hook), "routes[0].retry.initial_backoff", "must not be negative"},
		{"max backoff negative", withRoute("    retry: {max_backoff: -1s}\n" + hook), "routes[0].retry.max_backoff", "must not be negative"},
		{"max backoff below initial", withRoute("    retry: {initial_backoff: 2m}\n" + hook), "routes[0].retry.max_backoff", "must be >= initial_backoff (2m0s)"},
		{"max age", withRoute("    retry: {max_age: -1s}\n" + hook), "routes[0].retry.max_age", "must not be negative"},
		{"failure ratio high", withRoute("    breaker: {failure_ratio: 1.5}\n" + hook), "routes[0].breaker.failure_ratio", "must be > 0 and <= 1"},
		{"failure ratio negative", withRoute("    breaker: {failure_ratio: -0.1}\n" + hook), "routes[0].breaker.failure_ratio", "must be > 0 and <= 1"},
		{"min requests", withRoute("    breaker: {min_requests: -1}\n" + hook), "routes[0].breaker.min_requests", "must not be negative"},
		{"consecutive failures", withRoute("    breaker: {consecutive_failures: -1}\n" + hook), "routes[0].breaker.consecutive_failures", "must not be negative"},
		{"open timeout", withRoute("    breaker: {open_timeout: -1s}\n" + hook), "routes[0].breaker.open_timeout", "must not be negative"},
		{"dead letter is own topic", withRoute("    dead_letter: {topic: t}\n" + hook), "routes[0].dead_letter.topic", "must not be one of the route's own topics"},
		{"dead letter topic not legal", withRoute("    dead_letter: {topic: \"t dlq\"}\n" + hook), "routes[0].dead_letter.topic", `"t dlq" is not a legal Kafka topic name`},
		{"reply topic ..", withRoute("    reply: {topic: \"..\"}\n" + hook), "routes[0].reply.topic", `".." is not a legal Kafka topic name`},
		{"topic too long", "kafka: {brokers: [\"k:1\"]}\nroutes: [{name: r, topics: [" + strings.Repeat("t", 250) + "], target: {plugin: p}}]\nplugins: {p: {command: [/bin/sh]}}\n", "routes[0].topics[0]", "is 250 characters long; a Kafka topic name has at most 249"},
		{"topic with a slash", "kafka: {brokers: [\"k:1\"]}\nroutes: [{name: r, topics: [a/b], target: {plugin: p}}]\nplugins: {p: {command: [/bin/sh]}}\n", "routes[0].topics[0]", `"a/b" is not a legal Kafka topic name`},
		{"reply is own topic", withRoute("    reply: {topic: t}\n" + hook), "routes[0].reply.topic", "must not be one of the route's own topics"},
		{"one breaker per url", withRoute(hook + "  - {name: s, topics: [u], breaker: {open_timeout: 1s}, target: {webhook: {url: \"https://h/x?tenant=b\"}}}\n"),
			"routes[1].breaker", "differs from routes[0].breaker, which uses the same target"},
		{"one breaker per plugin", withRoute("    target: {plugin: p}\n  - {name: s, topics: [u], breaker: {min_requests: 3}, target: {plugin: p}}\n"),
			"routes[1].breaker", "differs from routes[0].breaker"},
		{"one rate limiter per url", withRoute(hook + "  - {name: s, topics: [u], target: {webhook: {url: \"https://h/x\", rate_limit: 5}}}\n"),
			"routes[1].target.webhook.rate_limit", "differs from routes[0]'s, which uses the same URL"},
		{"one way to show a url", withRoute(hook + "  - {name: s, topics: [u], target: {webhook: {url: \"https://h/x\", secret_path: true}}}\n"),
			"routes[1].target.webhook.secret_path", "differs from routes[0]'s, which uses the same URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, nil)
			wantProblem(t, errs, tt.path, tt.msg)
		})
	}
}

func TestValidationLines(t *testing.T) {
	src := withRoute(`    retry:
      max_attempts: -1
    breaker: {min_requests: -3}
    target:
      webhook:
        url: ftp://h/x
`)
	tests := []struct {
		path string
		line int
	}{
		{"routes[0].retry.max_attempts", 8},
		{"routes[0].breaker.min_requests", 9},
		{"routes[0].target.webhook.url", 12},
	}
	errs := problemsOf(t, src, nil)
	for _, tt := range tests {
		if p := wantProblem(t, errs, tt.path, ""); p.Line != tt.line {
			t.Errorf("%s: line %d, want %d", tt.path, p.Line, tt.line)
		}
	}
}

func TestValidationLineFallsBackToParent(t *testing.T) {
	errs := problemsOf(t, withRoute("    retry: {initial_backoff: 5m}\n"+hook), nil)
	// retry.max_backoff is not in the file: the problem is on the retry line.
	if p := wantProblem(t, errs, "routes[0].retry.max_backoff", ""); p.Line != 7 {
		t.Errorf("line %d, want 7", p.Line)
	}
}

func TestValidConfigs(t *testing.T) {
	tests := []struct {
		name, src string
	}{
		{"minimal", minimal},
		{"embedded without brokers", "kafka: {embedded: true}\nroutes: [{name: r, topics: [t], target: {webhook: {url: \"http://h\"}}}]\n"},
		{"plugin route", withRoute("    target: {plugin: p}\n")},
		{"admin off", "admin: {listen: \"off\"}\n" + minimal},
		{"admin any port", "admin: {listen: \":0\"}\n" + minimal},
		{"ipv6 broker", "kafka: {brokers: [\"[::1]:9092\"]}\nroutes: [{name: r, topics: [t], target: {plugin: p}}]\nplugins: {p: {command: [sh]}}\n"},
		{"sasl, and the sha256 of the plugin in upper case", "kafka: {brokers: [\"k:1\"], sasl: {mechanism: PLAIN, username: u, password: p, allow_insecure: true}}\nroutes: [{name: a.B_c-1, topics: [t], target: {plugin: p}}]\nplugins: {p: {command: [/bin/sh], sha256: " + strings.ToUpper(sumOf(t, "/bin/sh")) + "}}\n"},
		{"sample ratio 0", "telemetry: {sample_ratio: 0, otlp_endpoint: \"http://127.0.0.1:4317\"}\n" + minimal},
		{"two routes on one topic", withRoute(hook + "  - {name: s, topics: [t], target: {plugin: p}}\n")},
		{"dead letter elsewhere", withRoute("    dead_letter: {topic: t.dlq}\n    reply: {topic: t.out}\n" + hook)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, tt.src, nil)
		})
	}
}

func TestSigningSecrets(t *testing.T) {
	tests := []struct {
		name, secret, msg string
	}{
		{"wrong prefix", "whsek_" + b64(strings.Repeat("k", 32)), `does not start with "whsec_"`},
		{"no prefix", b64(strings.Repeat("k", 32)), `does not start with "whsec_"`},
		{"bad base64", "whsec_not*base64!!", "not standard base64"},
		{"url-safe base64", "whsec_" + strings.Repeat("-_", 16), "not standard base64"},
		{"10 bytes", secretOf(10), "decodes to 10 bytes, want 24 to 64"},
		{"23 bytes", secretOf(23), "decodes to 23 bytes"},
		{"65 bytes", secretOf(65), "decodes to 65 bytes"},
		{"empty", "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"S": tt.secret}
			errs := problemsOf(t, withRoute(`    target:
      webhook:
        url: https://h/x
        signing_secrets: ["${S}"]
`), vars)
			p := wantProblem(t, errs, "routes[0].target.webhook.signing_secrets[0]", tt.msg)
			if p.Line != 10 {
				t.Errorf("line %d, want 10", p.Line)
			}
			if len(tt.secret) > 6 && strings.Contains(errs.Error(), tt.secret[6:]) {
				t.Errorf("problem shows the secret: %v", errs)
			}
		})
	}
}

func TestValidSigningSecrets(t *testing.T) {
	for _, n := range []int{24, 32, 64} {
		mustParse(t, withRoute("    target: {webhook: {url: \"https://h\", signing_secrets: [\""+secretOf(n)+"\"]}}\n"), nil)
	}
}

func TestPluginCommand(t *testing.T) {
	dir := t.TempDir()
	writeExecutable(t, dir, "bin/ok")
	writeExecutable(t, dir, "bare-ok")
	writeFile(t, dir, "bin/noexec", "#!/bin/sh\n", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	pathDir := t.TempDir()
	writeExecutable(t, pathDir, "on-path")
	writeExecutable(t, pathDir, "adir")
	t.Setenv("PATH", pathDir)

	tests := []struct {
		name, command, msg string // msg "" means valid
	}{
		{"relative to the config", "./bin/ok", ""},
		{"relative without dot", "bin/ok", ""},
		{"bare name in the config directory", "bare-ok", ""},
		{"bare name on PATH", "on-path", ""},
		{"bare name on PATH, a directory in the config's", "adir", ""},
		{"absolute", filepath.Join(dir, "bin/ok"), ""},
		{"missing relative", "./bin/missing", `"./bin/missing" not found in ` + dir + " or the current directory"},
		{"missing bare", "missing", `"missing" not found in ` + dir + " or PATH"},
		{"missing absolute", "/nonexistent/plugin", `"/nonexistent/plugin" does not exist`},
		{"not executable", "./bin/noexec", "is not executable"},
		{"directory", "./adir", "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := withRoute("    target: {plugin: p}\n")
			src = strings.Replace(src, "command: [/bin/sh]", "command: ['"+tt.command+"', --flag]", 1)
			_, err := Parse(filepath.Join(dir, "hb.yaml"), []byte(src), nil)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			p := wantProblem(t, asErrors(t, err), "plugins.p.command[0]", tt.msg)
			if p.Line != 3 {
				t.Errorf("line %d, want 3", p.Line)
			}
		})
	}
}

func TestResolveExecutable(t *testing.T) {
	dir := t.TempDir()
	want := writeExecutable(t, dir, "bin/ok")
	writeExecutable(t, dir, "bare")
	t.Chdir(dir)
	tests := []struct {
		dir, name, want string
	}{
		{dir, "./bin/ok", want},
		{".", "bin/ok", want},
		{".", "bare", filepath.Join(dir, "bare")},
		{"", "./bin/ok", "./bin/ok"},
		{"", "bin/ok", "bin/ok"},
	}
	for _, tt := range tests {
		got, err := ResolveExecutable(tt.dir, tt.name)
		if err != nil || got != tt.want {
			t.Errorf("ResolveExecutable(%q, %q) = %q, %v; want %q", tt.dir, tt.name, got, err, tt.want)
		}
	}
	if got, err := ResolveExecutable("", "bare"); err == nil {
		t.Errorf("a bare name resolved to %q in the current directory", got)
	}
	if got, err := ResolveExecutable("", "/nonexistent/x"); err == nil || got != "" {
		t.Errorf("ResolveExecutable of a missing file = %q, %v", got, err)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := &Config{
		Kafka:  Kafka{Embedded: true},
		Routes: []Route{{Name: "r", Topics: []string{"t"}, Concurrency: -1, Target: RouteTarget{Plugin: "p"}}},
	}
	c.ApplyDefaults()
	var errs Errors
	if err := c.Validate(); !errors.As(err, &errs) {
		t.Fatalf("Validate: %v, want Errors", err)
	}
	want := Errors{
		{Path: "routes[0].concurrency", Message: "must be >= 1"},
		{Path: "routes[0].target.plugin", Message: `no plugin named "p" under plugins`},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("Validate:\n%v\nwant:\n%v", errs, want)
	}
	c.Routes[0].Concurrency = 1
	c.Routes[0].Target = RouteTarget{Webhook: &Webhook{URL: "http://h"}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a fixed config: %v", err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 3, Path: "a.b", Message: "bad"}, "f.yaml:3: a.b: bad"},
		{Problem{File: "f.yaml", Path: "a.b", Message: "bad"}, "f.yaml: a.b: bad"},
		{Problem{File: "f.yaml", Line: 3, Message: "bad"}, "f.yaml:3: bad"},
		{Problem{File: "f.yaml", Message: "bad"}, "f.yaml: bad"},
		{Problem{Path: "a", Message: "bad"}, "a: bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	errs := Errors{tests[0].p, tests[1].p}
	if got, want := errs.Error(), "f.yaml:3: a.b: bad\nf.yaml: a.b: bad"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestProblemsSortedByLine(t *testing.T) {
	errs := problemsOf(t, `kafka:
  brokers: [k]
routes:
  - name: r
    topics: [t]
    concurrency: -1
    target: {}
log: {level: loud}
`, nil)
	var lines []int
	for _, p := range errs {
		lines = append(lines, p.Line)
	}
	if want := []int{2, 6, 7, 8}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %v, want %v:\n%v", lines, want, errs)
	}
}

// TestNoFollowOnProblems checks that a key that failed to decode, or a
// duplicate name, is reported once and not again by the checks after it.
func TestNoFollowOnProblems(t *testing.T) {
	tests := []struct {
		name, src, path, msg string
	}{
		{"unset url", withRoute("    target: {webhook: {url: \"${NOPE}\"}}\n"), "routes[0].target.webhook.url", "environment variable NOPE is not set"},
		{"bad max instances", strings.Replace(withRoute(hook), "command: [/bin/sh]", "command: [/bin/sh], instances: {min: 5, max: two}", 1), "plugins.p.instances.max", "expected an integer"},
		{"bad max backoff", withRoute("    retry: {initial_backoff: 2m, max_backoff: soon}\n" + hook), "routes[0].retry.max_backoff", `invalid duration "soon"`},
		{"duplicate name", withRoute(hook + "  - {name: r, topics: [u], target: {plugin: p}}\n"), "routes[1].name", "duplicate route name"},
		{"routes not a list", "kafka: {brokers: [\"k:1\"]}\nroutes: {name: r}\n", "routes", "expected a list, got a mapping"},
		{"unset plugin", withRoute("    target: {plugin: \"${UNSET}\"}\n"), "routes[0].target.plugin", "environment variable UNSET is not set"},
		{"unset webhook", withRoute("    target: {webhook: \"${UNSET}\"}\n"), "routes[0].target.webhook", "environment variable UNSET is not set"},
		{"unset plugins", "kafka: {brokers: [\"k:1\"]}\nplugins: \"${UNSET}\"\nroutes: [{name: r, topics: [t], target: {plugin: p}}]\n", "plugins", "environment variable UNSET is not set"},
		{"unset group", withRoute("    group: \"${UNSET}\"\n" + hook + "  - {name: s, topics: [u], group: hookbridge.r, target: {plugin: p}}\n"), "routes[0].group", "environment variable UNSET is not set"},
		{"unset embedded", "kafka: {embedded: \"${UNSET}\"}\n" + hookRoute, "kafka.embedded", "environment variable UNSET is not set"},
		{"unset tls cert", "kafka: {brokers: [\"k:1\"], tls: {enabled: true, cert_file: \"${UNSET}\", key_file: testdata/full.yaml}}\n" + hookRoute, "kafka.tls.cert_file", "environment variable UNSET is not set"},
		{"unset tls enabled", "kafka: {brokers: [\"k:1\"], tls: {enabled: \"${UNSET}\"}, sasl: {mechanism: PLAIN, username: u, password: pw}}\n" + hookRoute, "kafka.tls.enabled", "environment variable UNSET is not set"},
		{"unset client secret file", withRoute("    target: {webhook: {url: \"https://h\", oauth2: {token_url: \"https://idp/t\", client_id: c, client_secret_file: \"${UNSET}\"}}}\n"), "routes[0].target.webhook.oauth2.client_secret_file", "environment variable UNSET is not set"},
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

func TestKafkaVersion(t *testing.T) {
	tests := []struct {
		version, clientID, path, msg string // msg "" means valid
	}{
		{"3.0.0", "", "", ""},
		{"2.8.0", "", "", ""},
		{"4.3.1", "", "", ""},
		{"1.0.0", "my client", "", ""},
		{"0.11.0.2", "", "", ""},
		{"0.11.0.0", "", "", ""},
		{"0.8.0", "", "kafka.version", `must be a Kafka version such as 3.0.0 (before 1.0 four numbers, such as 0.11.0.2), not "0.8.0"`},
		{"0.11.0", "", "kafka.version", "must be a Kafka version such as 3.0.0"},
		{"3.0", "", "kafka.version", "must be a Kafka version such as 3.0.0"},
		{"3.0.0.1", "", "kafka.version", "must be a Kafka version such as 3.0.0"},
		{"v3.0.0", "", "kafka.version", "must be a Kafka version such as 3.0.0"},
		{"0.8.2.0", "", "kafka.version", "must be 0.11.0.0 or later: record headers, which every dead-letter record carries, need it"},
		{"0.10.1.1", "", "kafka.version", "must be 0.11.0.0 or later"},
		{"0.10.2.0", "", "kafka.version", "must be 0.11.0.0 or later"},
		{"0.11.0.2", "my client", "kafka.client_id", "must contain only letters, digits, '.', '_' and '-' with a Kafka version before 1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.clientID, func(t *testing.T) {
			src := "kafka: {brokers: [\"k:1\"], version: \"" + tt.version + "\", client_id: \"" + tt.clientID + "\"}\n" + hookRoute
			checkParse(t, src, nil, tt.path, tt.msg, 1)
		})
	}
	if !minKafkaVersion.IsAtLeast(sarama.MinVersion) {
		t.Errorf("minKafkaVersion %s is older than sarama.MinVersion %s", minKafkaVersion, sarama.MinVersion)
	}
}

// TestKafkaSessionTimeout checks that validate refuses every session timeout
// that bridge/kafka.NewConfig turns into a heartbeat interval sarama refuses
// (one not shorter than the timeout).
func TestKafkaSessionTimeout(t *testing.T) {
	tests := []struct {
		timeout, msg string // msg "" means valid
	}{
		{"1ns", "must be more than 100ms"},
		{"2ms", "must be more than 100ms"},
		{"99ms", "must be more than 100ms"},
		{"100ms", "must be more than 100ms: the heartbeat interval is a quarter of it but at least 100ms, and must be shorter"},
		{"100.5ms", ""},
		{"101ms", ""},
		{"400ms", ""},
		{"401ms", ""},
		{"10s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.timeout, func(t *testing.T) {
			src := "kafka: {brokers: [\"k:1\"], session_timeout: " + tt.timeout + "}\n" + hookRoute
			checkParse(t, src, nil, "kafka.session_timeout", tt.msg, 0)
		})
	}
}

// TestKafkaTimeoutsFitTheProtocol checks that validate refuses a session
// timeout or a shutdown timeout the Kafka protocol cannot carry: both go to
// the brokers as 32-bit milliseconds (the shutdown timeout plus 15s, as the
// groups' rebalance timeout), and a longer one would be sent wrapped around,
// or overflow the process's own shutdown bounds. What it accepts fits.
func TestKafkaTimeoutsFitTheProtocol(t *testing.T) {
	const rebalanceMargin = 15 * time.Second // bridge/kafka's, added to shutdown_timeout
	tests := []struct {
		key, value, msg string // msg "" means valid
	}{
		{"session_timeout", "596h", ""},
		{"session_timeout", "596h0m1s", "must be at most 596h0m0s: it goes to Kafka in 32-bit milliseconds"},
		{"session_timeout", "596h31m24s", "must be at most 596h0m0s"},
		{"session_timeout", "1193h3m", "must be at most 596h0m0s"}, // wraps to a few seconds
		{"session_timeout", "2562047h47m16s", "must be at most 596h0m0s"},
		{"shutdown_timeout", "596h", ""},
		{"shutdown_timeout", "596h31m9s", "must be at most 596h0m0s: the consumer groups' rebalance timeout"},
		{"shutdown_timeout", "2562047h47m16s", "must be at most 596h0m0s"}, // + 5s overflows
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.value, func(t *testing.T) {
			src, path := "shutdown_timeout: "+tt.value+"\nkafka: {brokers: [\"k:1\"]}\n"+hookRoute, "shutdown_timeout"
			if tt.key == "session_timeout" {
				src, path = "kafka: {brokers: [\"k:1\"], session_timeout: "+tt.value+"}\n"+hookRoute, "kafka.session_timeout"
			}
			checkParse(t, src, nil, path, tt.msg, 0)
			if tt.msg != "" {
				return
			}
			c := mustParse(t, src, nil)
			for _, d := range []time.Duration{c.Kafka.SessionTimeout.D(), c.ShutdownTimeout.D() + rebalanceMargin} {
				if ms := d / time.Millisecond; ms > math.MaxInt32 {
					t.Errorf("%s accepted, but %d ms does not fit in 32 bits", d, ms)
				}
			}
		})
	}
}

// Routes that share a target with the same breaker and rate limit (here the
// defaults) are fine, whatever else differs.
func TestRoutesShareATargetWithTheSameSettings(t *testing.T) {
	mustParse(t, withRoute(hook+"  - {name: s, topics: [u], ordering: none, retry: {max_attempts: 20}, "+
		"target: {webhook: {url: \"https://h/x?other=1\"}}}\n  - {name: q, topics: [v], target: {plugin: p}}\n"+
		"  - {name: q2, topics: [v], target: {plugin: p}}\n"), nil)
}

// sumOf returns the hex sha256 of the file at path.
func sumOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// A batch larger than any concurrency can be is refused with advice that can
// be followed: raising concurrency to max_messages would only be refused in
// turn (concurrency is at most 65536).
func TestValidateBatchAboveConcurrencyLimitAdvice(t *testing.T) {
	errs := problemsOf(t, withRoute("    target: {webhook: {url: \"https://h\", batch: {max_messages: 100000}}}\n"), nil)
	p := wantProblem(t, errs, "routes[0].target.webhook.batch.max_messages", "100000 is above the route's concurrency (64)")
	if strings.Contains(p.Message, "at least 100000") {
		t.Errorf("advises a concurrency above its limit of %d: %s", maxConcurrency, p.Message)
	}
	if !strings.Contains(p.Message, "at most 65536") {
		t.Errorf("does not name the largest batch a route can fill (65536): %s", p.Message)
	}
	// Below the limit, the advice stays: raise concurrency.
	errs = problemsOf(t, withRoute("    concurrency: 8\n    target: {webhook: {url: \"https://h\", batch: {max_messages: 9}}}\n"), nil)
	wantProblem(t, errs, "routes[0].target.webhook.batch.max_messages", "set concurrency to at least 9")
}
