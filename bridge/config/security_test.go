package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testKeyPair writes a self-signed certificate valid now and its key as PEM
// files in dir and returns their paths.
func testKeyPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return keyPairValid(t, dir, name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// keyPairValid is testKeyPair of a certificate valid from notBefore to
// notAfter.
func keyPairValid(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o600)
	keyFile = writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})), 0o600)
	return certFile, keyFile
}

// Secret values the validation tests use; no problem may show them.
var testSecrets = map[string]string{
	"SASL_PW":     "sasl-password-value",
	"CLIENT_SEC":  "client-secret-value",
	"BEARER":      "bearer-token-value",
	"BEARER_BAD":  "bearer token with spaces",
	"PROXY":       "http://user:proxy-password-value@proxy:3128",
	"PROXY_FTP":   "ftp://user:proxy-password-value@proxy:21",
	"SIGN_SECRET": secretOf(32),
}

// hookWith is a route posting to url with the given webhook keys (each a
// line at the webhook's indentation).
func hookWith(url string, keys ...string) string {
	s := withRoute("    target:\n      webhook:\n        url: \"" + url + "\"\n")
	for _, k := range keys {
		s += "        " + k + "\n"
	}
	return s
}

const hookLine = 10 // the line of the first key after url in hookWith

func TestSecurityValidation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testKeyPair(t, dir, "client")
	otherCert, _ := testKeyPair(t, dir, "other")
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n", 0o600)
	emptyFile := writeFile(t, dir, "empty", "\n\n", 0o600)
	twoLines := writeFile(t, dir, "two-lines", "bearer-token-value\nbearer-token-value\n", 0o600)
	spaced := writeFile(t, dir, "spaced", "bearer token with spaces\n", 0o600)
	secrets := writeFile(t, dir, "secrets", "# current\n"+secretOf(32)+"\n"+secretOf(10)+"  \n\n# next\nwhsek_"+b64(strings.Repeat("n", 32))+"\n", 0o600)
	comments := writeFile(t, dir, "comments", "# no secrets yet\n\n", 0o600)
	missing := filepath.Join(dir, "missing")

	kafka := func(lines ...string) string {
		return "kafka:\n  brokers: [\"k:9092\"]\n" + strings.Join(lines, "\n") + "\nroutes: [{name: r, topics: [t], target: {plugin: p}}]\nplugins: {p: {command: [/bin/sh]}}\n"
	}
	tests := []struct {
		name, src, path, msg string
		line                 int
	}{
		// kafka.sasl
		{"sasl without tls", kafka("  sasl:", "    mechanism: SCRAM-SHA-512", "    username: u", "    password: ${SASL_PW}"),
			"kafka.sasl.mechanism", "SASL without TLS exposes the credentials", 4},
		{"sasl password missing", kafka("  tls: {enabled: true}", "  sasl:", "    mechanism: SCRAM-SHA-256", "    username: u"),
			"kafka.sasl.password", "is required by mechanism SCRAM-SHA-256", 4}, // absent: the line of sasl
		{"sasl credentials without mechanism", kafka("  sasl:", "    username: u", "    password: ${SASL_PW}"),
			"kafka.sasl.mechanism", "is required when SASL credentials are set", 3},
		{"oauthbearer missing", kafka("  tls: {enabled: true}", "  sasl: {mechanism: OAUTHBEARER}"),
			"kafka.sasl.oauthbearer", "is required by mechanism OAUTHBEARER", 4},
		{"oauthbearer with a password", kafka("  tls: {enabled: true}", "  sasl:", "    mechanism: OAUTHBEARER", "    password: ${SASL_PW}",
			"    oauthbearer: {token_url: \"https://idp/token\", client_id: c, client_secret: \"${CLIENT_SEC}\"}"),
			"kafka.sasl.password", "is not used with mechanism OAUTHBEARER", 6},
		{"oauthbearer with plain", kafka("  tls: {enabled: true}", "  sasl:", "    mechanism: PLAIN", "    username: u", "    password: ${SASL_PW}",
			"    oauthbearer: {token_url: \"https://idp/token\"}"),
			"kafka.sasl.oauthbearer", "is only used with mechanism OAUTHBEARER", 8},
		{"oauthbearer token url", kafka("  tls: {enabled: true}", "  sasl:", "    mechanism: OAUTHBEARER", "    oauthbearer:",
			"      token_url: \"idp:8443/token\"", "      client_id: c", "      client_secret: \"${CLIENT_SEC}\""),
			"kafka.sasl.oauthbearer.token_url", "must be an http:// or https:// URL", 7},

		// webhook oauth2
		{"oauth2 client id", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_secret: \"${CLIENT_SEC}\""),
			"routes[0].target.webhook.oauth2.client_id", "is required", hookLine},
		{"oauth2 secret missing", hookWith("https://h/x", "oauth2: {token_url: \"https://idp/token\", client_id: c}"),
			"routes[0].target.webhook.oauth2.client_secret", "is required (or client_secret_file)", hookLine},
		{"oauth2 two secrets", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c",
			"  client_secret: \"${CLIENT_SEC}\"", "  client_secret_file: "+certFile),
			"routes[0].target.webhook.oauth2.client_secret_file", "not both", hookLine + 4},
		{"oauth2 secret file missing", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c", "  client_secret_file: "+missing),
			"routes[0].target.webhook.oauth2.client_secret_file", "does not exist", hookLine + 3},
		{"oauth2 secret file empty", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c", "  client_secret_file: "+emptyFile),
			"routes[0].target.webhook.oauth2.client_secret_file", "is empty", hookLine + 3},
		{"oauth2 scope", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c", "  client_secret: \"${CLIENT_SEC}\"",
			"  scopes: [read, \"write all\"]"),
			"routes[0].target.webhook.oauth2.scopes[1]", "must be one scope without white space", hookLine + 4},
		{"oauth2 reserved param", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c", "  client_secret: \"${CLIENT_SEC}\"",
			"  endpoint_params:", "    grant_type: password"),
			"routes[0].target.webhook.oauth2.endpoint_params.grant_type", "is set by the grant itself", hookLine + 5},
		{"oauth2 audience twice", hookWith("https://h/x", "oauth2:", "  token_url: \"https://idp/token\"", "  client_id: c", "  client_secret: \"${CLIENT_SEC}\"",
			"  audience: a", "  endpoint_params: {audience: b}"),
			"routes[0].target.webhook.oauth2.endpoint_params.audience", "is also set by audience", hookLine + 5},

		// bearer tokens
		{"bearer token with spaces", hookWith("https://h/x", "bearer_token: \"${BEARER_BAD}\""),
			"routes[0].target.webhook.bearer_token", "must be one token without white space", hookLine},
		{"bearer token and oauth2", hookWith("https://h/x", "bearer_token: \"${BEARER}\"",
			"oauth2: {token_url: \"https://idp/token\", client_id: c, client_secret: \"${CLIENT_SEC}\"}"),
			"routes[0].target.webhook.oauth2", "set only one of bearer_token, oauth2", hookLine + 1},
		{"bearer token and header", hookWith("https://h/x", "bearer_token: \"${BEARER}\"", "headers:", "  authorization: \"Bearer ${BEARER}\""),
			"routes[0].target.webhook.headers.authorization", "conflicts with bearer_token", hookLine + 2},
		{"url credentials and bearer token", hookWith("https://u:p@h/x", "bearer_token: \"${BEARER}\""),
			"routes[0].target.webhook.bearer_token", "set only one of url credentials, bearer_token", hookLine},
		{"url credentials and header", hookWith("https://u:p@h/x", "headers:", "  Authorization: \"Bearer ${BEARER}\""),
			"routes[0].target.webhook.headers.Authorization", "conflicts with url credentials", hookLine + 1},
		{"bearer token file missing", hookWith("https://h/x", "bearer_token_file: "+missing),
			"routes[0].target.webhook.bearer_token_file", "does not exist", hookLine},
		{"bearer token file two lines", hookWith("https://h/x", "bearer_token_file: "+twoLines),
			"routes[0].target.webhook.bearer_token_file", "holds more than one line", hookLine},
		{"bearer token file with spaces", hookWith("https://h/x", "bearer_token_file: "+spaced),
			"routes[0].target.webhook.bearer_token_file", "must hold one token without white space", hookLine},

		// signing secrets file
		{"signing secrets file missing", hookWith("https://h/x", "signing_secrets_file: "+missing),
			"routes[0].target.webhook.signing_secrets_file", "does not exist", hookLine},
		{"signing secrets file short secret", hookWith("https://h/x", "signing_secrets_file: "+secrets),
			"routes[0].target.webhook.signing_secrets_file", "line 3: invalid signing secret: decodes to 10 bytes", hookLine},
		{"signing secrets file wrong prefix", hookWith("https://h/x", "signing_secrets_file: "+secrets),
			"routes[0].target.webhook.signing_secrets_file", `line 6: invalid signing secret: does not start with "whsec_"`, hookLine},
		{"signing secrets file without secrets", hookWith("https://h/x", "signing_secrets_file: "+comments),
			"routes[0].target.webhook.signing_secrets_file", "holds no secrets", hookLine},
		{"signing secrets file is a directory", hookWith("https://h/x", "signing_secrets_file: "+dir),
			"routes[0].target.webhook.signing_secrets_file", "is a directory", hookLine},

		// tls
		{"tls ca missing", hookWith("https://h/x", "tls:", "  ca_file: "+missing),
			"routes[0].target.webhook.tls.ca_file", "does not exist", hookLine + 1},
		{"tls ca without certificates", hookWith("https://h/x", "tls:", "  ca_file: "+garbage),
			"routes[0].target.webhook.tls.ca_file", "holds no PEM certificates", hookLine + 1},
		{"tls cert without key", hookWith("https://h/x", "tls:", "  cert_file: "+certFile),
			"routes[0].target.webhook.tls", "cert_file and key_file must be set together", hookLine},
		{"tls key pair mismatch", hookWith("https://h/x", "tls:", "  cert_file: "+otherCert, "  key_file: "+keyFile),
			"routes[0].target.webhook.tls.cert_file", "does not load with key_file", hookLine + 1},
		{"tls with http", hookWith("http://h/x", "tls: {ca_file: "+certFile+"}"),
			"routes[0].target.webhook.tls", "is only used with an https:// url", hookLine},

		// proxy and the private network guard
		{"proxy scheme", hookWith("https://h/x", "proxy: {url: \"${PROXY_FTP}\"}"),
			"routes[0].target.webhook.proxy.url", "must be an http://, https://, socks5:// or socks5h:// URL", hookLine},
		{"proxy with the guard", hookWith("https://h/x", "deny_private_networks: true", "proxy:", "  url: \"${PROXY}\""),
			"routes[0].target.webhook.proxy.url", "cannot be used with deny_private_networks", hookLine + 2},
		{"env proxy with the guard", hookWith("https://h/x", "deny_private_networks: true", "use_env_proxy: true"),
			"routes[0].target.webhook.use_env_proxy", "the proxy resolves and dials the host", hookLine + 1},
		{"two proxies", hookWith("https://h/x", "use_env_proxy: true", "proxy: {url: \"${PROXY}\"}"),
			"routes[0].target.webhook.use_env_proxy", "set proxy.url or use_env_proxy, not both", hookLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := problemsOf(t, tt.src, testSecrets)
			p := wantProblem(t, errs, tt.path, tt.msg)
			if p.Line != tt.line {
				t.Errorf("line %d, want %d", p.Line, tt.line)
			}
			text := errs.Error()
			for name, secret := range testSecrets {
				if name == "SIGN_SECRET" {
					secret = secret[6:]
				}
				if strings.Contains(text, strings.TrimPrefix(secret, "http://user:")) || strings.Contains(text, "proxy-password-value") {
					t.Errorf("problems show the value of %s:\n%s", name, text)
				}
			}
			if strings.Contains(text, b64(strings.Repeat("k", 10))) || strings.Contains(text, b64(strings.Repeat("n", 32))) {
				t.Errorf("problems show a secret of the secrets file:\n%s", text)
			}
		})
	}
}

func TestValidSecurityConfigs(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testKeyPair(t, dir, "client")
	tokenFile := writeFile(t, dir, "token", "bearer-token-value\n", 0o600)
	secretFile := writeFile(t, dir, "client-secret", "client-secret-value\n", 0o600)
	secrets := writeFile(t, dir, "secrets", "# rotation: new first\n"+secretOf(32)+"\n\n   "+secretOf(64)+"\n", 0o600)
	tests := []struct {
		name, src string
	}{
		{"scram over tls", "kafka:\n  brokers: [\"k:9093\"]\n  tls: {enabled: true, ca_file: " + certFile + ", server_name: kafka.internal}\n" +
			"  sasl: {mechanism: SCRAM-SHA-512, username: u, password: \"${SASL_PW}\"}\n" + minimal[strings.Index(minimal, "routes"):]},
		{"plain without tls, allowed", "kafka:\n  brokers: [\"k:9093\"]\n  sasl: {mechanism: PLAIN, username: u, password: \"${SASL_PW}\", allow_insecure: true}\n" +
			minimal[strings.Index(minimal, "routes"):]},
		{"oauthbearer", "kafka:\n  brokers: [\"k:9093\"]\n  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    oauthbearer:\n" +
			"      token_url: \"https://idp/token\"\n      client_id: hookbridge\n      client_secret_file: " + secretFile + "\n      scopes: [kafka]\n" +
			minimal[strings.Index(minimal, "routes"):]},
		{"webhook with everything", hookWith("https://h/x",
			"signing_secrets: [\"${SIGN_SECRET}\"]", "signing_secrets_file: "+secrets,
			"tls: {ca_file: "+certFile+", cert_file: "+certFile+", key_file: "+keyFile+", server_name: receiver.internal}",
			"oauth2:", "  token_url: \"https://idp/token\"", "  client_id: hookbridge", "  client_secret: \"${CLIENT_SEC}\"",
			"  scopes: [hooks.write]", "  audience: \"https://h\"", "  endpoint_params: {resource: orders}",
			"deny_private_networks: true")},
		{"bearer token file", hookWith("https://h/x", "bearer_token_file: "+tokenFile, "headers: {X-Tenant: acme}")},
		{"bearer token", hookWith("http://h/x", "bearer_token: \"${BEARER}\"")},
		{"guard with an allowed proxy", hookWith("https://h/x", "deny_private_networks: true", "proxy: {url: \"${PROXY}\"}",
			"allow_proxy_with_deny_private_networks: true")},
		{"env proxy", hookWith("https://h/x", "use_env_proxy: true")},
		{"socks proxy", hookWith("https://h/x", "proxy: {url: \"socks5h://proxy:1080\"}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, tt.src, testSecrets)
		})
	}
}

func TestSigningSecretsFrom(t *testing.T) {
	dir := t.TempDir()
	s1, s2, s3 := secretOf(32), secretOf(40), secretOf(48)
	path := writeFile(t, dir, "secrets", "# comment\n\n  "+s2+"\r\n\t# indented comment\n"+s3, 0o600)
	w := Webhook{SigningSecrets: []string{s1}, SigningSecretsFile: path}
	got, err := w.SigningSecretsFrom()
	if err != nil || !reflect.DeepEqual(got, []string{s1, s2, s3}) {
		t.Fatalf("SigningSecretsFrom = %v, %v", got, err)
	}
	lines, err := ReadSecretsFile(path)
	if err != nil || len(lines) != 2 || lines[0].Line != 3 || lines[1].Line != 5 {
		t.Fatalf("ReadSecretsFile = %+v, %v", lines, err)
	}
	if got, err := (&Webhook{SigningSecrets: []string{s1}}).SigningSecretsFrom(); err != nil || !reflect.DeepEqual(got, []string{s1}) {
		t.Fatalf("without a file: %v, %v", got, err)
	}
	_, err = (&Webhook{SigningSecretsFile: writeFile(t, dir, "none", "# only a comment\n", 0o600)}).SigningSecretsFrom()
	if err == nil || !strings.Contains(err.Error(), "holds no secrets") {
		t.Fatalf("a file without secrets: %v", err)
	}
}

const securitySecretsConfig = `
kafka:
  brokers: ["k:9093"]
  tls: {enabled: true}
  sasl:
    mechanism: OAUTHBEARER
    oauthbearer:
      token_url: "https://idp/token"
      client_id: hookbridge
      client_secret: kafka-client-secret
      scopes: [kafka]
      endpoint_params: {resource: cluster, api_key: kafka-param-key}
routes:
  - name: r
    topics: [t]
    target:
      webhook:
        url: https://h/x
        bearer_token: webhook-bearer-token
        signing_secrets_file: /run/secrets/whsec
        proxy: {url: "http://proxy-user:proxy-pass@proxy:3128"}
  - name: s
    topics: [u]
    target:
      webhook:
        url: https://h/y
        bearer_token_file: /run/secrets/token
        oauth2:
          token_url: "https://u:token-url-pass@idp/token"
          client_id: hookbridge
          client_secret: webhook-client-secret
          client_secret_file: ""
          scopes: [hooks]
          endpoint_params: {client_assertion: webhook-assertion, resource: orders}
`

func TestRedactedSecurity(t *testing.T) {
	// Parse would refuse the files that do not exist: decode only.
	c := &Config{}
	root, err := parseYAML("test.yaml", []byte(securitySecretsConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Decode(c); err != nil {
		t.Fatal(err)
	}
	before := c.clone()
	r := c.Redacted()
	if !reflect.DeepEqual(c, before) {
		t.Fatal("Redacted changed the original")
	}
	dump := toText(t, r)
	for _, secret := range []string{"kafka-client-secret", "kafka-param-key", "webhook-bearer-token", "proxy-pass",
		"token-url-pass", "webhook-client-secret", "webhook-assertion"} {
		if strings.Contains(dump, secret) {
			t.Errorf("Redacted still shows %q", secret)
		}
	}
	w0, w1 := r.Routes[0].Target.Webhook, r.Routes[1].Target.Webhook
	tests := []struct {
		name      string
		got, want any
	}{
		{"oauthbearer secret", r.Kafka.SASL.OAuthBearer.ClientSecret, "REDACTED"},
		{"oauthbearer params", r.Kafka.SASL.OAuthBearer.EndpointParams, map[string]string{"resource": "cluster", "api_key": "REDACTED"}},
		{"oauthbearer client id", r.Kafka.SASL.OAuthBearer.ClientID, "hookbridge"},
		{"bearer token", w0.BearerToken, "REDACTED"},
		{"signing secrets file name", w0.SigningSecretsFile, "/run/secrets/whsec"},
		{"proxy url", w0.Proxy.URL, "http://proxy-user:REDACTED@proxy:3128"},
		{"bearer token file name", w1.BearerTokenFile, "/run/secrets/token"},
		{"oauth2 secret", w1.OAuth2.ClientSecret, "REDACTED"},
		{"oauth2 empty secret file", w1.OAuth2.ClientSecretFile, ""},
		{"oauth2 token url", w1.OAuth2.TokenURL, "https://u:REDACTED@idp/token"},
		{"oauth2 params", w1.OAuth2.EndpointParams, map[string]string{"client_assertion": "REDACTED", "resource": "orders"}},
		{"oauth2 scopes", w1.OAuth2.Scopes, []string{"hooks"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// The copies are deep.
	r.Kafka.SASL.OAuthBearer.Scopes[0] = "changed"
	w1.OAuth2.Scopes[0] = "changed"
	w1.OAuth2.EndpointParams["resource"] = "changed"
	if !reflect.DeepEqual(c, before) {
		t.Fatal("changing the redacted copy changed the original")
	}
}

// TestKafkaTLSFiles checks that the kafka TLS files are checked as the Kafka
// client loads them, as a webhook's are: the bundle must hold certificates
// and the pair must load, not merely exist.
func TestKafkaTLSFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testKeyPair(t, dir, "client")
	_, otherKey := testKeyPair(t, dir, "other")
	garbage := writeFile(t, dir, "garbage.pem", "not a pem\n", 0o600)
	tests := []struct {
		name, tls, path, msg string // msg "" means valid
	}{
		{"ca file", "ca_file: " + certFile, "", ""},
		{"key pair", "cert_file: " + certFile + ", key_file: " + keyFile, "", ""},
		{"ca file not PEM", "ca_file: " + garbage, "kafka.tls.ca_file", `"` + garbage + `" holds no PEM certificates`},
		{"cert file not PEM", "cert_file: " + garbage + ", key_file: " + keyFile, "kafka.tls.cert_file", "does not load with key_file"},
		{"key file not PEM", "cert_file: " + certFile + ", key_file: " + garbage, "kafka.tls.cert_file", "does not load with key_file"},
		{"key of another certificate", "cert_file: " + certFile + ", key_file: " + otherKey, "kafka.tls.cert_file", "does not load with key_file: tls: private key does not match public key"},
		{"ca file missing", "ca_file: " + filepath.Join(dir, "missing"), "kafka.tls.ca_file", "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "kafka:\n  brokers: [\"k:9092\"]\n  tls: {enabled: true, " + tt.tls + "}\n" + hookRoute
			checkParse(t, src, nil, tt.path, tt.msg, 3)
		})
	}
}

// A file of secrets is read only when it is a regular file of at most 1 MiB,
// and no more of it than that is read: a device such as /dev/zero would
// never end the read, a pipe block it.
func TestSecretFilesAreSmallRegularFiles(t *testing.T) {
	large := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(large, bytes.Repeat([]byte("whsec_x\n"), (1<<20)/8+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{large, "/dev/zero"} {
		want := name + " is larger than 1 MiB"
		if name == "/dev/zero" {
			want = "/dev/zero is not a regular file"
		}
		if _, err := ReadSecretsFile(name); err == nil || err.Error() != want {
			t.Errorf("ReadSecretsFile(%s) error %v, want %q", name, err, want)
		}
		if _, err := ReadSecretFile(name); err == nil || err.Error() != want {
			t.Errorf("ReadSecretFile(%s) error %v, want %q", name, err, want)
		}
	}
}

// The CA bundle of an OAuth 2.0 token endpoint (OAUTHBEARER's, a webhook's)
// is checked as the TLS ones are.
func TestOAuth2CAFile(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := testKeyPair(t, dir, "idp")
	garbage := writeFile(t, dir, "garbage.pem", "not a pem\n", 0o600)
	grant := `{token_url: "https://idp/token", client_id: c, client_secret: s, ca_file: "%s"}`
	for _, tt := range []struct {
		name, ca, msg string // msg "" means valid
	}{
		{"ca file", certFile, ""},
		{"ca file not PEM", garbage, `"` + garbage + `" holds no PEM certificates`},
		{"ca file missing", filepath.Join(dir, "missing"), "does not exist"},
	} {
		t.Run("kafka "+tt.name, func(t *testing.T) {
			src := "kafka:\n  brokers: [\"k:9092\"]\n  tls: {enabled: true}\n  sasl: {mechanism: OAUTHBEARER, oauthbearer: " +
				fmt.Sprintf(grant, tt.ca) + "}\n" + hookRoute
			path := ""
			if tt.msg != "" {
				path = "kafka.sasl.oauthbearer.ca_file"
			}
			checkParse(t, src, nil, path, tt.msg, 4)
		})
		t.Run("webhook "+tt.name, func(t *testing.T) {
			src := "kafka: {brokers: [\"k:9092\"]}\nroutes:\n  - {name: r, topics: [t], target: {webhook: {url: \"https://h\", oauth2: " +
				fmt.Sprintf(grant, tt.ca) + "}}}\n"
			path := ""
			if tt.msg != "" {
				path = "routes[0].target.webhook.oauth2.ca_file"
			}
			checkParse(t, src, nil, path, tt.msg, 3)
		})
	}
}
