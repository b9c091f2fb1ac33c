package config

import (
	"reflect"
	"strings"
	"testing"
)

const secretsConfig = `
kafka:
  brokers: ["k:9092"]
  sasl: {mechanism: PLAIN, username: user, password: "${PW}", allow_insecure: true}
telemetry: {otlp_endpoint: "https://u:otlp-pass@collector:4317"}
plugins:
  p:
    command: [/bin/sh]
    env: {API_TOKEN: plugin-token, db_password: plugin-pw, Signing_Key: plugin-key, CLIENT_SECRET: plugin-secret, REGION: eu-west-1, EMPTY_TOKEN: "", DB_PASSWD: plugin-passwd, BASIC_AUTH: plugin-basic, GOOGLE_CREDENTIALS: plugin-cred}
routes:
  - name: r
    topics: [t]
    filter: {headers: {tenant: acme}}
    target:
      webhook:
        url: https://h/x?tenant=acme
        headers:
          Authorization: Bearer auth-value
          proxy-authorization: Basic proxy-value
          Cookie: session=cookie-value
          X-Api-Key: key-value
          X-Auth-Token: token-value
          X-Client-Secret: secret-value
          X-Auth: xauth-value
          X-Hub-Signature: sig-value
          X-Session-Id: session-value
          X-Request-Source: hookbridge
        signing_secrets: ["${S1}", "${S2}"]
  - name: p
    topics: [t2]
    target: {plugin: p}
  - name: basic
    topics: [t3]
    target: {webhook: {url: "https://hook-user:hook-pass@h/z?tenant=acme"}}
  - name: query
    topics: [t5]
    target: {webhook: {url: "https://token-as-user@h/q?tenant=acme&api_key=query-key&code=query-code&sig=query-sig&access_token=query-token"}}
  - name: slack
    topics: [t4]
    target: {webhook: {url: "https://hooks.slack.com/services/T1/B2/slack-path-secret"}}
`

func TestRedacted(t *testing.T) {
	s1, s2 := secretOf(32), secretOf(40)
	c := mustParse(t, secretsConfig, map[string]string{"PW": "sasl-pass", "S1": s1, "S2": s2})
	before := c.clone()
	r := c.Redacted()

	if !reflect.DeepEqual(c, before) {
		t.Fatalf("Redacted changed the original")
	}
	text := strings.Join([]string{
		c.Kafka.SASL.Password, s1[6:], s2[6:], "otlp-pass", "hook-pass", "plugin-token", "plugin-pw", "plugin-key",
		"plugin-secret", "auth-value", "proxy-value", "cookie-value", "key-value", "token-value", "secret-value",
		"slack-path-secret", "token-as-user", "plugin-passwd", "plugin-basic", "plugin-cred", "xauth-value", "sig-value", "session-value", "query-key", "query-code", "query-sig", "query-token",
	}, "\n")
	dump := strings.ToLower(toText(t, r))
	for _, secret := range strings.Split(text, "\n") {
		if strings.Contains(dump, strings.ToLower(secret)) {
			t.Errorf("Redacted still shows %q", secret)
		}
	}
	w := r.Routes[0].Target.Webhook
	tests := []struct {
		name      string
		got, want any
	}{
		{"sasl password", r.Kafka.SASL.Password, "REDACTED"},
		{"sasl username", r.Kafka.SASL.Username, "user"},
		{"otlp endpoint", r.Telemetry.OTLPEndpoint, "https://u:REDACTED@collector:4317"},
		{"url", w.URL, "https://h/x?tenant=acme"},
		{"url with credentials", r.Routes[2].Target.Webhook.URL, "https://hook-user:REDACTED@h/z?tenant=acme"},
		{"url with a user name alone and credentials in its query", r.Routes[3].Target.Webhook.URL,
			"https://REDACTED@h/q?tenant=acme&api_key=REDACTED&code=REDACTED&sig=REDACTED&access_token=REDACTED"},
		{"signing secrets", w.SigningSecrets, []string{"REDACTED", "REDACTED"}},
		{"headers", w.Headers, map[string]string{
			"Authorization":       "REDACTED",
			"proxy-authorization": "REDACTED",
			"Cookie":              "REDACTED",
			"X-Api-Key":           "REDACTED",
			"X-Auth-Token":        "REDACTED",
			"X-Client-Secret":     "REDACTED",
			"X-Auth":              "REDACTED",
			"X-Hub-Signature":     "REDACTED",
			"X-Session-Id":        "REDACTED",
			"X-Request-Source":    "hookbridge",
		}},
		{"plugin env", r.Plugins["p"].Env, map[string]string{
			"API_TOKEN":          "REDACTED",
			"db_password":        "REDACTED",
			"Signing_Key":        "REDACTED",
			"CLIENT_SECRET":      "REDACTED",
			"REGION":             "eu-west-1",
			"EMPTY_TOKEN":        "",
			"DB_PASSWD":          "REDACTED",
			"BASIC_AUTH":         "REDACTED",
			"GOOGLE_CREDENTIALS": "REDACTED",
		}},
		{"filter headers", r.Routes[0].Filter.Headers, map[string]string{"tenant": "acme"}},
		{"plugin route", r.Routes[1], c.Routes[1]},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestCloneIsDeep changes everything a clone can reach and checks that the
// original does not see it.
func TestCloneIsDeep(t *testing.T) {
	c := mustParse(t, secretsConfig, map[string]string{"PW": "x", "S1": secretOf(32), "S2": secretOf(32)})
	before := c.clone()
	r := c.clone()
	r.Kafka.Brokers[0] = "changed"
	*r.Telemetry.SampleRatio = 0.25
	r.Plugins["p"].Command[0] = "changed"
	r.Plugins["p"].Env["REGION"] = "changed"
	r.Plugins["q"] = Plugin{}
	r.Routes[0].Topics[0] = "changed"
	r.Routes[0].Filter.Headers["tenant"] = "changed"
	w := r.Routes[0].Target.Webhook
	w.URL = "changed"
	w.Headers["X-Request-Source"] = "changed"
	w.SigningSecrets[0] = "changed"
	*w.ForwardHeaders = false
	if !reflect.DeepEqual(c, before) {
		t.Errorf("changing a clone changed the original")
	}
}

func TestRedactedEmpty(t *testing.T) {
	c := &Config{}
	if r := c.Redacted(); !reflect.DeepEqual(r, c) {
		t.Errorf("Redacted of an empty config = %+v", r)
	}
}

// toText renders every string reachable in c, for a search.
func toText(t *testing.T, c *Config) string {
	t.Helper()
	var b strings.Builder
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			b.WriteString(v.String() + "\n")
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key())
				walk(it.Value())
			}
		}
	}
	walk(reflect.ValueOf(c))
	return b.String()
}

// The configuration validate --print shows is the one the bridge takes:
// loaded again, it prints the same, every default and route group
// included. Its secrets are redacted, so this configuration has none.
func TestEffectiveYAMLLoadsAsTheSame(t *testing.T) {
	const src = `
kafka: {brokers: ["k1:9092", "k2:9092"], initial_offset: newest, tls: {enabled: true}}
telemetry: {sample_ratio: 0.25}
plugins:
  p: {command: [/bin/sh, -c, "exec true"], env: {REGION: eu}, instances: {min: 1, max: 3}, start_timeout: 1m}
routes:
  - name: orders
    topics: [orders, orders-eu]
    ordering: partition
    filter: {headers: {tenant: acme}, key_prefix: "eu-"}
    target:
      webhook:
        url: https://h/x?tenant=acme
        headers: {X-Source: hookbridge}
        forward_headers: false
        batch: {max_messages: 10}
        rate_limit: 50
    retry: {max_attempts: 3, max_age: 1h}
    dead_letter: {topic: orders.dlq}
  - name: enrich
    topics: [t2]
    group: custom
    target: {plugin: p}
    reply: {topic: t2.out}
`
	c := mustParse(t, src, nil)
	out, err := c.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("printed.yaml", out, envOf(nil))
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	// Every key is printed, so a value that did not load as printed
	// would print otherwise.
	twice, err := again.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	if string(twice) != string(out) {
		t.Errorf("the printed configuration loads as another:\n%s\nwant\n%s", twice, out)
	}
	for _, key := range []string{"session_timeout: 10s", "max_in_flight_bytes: 64MiB", "open_timeout: 15s", "group: hookbridge.orders", "start_timeout: 1m0s"} {
		if !strings.Contains(string(out), key) {
			t.Errorf("the printed configuration lacks %q:\n%s", key, out)
		}
	}
}

// Printed, a configuration shows none of its secrets.
func TestEffectiveYAMLRedacts(t *testing.T) {
	s1, s2 := secretOf(32), secretOf(40)
	c := mustParse(t, secretsConfig, map[string]string{"PW": "sasl-pass", "S1": s1, "S2": s2})
	printedShowsNone(t, c, "sasl-pass", s1[6:], s2[6:], "otlp-pass", "hook-pass", "plugin-token", "auth-value",
		"slack-path-secret", "token-as-user", "query-key")
}

// A webhook URL whose query url.ParseQuery refuses (a ; separator, a stray
// %) is valid and sent as written: printed, its credentials are redacted
// all the same, and the rest of it is kept as written.
func TestEffectiveYAMLRedactsAnUnparsableQuery(t *testing.T) {
	const src = `
kafka: {brokers: ["k:9092"]}
routes:
  - name: semicolon
    topics: [t1]
    target: {webhook: {url: "https://h/a?token=semi-token;v=2;sig=semi-sig"}}
  - name: percent
    topics: [t2]
    target: {webhook: {url: "https://h/b?q=100%&code=percent-code"}}
`
	c := mustParse(t, src, nil)
	printedShowsNone(t, c, "semi-token", "semi-sig", "percent-code")
	r := c.Redacted()
	for i, want := range []string{"https://h/a?token=REDACTED;v=2;sig=REDACTED", "https://h/b?q=100%&code=REDACTED"} {
		if got := r.Routes[i].Target.Webhook.URL; got != want {
			t.Errorf("route %d: Redacted URL = %q, want %q", i, got, want)
		}
	}
}

// printedShowsNone checks that c, printed as validate --print prints it,
// shows none of secrets.
func printedShowsNone(t *testing.T, c *Config, secrets ...string) {
	t.Helper()
	out, err := c.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		if strings.Contains(string(out), secret) {
			t.Errorf("the printed configuration shows %q:\n%s", secret, out)
		}
	}
}

// The first-party plugins take their passwords inside a connection string
// (docs/plugins.md: REDIS_URL: redis://:${REDIS_PASSWORD}@..., PG_DSN:
// postgres://user:password@... or host=... password=...), in variables not
// named like a secret. validate --print (EffectiveYAML) must not show them,
// and must keep the rest of those variables and the others as they are.
func TestEffectiveYAMLHidesPluginConnectionPasswords(t *testing.T) {
	const src = `
kafka: {brokers: ["k:9092"]}
plugins:
  store:
    command: [/bin/sh]
    env:
      REDIS_URL: "redis://:${REDIS_PASSWORD}@redis.internal:6379/0"
      PG_DSN: "postgres://app:${PG_PASSWORD}@db.internal:5432/orders?sslmode=require"
      PG_KV_DSN: "host=db.internal user=app password = '${KV_PASSWORD}' dbname=orders"
      REGION: eu-west-1
routes:
  - name: r
    topics: [t]
    target: {plugin: store}
`
	c := mustParse(t, src, map[string]string{
		"REDIS_PASSWORD": "redis-pw-0xdead", "PG_PASSWORD": "pg-pw-0xdead", "KV_PASSWORD": "kv pw 0xdead"})
	out, err := c.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"redis-pw-0xdead", "pg-pw-0xdead", "kv pw 0xdead"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("validate --print shows the password %q:\n%s", secret, out)
		}
	}
	env := c.Redacted().Plugins["store"].Env
	for k, want := range map[string]string{
		"REDIS_URL": "redis://:REDACTED@redis.internal:6379/0",
		"PG_DSN":    "postgres://app:REDACTED@db.internal:5432/orders?sslmode=require",
		"PG_KV_DSN": "REDACTED",
		"REGION":    "eu-west-1",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if got := c.Plugins["store"].Env["PG_DSN"]; !strings.Contains(got, "pg-pw-0xdead") {
		t.Errorf("Redacted changed the original: PG_DSN = %q", got)
	}
}
