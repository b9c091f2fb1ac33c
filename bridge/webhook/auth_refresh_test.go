package webhook

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// The cached token is due for refresh (less than a minute of its hour left)
// but still valid, and the identity provider is slow to answer the refresh
// (longer than the webhook's timeout). Refreshing early is there so that
// deliveries never wait for a token they do not need yet: they go on with
// the still-valid token while one refresh runs, and later ones get the new
// token when it comes. Before, every delivery waited for the refresh and
// failed with the webhook's timeout, although the receiver would have
// accepted it, counting against the breaker at each refresh of a slow
// identity provider.
func TestOAuthRefreshDoesNotHoldDeliveries(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n > 1 {
			select { // the refresh: slow
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + strconv.Itoa(n), "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	tokenCalls := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}

	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = config.OAuth2{TokenURL: ts.URL + "/token", ClientID: "hookbridge", ClientSecret: "client-secret"}
		o.Config.Timeout = config.Duration(2 * time.Second)
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q", got)
	}

	o := oauthOf(t, tg)
	// 30 s before the token expires: past the refresh point (60 s before).
	later := time.Now().Add(3600*time.Second - 30*time.Second)
	o.mu.Lock()
	o.now = func() time.Time { return later }
	o.mu.Unlock()

	for i := range 3 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatalf("delivery %d during the refresh, with a token valid for 30 s more: %v", i, err)
		}
		if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
			t.Fatalf("delivery %d: Authorization = %q, want the still-valid Bearer tok-1", i, got)
		}
	}
	waitFor(t, 10*time.Second, "the refresh to reach the token endpoint", func() bool { return tokenCalls() == 2 })

	close(release)
	waitFor(t, 10*time.Second, "the refreshed token to reach the receiver", func() bool {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		return next(t, reqs).header.Get("Authorization") == "Bearer tok-2"
	})
	if n := tokenCalls(); n != 2 {
		t.Fatalf("the token endpoint got %d requests, want 2 (one refresh)", n)
	}
}
