package kafka

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A token due for refresh but not expired is returned at once while the
// refresh runs: sarama asks for it while re-authenticating a connection
// (KIP-368) with that connection's lock held, so a token endpoint that
// answers slowly must not hold back the heartbeats and commits behind it
// (a stall past the session timeout is a rebalance). The next caller after
// the refresh gets the new token.
func TestOAuthBearerRefreshDoesNotWaitForEndpoint(t *testing.T) {
	release := make(chan struct{})
	asked := make(chan struct{}, 4)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n > 1 {
			asked <- struct{}{}
			<-release // the endpoint is slow to answer the refresh
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + strconv.Itoa(n), "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
	var clock sync.Mutex
	now := time.Now()
	p.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	clock.Lock()
	now = now.Add(time.Hour - 30*time.Second) // due for refresh, valid for 30 s more
	clock.Unlock()

	type result struct {
		tok *sarama.AccessToken
		err error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := p.Token()
		got <- result{tok, err}
	}()
	select {
	case r := <-got:
		if r.err != nil || r.tok.Token != "tok-1" {
			t.Fatalf("Token while the refresh runs = %v, %v; want tok-1, still valid", r.tok, r.err)
		}
	case <-time.After(10 * time.Second): // a hang guard: the endpoint answers only when released
		t.Fatal("Token waited for the token endpoint although the cached token is valid for 30 s more")
	}
	<-asked // the refresh did start
	close(release)
	// Once the refresh is in, it is what Token returns.
	var last string
	waitFor(t, "the refreshed token", func() bool {
		tok, err := p.Token()
		if err != nil {
			last = err.Error()
			return false
		}
		last = tok.Token
		return last == "tok-2"
	}, func() string { return "Token returns " + last })
}
