package kafka

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A token endpoint that redirects elsewhere does not get the client secret
// sent on: the redirect is the endpoint's answer, as for a webhook's grant.
func TestOAuthBearerTokenRequestNotRedirected(t *testing.T) {
	var mu sync.Mutex
	leaked := 0
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, basic, _ := r.BasicAuth()
		_ = r.ParseForm()
		if basic == "client-secret" || r.PostForm.Get("client_secret") == "client-secret" {
			mu.Lock()
			leaked++
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"from-elsewhere","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(elsewhere.Close)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(idp.Close)

	p := newTokenProvider(config.OAuth2{TokenURL: idp.URL + "/token", ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
	tok, err := p.Token()
	mu.Lock()
	defer mu.Unlock()
	if leaked > 0 {
		t.Errorf("the client secret was sent to the redirect's target %d time(s)", leaked)
	}
	if err == nil {
		t.Errorf("Token = %q through a redirect, want an error", tok.Token)
	} else if !strings.Contains(err.Error(), "307") {
		t.Errorf("Token error %q does not name the redirect's status", err)
	}
}

// jwt is an unsigned JWT whose payload holds claims.
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(payload) + ".sig"
}

// An answer without expires_in whose access token is a JWT expires with the
// token's exp claim: the broker refuses the token from then on, so it is
// replaced before, not kept for ever.
func TestOAuthBearerTokenWithoutExpiresIn(t *testing.T) {
	start := time.Now()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		tok := jwt(t, map[string]any{"sub": "hookbridge", "n": n, "exp": start.Add(time.Duration(n) * time.Hour).Unix()})
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer"})
	}))
	t.Cleanup(srv.Close)

	p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
	now := start
	p.now = func() time.Time { return now }
	first, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.Token(); err != nil || again.Token != first.Token {
		t.Fatalf("Token before expiry = %v, %v; want the cached token", again, err)
	}
	now = start.Add(time.Hour + time.Second) // past the first token's exp
	second, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.Token == first.Token {
		t.Errorf("Token after the JWT's exp claim passed returns the expired token; want a new one")
	}
}

// A refresh that fails (the token endpoint is down) while the cached token
// has not expired keeps that token: the broker still takes it, and a
// connection or re-authentication made then must not fail for want of a
// new one. Once it has expired the failure is the caller's.
func TestOAuthBearerRefreshFailureKeepsValidToken(t *testing.T) {
	srv, calls := tokenEndpoint(t, 3600)
	p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
	now := time.Now()
	p.now = func() time.Time { return now }
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	srv.Close() // the token endpoint goes down

	now = now.Add(time.Hour - 30*time.Second) // due for refresh, not expired
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token when the refresh fails before expiry = %v, %v; want tok-1", tok, err)
	}
	p.fetching <- struct{}{} // the refresh, in the background, has failed
	<-p.fetching
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token after the refresh failed before expiry = %v, %v; want tok-1", tok, err)
	}
	now = now.Add(time.Minute) // expired
	if tok, err := p.Token(); err == nil {
		t.Fatalf("Token after expiry with the endpoint down = %q, want an error", tok.Token)
	}
	if calls() != 1 {
		t.Fatalf("%d tokens issued, want 1", calls())
	}
}

// While the token endpoint fails and no token is left to serve, the
// connections that ask for one within oauthgrant.RefreshRetry get the
// failure at once: one token request, not one per connection (each up to
// 30 s when the endpoint hangs, one after the other).
func TestOAuthBearerFailedRequestNotRepeatedPerConnection(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	t.Cleanup(srv.Close)
	p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
	now := time.Now()
	p.now = func() time.Time { return now }
	count := func() int { mu.Lock(); defer mu.Unlock(); return requests }

	if _, err := p.Token(); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Token with the endpoint down: %v, want its 503", err)
	}
	first := count() // golang.org/x/oauth2 tries two ways to send the client's credentials
	for range 4 {
		if _, err := p.Token(); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Token with the endpoint down: %v, want its 503", err)
		}
	}
	if n := count(); n != first {
		t.Errorf("%d token requests for 5 connections within 5 s, want %d (one token fetch)", n, first)
	}
	now = now.Add(5 * time.Second)
	_, _ = p.Token()
	if n := count(); n != 2*first {
		t.Errorf("%d token requests once 5 s passed, want %d (a second fetch)", n, 2*first)
	}
}
