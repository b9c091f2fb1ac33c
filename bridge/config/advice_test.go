package config

import (
	"strings"
	"testing"
)

// A route with a dead-letter topic and no more attempts than the failures
// that trip its breaker is valid but gets advice, at the line of the key;
// the defaults (10 and 5), or no dead-letter topic, get none.
func TestAdviceMaxAttemptsNotAboveConsecutiveFailures(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		want        []string // "line: path" of each piece of advice
	}{
		{"defaults", "    dead_letter: {topic: t.dlq}\n", nil},
		{"no dead-letter topic", "    retry: {max_attempts: 3}\n", nil},
		{"max_attempts equal", "    dead_letter: {topic: t.dlq}\n    retry:\n      max_attempts: 5\n",
			[]string{"9: routes[0].retry.max_attempts"}},
		{"consecutive_failures raised", "    dead_letter: {topic: t.dlq}\n    breaker: {consecutive_failures: 12}\n",
			[]string{"4: routes[0].retry.max_attempts"}}, // at its nearest parent in the file: the route
		{"above", "    dead_letter: {topic: t.dlq}\n    retry: {max_attempts: 6}\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, minimal+c.extra, nil)
			var got []string
			for _, a := range cfg.Advice {
				got = append(got, strings.TrimPrefix(a.String(), "test.yaml:"))
				if !strings.Contains(a.Message, "dead-lettered before the breaker opens") {
					t.Errorf("advice %q does not say what happens", a)
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

// An OAuth 2.0 token endpoint over plain HTTP on another host gets advice,
// for the Kafka OAUTHBEARER grant and a webhook's; https, or http on
// loopback (a sidecar), gets none.
func TestAdviceTokenURLOverPlainHTTP(t *testing.T) {
	grant := func(url string) string {
		return "{token_url: \"" + url + "\", client_id: hb, client_secret: s}"
	}
	kafka := func(url string) string {
		return "kafka: {brokers: [\"127.0.0.1:9092\"], tls: {enabled: true}, sasl: {mechanism: OAUTHBEARER, oauthbearer: " + grant(url) + "}}\n"
	}
	route := func(url string) string {
		return "routes:\n  - name: r\n    topics: [t]\n    target: {webhook: {url: \"https://hooks.example/h\", oauth2: " + grant(url) + "}}\n"
	}
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"https", kafka("https://idp.example/token") + route("https://idp.example/token"), nil},
		{"loopback", kafka("http://127.0.0.1:8080/token") + route("http://localhost:8080/token"), nil},
		{"plain http", kafka("http://idp.example/token") + route("http://idp.example/token"),
			[]string{"kafka.sasl.oauthbearer.token_url", "routes[0].target.webhook.oauth2.token_url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, c.src, nil)
			var got []string
			for _, a := range cfg.Advice {
				got = append(got, a.Path)
				if !strings.Contains(a.Message, "client secret") {
					t.Errorf("advice %q does not say what is exposed", a)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("advice at %q, want %q", got, c.want)
			}
		})
	}
}
