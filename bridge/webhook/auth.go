package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/keypair"
	"github.com/hookbridge/hookbridge/bridge/internal/oauthgrant"
)

// credential supplies the Authorization header of a target's requests. Its
// methods are safe for concurrent use; their errors never contain a secret.
type credential interface {
	// authorization returns the header value, fetching or reading the
	// credential when it must. ctx bounds that work.
	authorization(ctx context.Context) (string, error)
	// renew is told that the receiver answered 401 to the value used. It
	// reports whether a retry may send a different value.
	renew(used string) bool
}

// newCredential builds the credential of cfg: a static bearer token, a token
// file, or an OAuth 2.0 client-credentials grant; nil when none is set. The
// token file is read once here, so that a missing one fails at start-up.
func newCredential(cfg config.Webhook, s *security) (credential, []error) {
	var user *url.Userinfo
	if u, err := url.Parse(cfg.URL); err == nil {
		user = u.User
	}
	n := 0
	for _, set := range []bool{user != nil, cfg.BearerToken != "", cfg.BearerTokenFile != "", cfg.OAuth2.Set()} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, []error{errors.New("set only one of url credentials, bearer_token, bearer_token_file and oauth2")}
	}
	switch {
	case user != nil:
		// As curl and net/http's Client do: user info in the URL is HTTP
		// Basic authentication (RFC 7617). The target sends its requests
		// to the URL without it.
		password, _ := user.Password()
		return staticToken("Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+password))), nil
	case cfg.BearerToken != "":
		if !validHeaderValue(cfg.BearerToken) {
			return nil, []error{errors.New("bearer_token holds a control character")}
		}
		return staticToken("Bearer " + cfg.BearerToken), nil
	case cfg.BearerTokenFile != "":
		f := &fileToken{path: cfg.BearerTokenFile}
		if _, err := f.load(); err != nil {
			return nil, []error{err}
		}
		return f, nil
	case cfg.OAuth2.Set():
		t, err := newOAuthToken(cfg.OAuth2, s)
		if err != nil {
			return nil, []error{err}
		}
		return t, nil
	}
	return nil, nil
}

// staticToken is a fixed Authorization value.
type staticToken string

func (t staticToken) authorization(context.Context) (string, error) { return string(t), nil }
func (t staticToken) renew(string) bool                             { return false }

// fileToken is a bearer token read from a file, read again whenever the
// file's modification time or size changes (a rewrite, or a symlink swapped
// as Kubernetes does for mounted secrets).
type fileToken struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	value   string // "Bearer <token>"; "" before the first read
}

func (f *fileToken) authorization(context.Context) (string, error) { return f.load() }

// load returns the token, reading the file when it changed.
func (f *fileToken) load() (string, error) {
	info, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("bearer_token_file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.value != "" && info.ModTime().Equal(f.modTime) && info.Size() == f.size {
		return f.value, nil
	}
	token, err := config.ReadSecretFile(f.path)
	if err != nil {
		return "", fmt.Errorf("bearer_token_file: %w", err)
	}
	if !validHeaderValue(token) {
		return "", fmt.Errorf("bearer_token_file: %s holds a control character", f.path)
	}
	f.value, f.modTime, f.size = "Bearer "+token, info.ModTime(), info.Size()
	return f.value, nil
}

// renew forgets the token, so the file is read again, and reports whether
// it now holds another one.
func (f *fileToken) renew(used string) bool {
	f.mu.Lock()
	f.value = ""
	f.mu.Unlock()
	v, err := f.load()
	return err == nil && v != used
}

// Token requests of the OAuth 2.0 grant are bounded by this timeout as well
// as by the delivery's context.
const tokenRequestTimeout = 30 * time.Second

// oauthToken is a bearer token from an OAuth 2.0 client-credentials grant. It
// is cached and fetched again when less than a tenth of its lifetime (at most
// a minute) remains, or after the receiver answered 401 to it. One fetch runs
// at a time; other requests wait for it (or for their context).
type oauthToken struct {
	grant      *clientcredentials.Config
	secretFile string
	client     *http.Client
	now        func() time.Time

	fetching chan struct{} // a one-slot lock held while fetching

	mu      sync.Mutex
	value   string    // "Bearer <token>"; "" when none is cached
	refresh time.Time // when to fetch the next token; zero: never
	expiry  time.Time // when value expires; zero: it does not
}

// newOAuthToken builds the grant of o. The token endpoint is reached with
// the target's TLS configuration and proxy, but not through the private
// network guard: its URL is set by the operator, like a proxy's. Its
// certificate is checked against o's ca_file when it has one, else as the
// receiver's is.
func newOAuthToken(o config.OAuth2, s *security) (*oauthToken, error) {
	tr := newTransport()
	tr.DisableKeepAlives = true // a token request every few minutes: no idle connections to leak
	tr.TLSClientConfig = s.tls
	if (s.tls != nil && s.tls.ServerName != "") || o.CAFile != "" {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if s.tls != nil {
			tr.TLSClientConfig = s.tls.Clone()
		}
		tr.TLSClientConfig.ServerName = "" // server_name is the receiver's
	}
	if o.CAFile != "" {
		pool, err := keypair.CAPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("oauth2.ca_file: %w", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	tr.Proxy = s.proxy
	return &oauthToken{
		grant:      oauthgrant.Grant(o),
		secretFile: o.ClientSecretFile,
		client: &http.Client{
			Transport:     tr,
			Timeout:       tokenRequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:      time.Now,
		fetching: make(chan struct{}, 1),
	}, nil
}

// cached returns the cached value if it is not due for refresh.
func (o *oauthToken) cached() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.value != "" && (o.refresh.IsZero() || !oauthgrant.Due(o.refresh, o.now())) {
		return o.value, true
	}
	return "", false
}

// authorization returns the cached token or fetches one. A fetch is not
// bound by ctx, the delivery's, which ends with the webhook's timeout: it
// runs on, for up to tokenRequestTimeout, after the delivery that started
// it gave up, and the token it gets serves the next deliveries. Otherwise an
// identity provider slower than the webhook's timeout would never yield one.
//
// A token due for refresh but not expired yet is returned at once, while
// one refresh runs in the background: refreshing early is there so that no
// delivery waits for a token it does not need yet.
func (o *oauthToken) authorization(ctx context.Context) (string, error) {
	if v, ok := o.cached(); ok {
		return v, nil
	}
	if v, ok := o.unexpired(); ok {
		select {
		case o.fetching <- struct{}{}:
			fctx := context.WithoutCancel(ctx)
			go func() {
				defer func() { <-o.fetching }()
				if _, ok := o.cached(); !ok { // not refreshed meanwhile
					_, _ = o.fetch(fctx) // a failure keeps the token (stillValid)
				}
			}()
		default: // a fetch runs already
		}
		return v, nil
	}
	select {
	case o.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if v, ok := o.cached(); ok {
		<-o.fetching
		return v, nil // fetched while this request waited
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	fctx := context.WithoutCancel(ctx) // the values (the span) stay
	go func() {
		defer func() { <-o.fetching }()
		v, err := o.fetch(fctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fetch gets a token from the endpoint and caches it. It runs while holding
// the fetching slot.
func (o *oauthToken) fetch(ctx context.Context) (string, error) {
	if o.secretFile != "" {
		secret, err := config.ReadSecretFile(o.secretFile)
		if err != nil {
			if v, ok := o.stillValid(); ok {
				return v, nil // as for a failed token request, below
			}
			return "", fmt.Errorf("oauth2 client_secret_file: %w", err)
		}
		o.grant.ClientSecret = secret // guarded by fetching
	}
	tok, err := o.grant.Token(context.WithValue(ctx, oauth2.HTTPClient, o.client))
	if err != nil {
		if v, ok := o.stillValid(); ok {
			return v, nil // refreshed early; the token still serves, and the next try comes later
		}
		return "", fmt.Errorf("oauth2 token from %s: %w", config.SafeURL(o.grant.TokenURL, "the token URL"), oauthgrant.Error(err))
	}
	if tok.AccessToken == "" || !validHeaderValue(tok.AccessToken) {
		return "", fmt.Errorf("oauth2 token from %s: no usable access_token in the answer", config.SafeURL(o.grant.TokenURL, "the token URL"))
	}
	tok.Expiry = oauthgrant.Expiry(tok) // expires_in, or a JWT's exp claim
	v := tok.Type() + " " + tok.AccessToken
	o.mu.Lock()
	o.value, o.refresh, o.expiry = v, oauthgrant.RefreshAt(tok, o.now()), tok.Expiry
	o.mu.Unlock()
	return v, nil
}

// unexpired returns the cached token if it has not expired, due for
// refresh or not.
func (o *oauthToken) unexpired() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.value == "" || (!o.expiry.IsZero() && oauthgrant.Due(o.expiry, o.now())) {
		return "", false
	}
	return o.value, true
}

// stillValid returns the cached token when a refresh failed before it
// expired (and the receiver did not refuse it: renew drops a refused one),
// and puts the next refresh off by oauthgrant.RefreshRetry, or to the expiry if that
// is sooner, so that not every request waits for a token endpoint that is
// down.
func (o *oauthToken) stillValid() (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if o.value == "" || (!o.expiry.IsZero() && oauthgrant.Due(o.expiry, now)) {
		return "", false
	}
	o.refresh = now.Add(oauthgrant.RefreshRetry)
	if !o.expiry.IsZero() && o.expiry.Before(o.refresh) {
		o.refresh = o.expiry
	}
	return o.value, true
}

// renew drops the cached token if it is the one the receiver refused.
func (o *oauthToken) renew(used string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.value == used {
		o.value = ""
	}
	return true
}

// authTransport sets the Authorization header of every request and, when the
// receiver answers 401, renews the credential and sends the request once
// more.
type authTransport struct {
	next   http.RoundTripper
	cred   credential
	pace   func(context.Context) error // the rate limit's wait, for the request sent again
	resign func(http.Header, []byte)   // a fresh webhook-timestamp and signature, for the request sent again
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	v, err := a.cred.authorization(ctx)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("webhook: %w", err)
	}
	resp, err := a.next.RoundTrip(withAuthorization(req, v, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.GetBody == nil || !a.cred.renew(v) {
		return resp, err
	}
	body, err := req.GetBody()
	if err != nil {
		return resp, nil // cannot resend: the 401 stands
	}
	v2, err := a.cred.authorization(ctx)
	if err != nil {
		// The receiver refused the credential and no new one can be had
		// (the token endpoint is down, say): the bridge's trouble, retryable,
		// not the 401's verdict on the record.
		_ = body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("webhook: the receiver answered 401 and no new credential could be had: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
	_ = resp.Body.Close()
	// The request sent again is a request to the receiver like any other:
	// it waits for its turn under rate_limit.
	if a.pace != nil {
		if err := a.pace(ctx); err != nil {
			_ = body.Close()
			return nil, err
		}
	}
	if a.resign == nil {
		return a.next.RoundTrip(withAuthorization(req, v2, body))
	}
	// It is signed again when it goes: the token request and the wait for
	// its turn may have taken longer than a receiver's timestamp tolerance.
	b, err := io.ReadAll(body)
	_ = body.Close()
	if err != nil {
		return nil, fmt.Errorf("webhook: read the request again after a 401: %w", err)
	}
	again := withAuthorization(req, v2, io.NopCloser(bytes.NewReader(b)))
	a.resign(again.Header, b)
	return a.next.RoundTrip(again)
}

// withAuthorization is a copy of req with the Authorization header and body.
func withAuthorization(req *http.Request, value string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", value)
	r.Body = body
	return r
}

// closeBody closes a request body a round trip will not send, as the
// RoundTripper contract requires.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
