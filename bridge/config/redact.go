package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// redacted is what Redacted puts in place of a secret.
const redacted = "REDACTED"

// Redacted returns a deep copy of c that is safe to log or print: the SASL
// password, OAuth 2.0 client secrets (and endpoint parameters named like a
// secret), webhook signing secrets and bearer tokens, the password in a URL
// (proxy URLs included), the path of a webhook URL that is itself a secret
// (Webhook.SecretPath), webhook headers that carry credentials
// (Authorization, Proxy-Authorization, Cookie, or a name containing "token",
// "secret", "key", "passw", "auth", "sig", "session" or "credential") and
// plugin environment variables whose name contains TOKEN, SECRET, PASSW, KEY,
// AUTH or CREDENTIAL are replaced by "REDACTED", and so
// are the password of a URL in any other plugin variable (REDIS_URL, PG_DSN)
// and a key=value connection string with a password (redactEnvValue). Empty
// values stay empty. File names are kept: they are not secrets. c is not
// changed.
func (c *Config) Redacted() *Config {
	r := c.clone()
	if r.Kafka.SASL.Password != "" {
		r.Kafka.SASL.Password = redacted
	}
	r.Kafka.SASL.OAuthBearer.redact()
	r.Telemetry.OTLPEndpoint = redactURL(r.Telemetry.OTLPEndpoint)
	for name, p := range r.Plugins {
		redactMap(p.Env, isSecretEnv)
		for k, v := range p.Env {
			p.Env[k] = redactEnvValue(v)
		}
		r.Plugins[name] = p
	}
	for i := range r.Routes {
		if w := r.Routes[i].Target.Webhook; w != nil {
			w.URL = redactURL(w.URL)
			if u, err := url.Parse(w.URL); err == nil {
				w.hidePath(u)
				w.URL = u.String()
			}
			redactMap(w.Headers, isSecretHeader)
			for j, s := range w.SigningSecrets {
				if s != "" {
					w.SigningSecrets[j] = redacted
				}
			}
			if w.BearerToken != "" {
				w.BearerToken = redacted
			}
			w.OAuth2.redact()
			w.Proxy.URL = redactURL(w.Proxy.URL)
		}
	}
	return r
}

// EffectiveYAML renders c as the bridge takes it, for `hookbridge validate
// --print`: every key with its value, defaults filled in (a route's
// consumer group too), ${VAR}s expanded, secrets redacted (see Redacted).
// Loaded again, it gives c back but for the redacted secrets: a "$" in a
// value is written "$$", so that it is not expanded again.
func (c *Config) EffectiveYAML() ([]byte, error) {
	r := c.Redacted()
	for i := range r.Routes {
		r.Routes[i].Group = r.Routes[i].GroupID()
	}
	var doc yaml.Node
	if err := doc.Encode(r); err != nil {
		return nil, err
	}
	escapeDollars(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// escapeDollars writes every "$" in the values under n as "$$", which
// loading expands back to "$". Keys are left alone: they are not expanded.
func escapeDollars(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = strings.ReplaceAll(n.Value, "$", "$$")
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			escapeDollars(n.Content[i])
		}
	default:
		for _, c := range n.Content {
			escapeDollars(c)
		}
	}
}

// redact replaces the client secret and secret-looking endpoint parameters.
func (o *OAuth2) redact() {
	if o.ClientSecret != "" {
		o.ClientSecret = redacted
	}
	o.TokenURL = redactURL(o.TokenURL)
	redactMap(o.EndpointParams, isSecretParam)
}

// isSecretParam reports whether a token request parameter carries
// credentials: named like a secret header, or a client assertion (a signed
// JWT that authenticates the client).
func isSecretParam(name string) bool {
	return isSecretHeader(name) || strings.Contains(strings.ToLower(name), "assertion")
}

// cloneRefs replaces the slices and maps of a copied grant with copies.
func (o *OAuth2) cloneRefs() {
	o.Scopes = slices.Clone(o.Scopes)
	o.EndpointParams = maps.Clone(o.EndpointParams)
}

// redactMap replaces the non-empty values whose key is secret.
func redactMap(m map[string]string, secret func(string) bool) {
	for k, v := range m {
		if v != "" && secret(k) {
			m[k] = redacted
		}
	}
}

// isSecretHeader reports whether an HTTP header carries credentials.
func isSecretHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	return containsAny(strings.ToLower(name), "token", "secret", "key", "passw", "auth", "sig", "session", "credential")
}

// redactEnvValue redacts what a plugin environment variable not named like
// a secret may hold all the same: a URL's password or credential-like query
// parameters (redactURL), as in REDIS_URL or a postgres:// PG_DSN, and a
// key=value connection string with a password (PG_DSN's "host=db
// password=..."), which is replaced whole: its quoting rules are the
// driver's.
func redactEnvValue(v string) string {
	if dsnPassword.MatchString(v) {
		return redacted
	}
	return redactURL(v)
}

// dsnPassword finds the password of a key=value connection string.
var dsnPassword = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// isSecretEnv reports whether an environment variable holds a secret.
func isSecretEnv(name string) bool {
	return containsAny(strings.ToUpper(name), "TOKEN", "SECRET", "PASSW", "KEY", "AUTH", "CREDENTIAL")
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// redactURL replaces the password of a URL's user info (the user info
// itself when it is a user name alone, a token as some services take it),
// and the values of query parameters named like credentials (isSecretQuery).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		} else {
			u.User = url.User(redacted)
		}
		changed = true
	}
	if q, secret := redactQuery(u.RawQuery); secret {
		u.RawQuery, changed = q, true
	}
	if !changed {
		return s
	}
	return u.String()
}

// redactQuery replaces the values of the parameters of a raw query named
// like credentials (isSecretQuery), and keeps the rest as written. It reads
// the query field by field, split at & and ; alike: one url.ParseQuery
// refuses (a ; separator, a stray %) is still sent as written, secrets
// included.
func redactQuery(raw string) (string, bool) {
	var b strings.Builder
	secret := false
	for rest := raw; rest != ""; {
		field, sep := rest, ""
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			field, sep = rest[:i], rest[i:i+1]
		}
		rest = rest[len(field)+len(sep):]
		name, value, _ := strings.Cut(field, "=")
		plain := name
		if n, err := url.QueryUnescape(name); err == nil {
			plain = n
		}
		if value != "" && isSecretQuery(plain) {
			field, secret = name+"="+redacted, true
		}
		b.WriteString(field + sep)
	}
	if !secret {
		return raw, false
	}
	return b.String(), true
}

// isSecretQuery reports whether a URL's query parameter carries
// credentials: named like a secret header (token, key, secret, password),
// a signature (sig, as in shared access signatures), or an authorization
// (auth, code, as function platforms name their keys).
func isSecretQuery(name string) bool {
	n := strings.ToLower(name)
	return isSecretHeader(n) || n == "code" || containsAny(n, "sig", "auth")
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	r := *c
	r.Kafka.Brokers = slices.Clone(c.Kafka.Brokers)
	r.Kafka.SASL.OAuthBearer.cloneRefs()
	r.Telemetry.SampleRatio = clonePtr(c.Telemetry.SampleRatio)
	if c.Plugins != nil {
		r.Plugins = make(map[string]Plugin, len(c.Plugins))
		for name, p := range c.Plugins {
			p.Command = slices.Clone(p.Command)
			p.Env = maps.Clone(p.Env)
			r.Plugins[name] = p
		}
	}
	r.Routes = slices.Clone(c.Routes)
	for i := range r.Routes {
		r.Routes[i].cloneRefs()
	}
	return &r
}

// cloneRefs replaces the slices, maps and pointers of a copied route with copies.
func (r *Route) cloneRefs() {
	r.Topics = slices.Clone(r.Topics)
	r.Filter.Headers = maps.Clone(r.Filter.Headers)
	if r.Target.Webhook == nil {
		return
	}
	w := *r.Target.Webhook
	w.Headers = maps.Clone(w.Headers)
	w.SigningSecrets = slices.Clone(w.SigningSecrets)
	w.ForwardHeaders = clonePtr(w.ForwardHeaders)
	w.SecretPath = clonePtr(w.SecretPath)
	w.OAuth2.cloneRefs()
	r.Target.Webhook = &w
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ShownURL renders the webhook's URL wherever Hookbridge shows it (logs,
// errors, dead-letter headers, metric labels, span attributes): SafeURL's
// scheme, host and path, and when the path is a secret (SecretPath) the
// path replaced by REDACTED-<fingerprint>, the first 8 hex digits of the
// SHA-256 of the path, which tells two such URLs of a host apart without
// giving the path away. An unparsable URL gives "webhook".
func (w *Webhook) ShownURL() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "webhook"
	}
	shown := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	w.hidePath(shown)
	return shown.String()
}

// hidePath replaces the path of u, the webhook's URL or a part of it, by
// REDACTED-<fingerprint> when it is a secret (ShownURL).
func (w *Webhook) hidePath(u *url.URL) {
	secret := SecretPathHost(u)
	if w.SecretPath != nil {
		secret = *w.SecretPath
	}
	if p := u.EscapedPath(); secret && p != "" && p != "/" {
		sum := sha256.Sum256([]byte(p))
		u.Path, u.RawPath = "/"+redacted+"-"+hex.EncodeToString(sum[:4]), ""
	}
}

// SecretPathHost reports whether u is the URL of a service whose webhook
// URLs carry their secret in the path: Slack (hooks.slack.com), Discord
// (discord.com, discordapp.com and their subdomains, under /api/.../webhooks/)
// and Microsoft Teams incoming webhooks (*.webhook.office.com).
func SecretPathHost(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	under := func(domain string) bool { return host == domain || strings.HasSuffix(host, "."+domain) }
	switch {
	case host == "hooks.slack.com":
		return true
	case under("discord.com") || under("discordapp.com"):
		return strings.HasPrefix(u.Path, "/api/") && strings.Contains(u.Path, "/webhooks/")
	case strings.HasSuffix(host, ".webhook.office.com"):
		return true
	}
	return false
}

// SafeURL renders a URL for messages, logs and metric labels: scheme, host
// and path only, without user info, query or fragment, which may hold
// secrets. An unparsable URL gives fallback.
func SafeURL(raw, fallback string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fallback
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
