package kafka

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// Every route builds its own sarama configuration; the routes of a process
// that share a grant share its token too. With a provider per route, 60
// routes fetched 61 tokens as the bridge started and refreshed each on its
// own, 61 times the identity provider's load and token quota. A grant that
// differs in any field, or whose CA bundle changed, has a provider of its
// own.
func TestOAuthBearerRoutesShareTheirGrantsToken(t *testing.T) {
	var requests atomic.Int32
	tokenURL := anyClientTokenEndpoint(t, &requests)
	grant := config.OAuth2{TokenURL: tokenURL, ClientID: "hookbridge", ClientSecret: "s3cret",
		Scopes: []string{"kafka"}, EndpointParams: map[string]string{"a": "1", "b": "2"}}
	configured := func(o config.OAuth2) *tokenProvider { t.Helper(); return configuredProvider(t, o) }
	provider := func(o config.OAuth2) *tokenProvider {
		t.Helper()
		p := configured(o)
		if _, err := p.Token(); err != nil {
			t.Fatal(err)
		}
		return p
	}

	first := provider(grant)
	for range 3 {
		same := grant
		same.EndpointParams = map[string]string{"b": "2", "a": "1"}
		if p := provider(same); p != first {
			t.Fatal("two routes of one grant got providers of their own")
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("4 routes of one grant fetched %d tokens, want 1", n)
	}

	for name, change := range map[string]func(*config.OAuth2){
		"client id":       func(o *config.OAuth2) { o.ClientID = "other" },
		"secret":          func(o *config.OAuth2) { o.ClientSecret = "other" },
		"scopes":          func(o *config.OAuth2) { o.Scopes = []string{"kafka", "more"} },
		"endpoint params": func(o *config.OAuth2) { o.EndpointParams = map[string]string{"a": "1"} },
		"audience":        func(o *config.OAuth2) { o.Audience = "kafka" },
	} {
		other := grant
		change(&other)
		if provider(other) == first {
			t.Errorf("a grant with another %s shares the first grant's provider", name)
		}
	}
	if n := requests.Load(); n != 6 {
		t.Errorf("%d token requests, want 6: one per grant", n)
	}

	// A CA bundle renewed on disk: the routes started after it trust the
	// new one.
	caFile := filepath.Join(t.TempDir(), "idp-ca.pem")
	renew := func() {
		t.Helper()
		_, issued := brokerTLS(t) // a CA of its own each time
		pem, err := os.ReadFile(issued)
		if err == nil {
			err = os.WriteFile(caFile, pem, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	withCA := grant
	withCA.CAFile = caFile
	for i := range 2 {
		renew()
		p := configured(withCA)
		if p == first {
			t.Fatalf("a grant with a CA bundle (renewed %d times) shares the provider of the grant before", i)
		}
		if configured(withCA) != p {
			t.Error("two routes of one grant and CA bundle got providers of their own")
		}
		first = p // the next bundle must not get this one
	}
}

// anyClientTokenEndpoint serves an OAuth 2.0 token endpoint that gives a
// token to any client (tokenEndpoint's checks the credentials), counting
// its requests, until the test ends, and returns its URL.
func anyClientTokenEndpoint(t *testing.T, requests *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

// configuredProvider is the token provider NewConfig gives a kafka section
// with grant o.
func configuredProvider(t *testing.T, o config.OAuth2) *tokenProvider {
	t.Helper()
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "hookbridge",
		SASL: config.SASL{Mechanism: config.SASLOAuthBearer, OAuthBearer: o}})
	if err != nil {
		t.Fatal(err)
	}
	return sc.Net.SASL.TokenProvider.(*tokenProvider)
}
