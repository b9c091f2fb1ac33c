package security

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/signing"
)

// whsec is a Standard Webhooks secret of n bytes made of c.
func whsec(c byte, n int) string {
	return signing.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(c), n)))
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestNoSecretInOutput runs `validate` and `run` on configurations that hold
// every kind of secret and checks that no secret value reaches stdout or
// stderr: neither in a valid configuration's output and logs (run fails fast
// on an unreachable broker), nor in the problems of an invalid one.
func TestNoSecretInOutput(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"SASL_PASSWORD":  "sasl-password-0xdeadbeef",
		"WHSEC":          whsec('a', 32),
		"BEARER":         "bearer-token-0xdeadbeef",
		"API_KEY":        "api-key-0xdeadbeef",
		"URL_PASSWORD":   "url-password-0xdeadbeef",
		"PROXY_PASSWORD": "proxy-password-0xdeadbeef",
		"CLIENT_SECRET":  "client-secret-0xdeadbeef",
	}
	fileWhsec := whsec('f', 48)
	fileToken := "file-token-0xdeadbeef"
	var env []string
	shown := []string{fileWhsec, fileWhsec[len(signing.SecretPrefix):], fileToken}
	for k, v := range secrets {
		env = append(env, k+"="+v)
		shown = append(shown, v)
	}
	shown = append(shown, secrets["WHSEC"][len(signing.SecretPrefix):])
	whsecFile := writeFile(t, dir, "whsec", "# signing secrets\n"+fileWhsec+"\n")
	tokenFile := writeFile(t, dir, "token", fileToken+"\n")

	valid := writeFile(t, dir, "valid.yaml", fmt.Sprintf(`kafka:
  brokers: [%q]
  tls: {enabled: true}
  sasl: {mechanism: SCRAM-SHA-512, username: hookbridge, password: "${SASL_PASSWORD}"}
admin: {listen: "off"}
log: {level: debug, format: json}
routes:
  - name: signed
    topics: [t1]
    target:
      webhook:
        url: "https://receiver.example/hook?tenant=acme"
        signing_secrets: ["${WHSEC}"]
        signing_secrets_file: %q
        bearer_token: "${BEARER}"
        headers: {X-Api-Key: "${API_KEY}"}
        proxy: {url: "http://proxy-user:${PROXY_PASSWORD}@127.0.0.1:3128"}
  - name: basic
    topics: [t4]
    target:
      webhook:
        url: "https://hook-user:${URL_PASSWORD}@receiver.example/basic?tenant=acme"
  - name: oauth
    topics: [t2]
    target:
      webhook:
        url: https://receiver.example/oauth
        oauth2: {token_url: "https://idp.example/token", client_id: hookbridge, client_secret: "${CLIENT_SECRET}"}
        deny_private_networks: true
  - name: file-token
    topics: [t3]
    target:
      webhook:
        url: https://receiver.example/file
        bearer_token_file: %q
`, closedPort(t), whsecFile, tokenFile))

	t.Run("validate", func(t *testing.T) {
		code, stdout, stderr := runToEnd(t, env, "validate", "-c", valid)
		if code != 0 || !strings.Contains(stdout, "ok (4 route(s))") {
			t.Fatalf("validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		notShown(t, "validate", stdout+stderr, shown...)
	})

	t.Run("run against an unreachable broker", func(t *testing.T) {
		code, stdout, stderr := runToEnd(t, env, "run", "-c", valid)
		if code != 1 {
			t.Fatalf("run: exit %d, want 1\nstderr:\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "hookbridge stopped") {
			t.Errorf("run did not log why it stopped:\n%s", stderr)
		}
		notShown(t, "run", stdout+stderr, shown...)
	})

	// Every key that holds a secret has a problem of its own.
	badFileSecret := whsec('b', 10)
	badToken := "bad bearer 0xdeadbeef"
	badEnv := append([]string{
		"SHORT_WHSEC=" + whsec('s', 12),
		"BAD_BEARER=" + badToken,
		"BAD_TOKEN_URL=ftp://u:token-url-password-0xdeadbeef@idp.example/token",
		"BAD_PROXY=gopher://proxy-user:bad-proxy-password-0xdeadbeef@proxy:70",
	}, env...)
	badShown := append([]string{badFileSecret[len(signing.SecretPrefix):], whsec('s', 12)[len(signing.SecretPrefix):], badToken,
		"token-url-password-0xdeadbeef", "bad-proxy-password-0xdeadbeef", "0xdeadbeef"}, shown...)
	invalid := writeFile(t, dir, "invalid.yaml", fmt.Sprintf(`kafka:
  brokers: ["127.0.0.1:9092"]
  sasl: {mechanism: PLAIN, username: hookbridge, password: "${SASL_PASSWORD}"}
routes:
  - name: signed
    topics: [t1]
    target:
      webhook:
        url: "https://hook-user:${URL_PASSWORD}@receiver.example/hook"
        signing_secrets: ["${SHORT_WHSEC}"]
        signing_secrets_file: %q
        bearer_token: "${BAD_BEARER}"
        proxy: {url: "${BAD_PROXY}"}
  - name: oauth
    topics: [t2]
    target:
      webhook:
        url: https://receiver.example/oauth
        oauth2: {token_url: "${BAD_TOKEN_URL}", client_id: hookbridge, client_secret: "${CLIENT_SECRET}", client_secret_file: %q}
`, writeFile(t, dir, "bad-whsec", "# a short one\n"+badFileSecret+"\n"), tokenFile))

	for _, cmd := range []string{"validate", "run"} {
		t.Run(cmd+" of an invalid configuration", func(t *testing.T) {
			code, stdout, stderr := runToEnd(t, badEnv, cmd, "-c", invalid)
			if code != 2 {
				t.Fatalf("%s: exit %d, want 2\nstderr:\n%s", cmd, code, stderr)
			}
			for _, want := range []string{"kafka.sasl.mechanism", "signing_secrets[0]", "signing_secrets_file: line 2",
				"bearer_token", "proxy.url", "oauth2.token_url", "oauth2.client_secret_file"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("%s does not report %s:\n%s", cmd, want, stderr)
				}
			}
			notShown(t, cmd, stdout+stderr, badShown...)
		})
	}
}
