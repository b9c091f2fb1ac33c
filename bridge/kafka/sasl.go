package kafka

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/oauthgrant"
)

// scramClient is sarama's SCRAMClient on github.com/xdg-go/scram. sarama asks
// its generator for a new one per connection.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

var _ sarama.SCRAMClient = (*scramClient)(nil)

// scramGenerator returns sarama's SCRAMClientGeneratorFunc for a mechanism.
func scramGenerator(mechanism string) func() sarama.SCRAMClient {
	hash := scram.SHA256
	if mechanism == config.SASLScramSHA512 {
		hash = scram.SHA512
	}
	return func() sarama.SCRAMClient { return &scramClient{hash: hash} }
}

// Begin prepares a conversation for user and password, taken as they are:
// Kafka applies no SASLprep to SCRAM credentials (its clients and the tools
// that store them use a password's UTF-8 bytes), so SASLprep here would
// change a password with, say, a soft hyphen or a ligature, and refuse one
// with a tab, which Kafka's own clients log in with.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClientUnprepped(user, password, authzID)
	if err != nil {
		return fmt.Errorf("kafka: scram: %w", err)
	}
	c.conv = client.NewConversation()
	return nil
}

// Step answers one server challenge. A server-final message whose signature
// does not verify is an error: the broker does not know the password.
func (c *scramClient) Step(challenge string) (string, error) {
	resp, err := c.conv.Step(challenge)
	if err != nil {
		return "", fmt.Errorf("kafka: scram: %w", err)
	}
	return resp, nil
}

// Done reports whether the conversation is over.
func (c *scramClient) Done() bool { return c.conv.Done() }

// Token requests of OAUTHBEARER are bounded: sarama's AccessTokenProvider
// takes no context, so each fetch carries its own deadline.
const tokenRequestTimeout = 30 * time.Second

// tokenProvider is sarama's AccessTokenProvider on an OAuth 2.0
// client-credentials grant. It caches the token and fetches a new one when
// less than a tenth of its lifetime (at most a minute) remains. Safe for
// concurrent use: one fetch runs at a time, and callers share it.
type tokenProvider struct {
	grant      *clientcredentials.Config
	secretFile string
	client     *http.Client
	now        func() time.Time
	fetching   chan struct{} // holds one token while a fetch runs; guards grant

	mu      sync.Mutex
	token   *oauth2.Token
	refresh time.Time // when to fetch the next token; zero: never
	failed  error     // the last fetch's error, when no token was left to serve
	retry   time.Time // until when failed is returned without a new fetch
}

var _ sarama.AccessTokenProvider = (*tokenProvider)(nil)

// newTokenProvider builds the provider of kafka.sasl.oauthbearer, whose
// token endpoint's certificate is checked against roots (nil: the system's
// roots). It reads nothing and fetches nothing yet.
func newTokenProvider(o config.OAuth2, roots *x509.CertPool) *tokenProvider {
	return &tokenProvider{
		grant:      oauthgrant.Grant(o),
		secretFile: o.ClientSecretFile,
		// A redirect is not followed (it is the endpoint's answer, an
		// error): net/http would send the client secret on to wherever it
		// points. No proxy is taken from the environment (HTTP_PROXY,
		// HTTPS_PROXY), as for webhooks: one meant for other programs
		// would get the client secret.
		client: &http.Client{
			Transport:     tokenTransport(roots),
			Timeout:       tokenRequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:      time.Now,
		fetching: make(chan struct{}, 1),
	}
}

// tokenProviders holds this process's token providers, one per grant and
// token endpoint CA bundle (tokenKey). Every route builds a configuration of
// its own (NewConfig), and with a provider each a bridge of 60 routes
// fetched 61 tokens as it started and refreshed each on its own: 61 times
// the load on the identity provider, and on its token quotas (some count
// machine-to-machine tokens by the month). A provider is safe for
// concurrent use; one of a grant no configuration uses any more (a reload
// changed it) stays, idle.
var tokenProviders sync.Map // tokenKey -> *tokenProvider

// sharedTokenProvider returns the provider of grant o whose token endpoint
// is trusted with the PEM bundle ca (the roots made of it; nil: the
// system's), making it on first use.
func sharedTokenProvider(o config.OAuth2, ca []byte, roots *x509.CertPool) *tokenProvider {
	key := tokenKey(o, ca)
	if p, ok := tokenProviders.Load(key); ok {
		return p.(*tokenProvider)
	}
	p, _ := tokenProviders.LoadOrStore(key, newTokenProvider(o, roots))
	return p.(*tokenProvider)
}

// tokenKey is a digest of what a token request depends on: every field of
// the grant, and the CA bundle's contents (a bundle renewed on disk makes
// another provider at the next route start or reload, as it did before
// providers were shared).
func tokenKey(o config.OAuth2, ca []byte) [sha256.Size]byte {
	h := sha256.New()
	field := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(s)))
		h.Write([]byte(s))
	}
	field(o.TokenURL)
	field(o.ClientID)
	field(o.ClientSecret)
	field(o.ClientSecretFile)
	field(o.Audience)
	field(o.CAFile)
	field(string(ca))
	_ = binary.Write(h, binary.BigEndian, uint64(len(o.Scopes)))
	for _, sc := range o.Scopes {
		field(sc)
	}
	_ = binary.Write(h, binary.BigEndian, uint64(len(o.EndpointParams)))
	for _, k := range slices.Sorted(maps.Keys(o.EndpointParams)) {
		field(k)
		field(o.EndpointParams[k])
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// tokenTransport is net/http's default transport without the proxy it
// takes from the environment, trusting roots when they are not nil.
func tokenTransport(roots *x509.CertPool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	}
	return tr
}

// Token returns the cached token, or fetches one when there is none or it
// is due for refresh. A token due for refresh that has more than
// tokenServeMargin left is returned at once while one refresh runs in the
// background: sarama asks
// for it when it (re-)authenticates a connection (KIP-368), holding that
// connection's lock, so waiting for a slow token endpoint would hold back
// the connection's heartbeats, commits and fetches, and past the session
// timeout the group would rebalance. A refresh that fails before the
// cached token expires keeps that token; a failed fetch with no token left
// is not tried again for oauthgrant.RefreshRetry, and its error is returned
// meanwhile. Its errors never contain the client secret.
func (p *tokenProvider) Token() (*sarama.AccessToken, error) {
	if tok, due := p.cached(); tok != nil {
		if due {
			select {
			case p.fetching <- struct{}{}:
				go func() {
					defer func() { <-p.fetching }()
					if _, due := p.cached(); due { // not refreshed meanwhile
						_, _ = p.update() // a failure keeps the token
					}
				}()
			default: // a fetch runs already
			}
		}
		return &sarama.AccessToken{Token: tok.AccessToken}, nil
	}
	if err := p.recentFailure(); err != nil {
		return nil, err
	}
	p.fetching <- struct{}{} // waits for a fetch that runs already
	defer func() { <-p.fetching }()
	if tok, _ := p.cached(); tok != nil {
		return &sarama.AccessToken{Token: tok.AccessToken}, nil // fetched while this call waited
	}
	if err := p.recentFailure(); err != nil {
		return nil, err
	}
	tok, err := p.update()
	if err != nil {
		return nil, err
	}
	return &sarama.AccessToken{Token: tok.AccessToken}, nil
}

// tokenServeMargin is how long a token due for refresh must still live to
// be served while the refresh runs. The broker ends a session at its
// token's expiry (by the exp claim, whole seconds, on its own clock), and
// refuses to re-authenticate a connection twice within a second: a session
// of a token about to expire would end before the connection can
// re-authenticate with the next one. Closer to its expiry, callers wait for
// the new token.
const tokenServeMargin = 5 * time.Second

// cached returns the cached token unless it has expired or is about to
// (nil then), and whether it is due for refresh.
func (p *tokenProvider) cached() (*oauth2.Token, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch {
	case p.token == nil:
		return nil, false
	case p.refresh.IsZero() || !oauthgrant.Due(p.refresh, now):
		return p.token, false
	case !oauthgrant.Due(p.token.Expiry.Add(-tokenServeMargin), now):
		return p.token, true
	}
	return nil, false
}

// recentFailure returns the error of a fetch that failed with no token left
// to serve, within oauthgrant.RefreshRetry of it: every connection that
// asks meanwhile gets that failure, instead of a request of its own (each
// up to tokenRequestTimeout, one after the other).
func (p *tokenProvider) recentFailure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil && p.now().Before(p.retry) {
		return p.failed
	}
	return nil
}

// update fetches a token and caches it; its caller holds p.fetching. A
// failed fetch while the cached token is still valid returns that token.
func (p *tokenProvider) update() (*oauth2.Token, error) {
	// No context reaches us through sarama: this fetch is bounded on its own.
	ctx, cancel := context.WithTimeout(context.Background(), tokenRequestTimeout)
	defer cancel()
	tok, err := p.fetch(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if now := p.now(); p.token != nil && !oauthgrant.Due(p.token.Expiry, now) {
			// Refreshed early, and the token still serves: the broker
			// takes it until it expires. The next try comes
			// oauthgrant.RefreshRetry later (or at the expiry), so that
			// not every connection waits for an endpoint that is down.
			p.refresh = now.Add(oauthgrant.RefreshRetry)
			if p.token.Expiry.Before(p.refresh) {
				p.refresh = p.token.Expiry
			}
			return p.token, nil
		}
		p.failed, p.retry = err, p.now().Add(oauthgrant.RefreshRetry)
		return nil, err
	}
	p.failed = nil
	p.token, p.refresh = tok, oauthgrant.RefreshAt(tok, p.now())
	return tok, nil
}

// fetch requests a new token, reading the client secret file first; its
// caller holds p.fetching.
func (p *tokenProvider) fetch(ctx context.Context) (*oauth2.Token, error) {
	if p.secretFile != "" {
		secret, err := config.ReadSecretFile(p.secretFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: oauthbearer client_secret_file: %w", err)
		}
		p.grant.ClientSecret = secret
	}
	tok, err := p.grant.Token(context.WithValue(ctx, oauth2.HTTPClient, p.client))
	if err != nil {
		return nil, fmt.Errorf("kafka: oauthbearer token from %s: %w", config.SafeURL(p.grant.TokenURL, "the token URL"), oauthgrant.Error(err))
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("kafka: oauthbearer token from %s: no access_token in the answer", config.SafeURL(p.grant.TokenURL, "the token URL"))
	}
	tok.Expiry = oauthgrant.Expiry(tok)
	return tok, nil
}

// saslFailure rewrites an authentication failure from sarama into one clear
// error naming the mechanism and the user; other errors pass unchanged.
func saslFailure(err error, k config.Kafka) error {
	if err == nil || !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		return err
	}
	who := ""
	if k.SASL.Username != "" {
		who = fmt.Sprintf(" as user %q", k.SASL.Username)
	}
	detail := err.Error()
	if i := strings.LastIndex(detail, sarama.ErrSASLAuthenticationFailed.Error()); i >= 0 {
		detail = strings.TrimPrefix(detail[i+len(sarama.ErrSASLAuthenticationFailed.Error()):], ": ")
	}
	if detail == "" {
		detail = "the broker refused the credentials"
	}
	return &saslError{
		msg: fmt.Sprintf("kafka: SASL authentication failed (%s%s): %s; check kafka.sasl", k.SASL.Mechanism, who, detail),
		err: err,
	}
}

// saslError is an authentication failure with a clearer message; it wraps
// sarama's error, so errors.Is(err, sarama.ErrSASLAuthenticationFailed) holds.
type saslError struct {
	msg string
	err error
}

func (e *saslError) Error() string { return e.msg }
func (e *saslError) Unwrap() error { return e.err }
