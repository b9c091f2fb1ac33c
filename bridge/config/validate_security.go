package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// proxySchemes are the proxy URL schemes Go's HTTP transport supports.
var proxySchemes = []string{"http", "https", "socks5", "socks5h"}

// reservedTokenParams are the token request parameters that endpoint_params
// must not set: the grant sets them from other keys.
var reservedTokenParams = []string{"grant_type", "scope", "client_id", "client_secret"}

// validateSecurity checks the credentials of a mechanism and that SASL runs
// over TLS. No message contains a password or secret.
func (s *SASL) validateSecurity(v *checker, path string, tlsEnabled bool) {
	switch s.Mechanism {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			v.addf(path+".username", "is required when a mechanism is set")
		}
		if s.Password == "" {
			v.addf(path+".password", "is required by mechanism %s", s.Mechanism)
		}
		if s.OAuthBearer.Set() {
			v.addf(path+".oauthbearer", "is only used with mechanism %s", SASLOAuthBearer)
		}
	case SASLOAuthBearer:
		if s.OAuthBearer.Set() {
			s.OAuthBearer.validate(v, path+".oauthbearer")
		} else {
			v.addf(path+".oauthbearer", "is required by mechanism %s (token_url, client_id, client_secret)", SASLOAuthBearer)
		}
		if s.Username != "" {
			v.addf(path+".username", "is not used with mechanism %s", SASLOAuthBearer)
		}
		if s.Password != "" {
			v.addf(path+".password", "is not used with mechanism %s", SASLOAuthBearer)
		}
	case "":
		if s.Username != "" || s.Password != "" || s.OAuthBearer.Set() {
			v.addf(path+".mechanism", "is required when SASL credentials are set")
		}
		return
	default:
		return // reported by oneOf
	}
	if !tlsEnabled && !s.AllowInsecure {
		v.addf(path+".mechanism", "SASL without TLS exposes the credentials (PLAIN, OAUTHBEARER) and every record; "+
			"set kafka.tls.enabled: true, or kafka.sasl.allow_insecure: true on a trusted network")
	}
}

// validate checks a client-credentials grant that is set. No message
// contains the client secret.
func (o *OAuth2) validate(v *checker, path string) {
	if o.TokenURL == "" {
		v.addf(path+".token_url", "is required")
	} else if err := checkHTTPURL(o.TokenURL); err != nil {
		v.addf(path+".token_url", "%v", err)
	}
	if o.ClientID == "" {
		v.addf(path+".client_id", "is required")
	}
	switch {
	case o.ClientSecret != "" && o.ClientSecretFile != "":
		v.addf(path+".client_secret_file", "set client_secret or client_secret_file, not both")
	case o.ClientSecret == "" && o.ClientSecretFile == "":
		if v.decoded(path+".client_secret", path+".client_secret_file") {
			v.addf(path+".client_secret", "is required (or client_secret_file)")
		}
	case o.ClientSecretFile != "":
		checkSecretFile(v, path+".client_secret_file", o.ClientSecretFile)
	}
	validateTLSFiles(v, path, o.CAFile, "", "")
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			v.addf(joinIndex(path+".scopes", i), "must be one scope without white space")
		}
	}
	for _, k := range sortedKeys(o.EndpointParams) {
		switch {
		case slices.Contains(reservedTokenParams, k):
			v.addf(joinKey(path+".endpoint_params", k), "is set by the grant itself (use client_id, client_secret, scopes)")
		case k == "audience" && o.Audience != "":
			v.addf(joinKey(path+".endpoint_params", k), "is also set by audience; set one")
		}
	}
}

// validateSecurity checks the signing secrets file, TLS, authentication,
// the private-network guard and the proxy of a webhook. No message contains
// a secret, a token or a URL.
func (w *Webhook) validateSecurity(v *checker, path string) {
	if w.SigningSecretsFile != "" {
		w.validateSecretsFile(v, path+".signing_secrets_file")
	}

	https := strings.HasPrefix(strings.ToLower(w.URL), "https://")
	if w.TLS.Set() {
		validateTLSFiles(v, path+".tls", w.TLS.CAFile, w.TLS.CertFile, w.TLS.KeyFile)
		if !https && checkHTTPURL(w.URL) == nil {
			v.addf(path+".tls", "is only used with an https:// url")
		}
	}

	w.validateAuth(v, path)

	proxyPath := ""
	switch {
	case w.Proxy.URL != "" && w.UseEnvProxy:
		v.addf(path+".use_env_proxy", "set proxy.url or use_env_proxy, not both")
	case w.Proxy.URL != "":
		proxyPath = path + ".proxy.url"
		checkProxyURL(v, proxyPath, w.Proxy.URL)
	case w.UseEnvProxy:
		proxyPath = path + ".use_env_proxy"
	}
	if proxyPath != "" && w.DenyPrivateNetworks && !w.AllowProxyWithDenyPrivateNetworks {
		v.addf(proxyPath, "cannot be used with deny_private_networks: the proxy resolves and dials the host, so the "+
			"guard never sees its address; set allow_proxy_with_deny_private_networks: true only if the proxy "+
			"enforces its own egress policy")
	}
}

// validateAuth checks the Authorization sources: at most one of
// bearer_token, bearer_token_file, oauth2 and an Authorization header.
func (w *Webhook) validateAuth(v *checker, path string) {
	var set []string
	if u, err := url.Parse(w.URL); err == nil && u.User != nil {
		set = append(set, "url credentials") // first: set[1] below is a key
	}
	if w.BearerToken != "" {
		set = append(set, "bearer_token")
		if !validToken(w.BearerToken) {
			v.addf(path+".bearer_token", "must be one token without white space or control characters")
		}
	}
	if w.BearerTokenFile != "" {
		set = append(set, "bearer_token_file")
		if token, ok := checkSecretFile(v, path+".bearer_token_file", w.BearerTokenFile); ok && !validToken(token) {
			v.addf(path+".bearer_token_file", "must hold one token without white space or control characters")
		}
	}
	if w.OAuth2.Set() {
		set = append(set, "oauth2")
		w.OAuth2.validate(v, path+".oauth2")
	}
	if len(set) > 1 {
		v.addf(path+"."+set[1], "set only one of %s", strings.Join(set, ", "))
	}
	if len(set) > 0 {
		for name := range w.Headers {
			if http.CanonicalHeaderKey(name) == "Authorization" {
				v.addf(joinKey(path+".headers", name), "conflicts with %s, which sets Authorization", set[0])
			}
		}
	}
}

// validToken reports whether a bearer token fits in a header value as one
// token: printable ASCII without spaces.
func validToken(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}

// validateSecretsFile checks every line of a signing secrets file.
func (w *Webhook) validateSecretsFile(v *checker, path string) {
	if !checkFile(v, path, w.SigningSecretsFile) {
		return
	}
	lines, err := ReadSecretsFile(w.SigningSecretsFile)
	if err != nil {
		v.addf(path, "cannot read %s: %v", v.show(path, w.SigningSecretsFile), fileDetail(err, w.SigningSecretsFile))
		return
	}
	if len(lines) == 0 {
		v.addf(path, "%s holds no secrets (one whsec_ secret per line)", v.show(path, w.SigningSecretsFile))
	}
	for _, l := range lines {
		if msg := secretProblem(l.Secret); msg != "" {
			v.addf(path, "line %d: %s", l.Line, msg)
		}
	}
}

// checkSecretFile checks that a file holding one secret exists and holds
// one non-empty line, returning the secret when it does.
func checkSecretFile(v *checker, path, name string) (string, bool) {
	if !checkFile(v, path, name) {
		return "", false
	}
	s, err := ReadSecretFile(name)
	if err != nil {
		msg := errorDetail(err).Error()
		if rest, ok := strings.CutPrefix(msg, name); ok {
			msg = v.show(path, name) + rest // "<name> is empty", "<name> is larger than 1 MiB"
		}
		v.addf(path, "%s", msg)
		return "", false
	}
	return s, true
}

// errorDetail drops the operation of a *os.PathError, whose path the message
// names anyway.
func errorDetail(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileDetail is errorDetail without the "<name>: " that ReadSecretsFile puts
// first, since the message names the file already (or must not).
func fileDetail(err error, name string) string {
	msg := errorDetail(err).Error()
	if rest, ok := strings.CutPrefix(msg, name+": "); ok {
		return rest
	}
	return msg
}

// maxCAFile bounds the size of a CA bundle: a few hundred KiB hold every
// public root.
const maxCAFile = 16 << 20

// validateTLSFiles checks a CA bundle and a client key pair the way they are
// loaded, for the brokers and for webhooks alike: the files exist, the
// bundle holds certificates, and the pair loads.
func validateTLSFiles(v *checker, path, caFile, certFile, keyFile string) {
	if checkFile(v, path+".ca_file", caFile) {
		if pem, err := readFile(caFile, maxCAFile); err != nil {
			v.addf(path+".ca_file", "cannot read %s: %v", v.show(path+".ca_file", caFile), errorDetail(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.addf(path+".ca_file", "%s holds no PEM certificates", v.show(path+".ca_file", caFile))
		}
	}
	certOK := checkFile(v, path+".cert_file", certFile)
	keyOK := checkFile(v, path+".key_file", keyFile)
	switch {
	case (certFile == "") != (keyFile == ""):
		if v.decoded(path+".cert_file", path+".key_file") {
			v.addf(path, "cert_file and key_file must be set together")
		}
	case certOK && keyOK:
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			v.addf(path+".cert_file", "does not load with key_file: %v", errorDetail(err))
		}
	}
}

// checkProxyURL checks a proxy URL without repeating it (it may hold a
// password).
func checkProxyURL(v *checker, path, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.addf(path, "is not a valid URL")
	case !slices.Contains(proxySchemes, strings.ToLower(u.Scheme)):
		v.addf(path, "must be an http://, https://, socks5:// or socks5h:// URL")
	case u.Hostname() == "":
		v.addf(path, "must have a host")
	default:
		if err := checkURLPort(u); err != nil {
			v.addf(path, "%v", err)
		}
	}
}

// joinIndex appends "[i]" to a key path.
func joinIndex(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
