package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// WebhookTLS configures HTTPS to a webhook URL. Every field is optional.
type WebhookTLS struct {
	// CAFile is a PEM bundle of the CAs to trust; it replaces the system
	// roots. Default "": the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate presented to the receiver
	// (mutual TLS); set it together with KeyFile. Read at start-up and again
	// by a reload (SIGHUP) when it changed.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify disables certificate verification. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ServerName is the name the receiver's certificate must carry (and the
	// SNI sent). Default "": the URL's host.
	ServerName string `yaml:"server_name"`
}

// Set reports whether any TLS setting is given.
func (t *WebhookTLS) Set() bool { return *t != WebhookTLS{} }

// OAuth2 is an OAuth 2.0 client-credentials grant (RFC 6749 section 4.4).
// The token is cached and fetched again shortly before it expires. Setting
// any field turns it on; TokenURL, ClientID and one of ClientSecret or
// ClientSecretFile are then required.
type OAuth2 struct {
	// TokenURL is the http or https token endpoint.
	TokenURL string `yaml:"token_url"`
	// ClientID identifies the client.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates the client. It is never logged.
	ClientSecret string `yaml:"client_secret"`
	// ClientSecretFile names a file holding the client secret instead; it
	// is read at every token request, so it can be rotated in place.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes are requested, space-separated, as "scope". Default: none.
	Scopes []string `yaml:"scopes"`
	// Audience is sent as the "audience" parameter. Default "" (not sent).
	Audience string `yaml:"audience"`
	// EndpointParams are extra form parameters of the token request.
	EndpointParams map[string]string `yaml:"endpoint_params"`
	// CAFile is a PEM CA bundle trusted for the token endpoint, in place
	// of the system roots (for a webhook's, of its tls.ca_file or the
	// system roots). Default "".
	CAFile string `yaml:"ca_file"`
}

// Set reports whether the grant is configured (any field is given).
func (o *OAuth2) Set() bool {
	return o.TokenURL != "" || o.ClientID != "" || o.ClientSecret != "" || o.ClientSecretFile != "" ||
		len(o.Scopes) > 0 || o.Audience != "" || len(o.EndpointParams) > 0 || o.CAFile != ""
}

// Proxy names a proxy for webhook requests.
type Proxy struct {
	// URL is an http://, https://, socks5:// or socks5h:// proxy URL; user
	// info in it authenticates to the proxy. Default "" (no proxy).
	URL string `yaml:"url"`
}

// SecretLine is one secret of a secrets file and the line it is on.
type SecretLine struct {
	Line   int
	Secret string
}

// maxSecretsFile bounds the size of a secrets file.
const maxSecretsFile = 1 << 20

// ReadSecretsFile reads a file of secrets, one per line, ignoring blank lines
// and lines whose first non-blank character is '#'; surrounding white space
// is trimmed. Its errors never contain a secret.
func ReadSecretsFile(name string) ([]SecretLine, error) {
	data, err := readFile(name, maxSecretsFile)
	if err != nil {
		return nil, err
	}
	var out []SecretLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxSecretsFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, SecretLine{Line: n, Secret: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}

// SigningSecretsFrom returns the signing secrets of w: SigningSecrets
// followed by those of SigningSecretsFile. Its errors never contain a secret.
func (w *Webhook) SigningSecretsFrom() ([]string, error) {
	secrets := append([]string(nil), w.SigningSecrets...)
	if w.SigningSecretsFile == "" {
		return secrets, nil
	}
	lines, err := ReadSecretsFile(w.SigningSecretsFile)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s holds no secrets", w.SigningSecretsFile)
	}
	for _, l := range lines {
		secrets = append(secrets, l.Secret)
	}
	return secrets, nil
}

// ReadSecretFile reads a file holding one secret (a token, a client secret):
// its content with surrounding white space trimmed, which must be one
// non-empty line. Its errors never contain the secret.
func ReadSecretFile(name string) (string, error) {
	data, err := readFile(name, maxSecretsFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty", name)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%s holds more than one line", name)
	}
	return s, nil
}
