package config

import (
	"strings"
	"testing"
)

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
	out, err := c.EffectiveYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"semi-token", "semi-sig", "percent-code"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("the printed configuration shows %q:\n%s", secret, out)
		}
	}
	r := c.Redacted()
	for i, want := range []string{"https://h/a?token=REDACTED;v=2;sig=REDACTED", "https://h/b?q=100%&code=REDACTED"} {
		if got := r.Routes[i].Target.Webhook.URL; got != want {
			t.Errorf("route %d: Redacted URL = %q, want %q", i, got, want)
		}
	}
}
