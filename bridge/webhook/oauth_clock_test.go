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
	"github.com/hookbridge/hookbridge/bridge/internal/clocktest"
)

// wallMoved is clocktest.WallMoved, failing t when it cannot be built.
func wallMoved(t *testing.T, now time.Time, d time.Duration) time.Time {
	t.Helper()
	moved, err := clocktest.WallMoved(now, d)
	if err != nil {
		t.Fatal(err)
	}
	return moved
}

// A machine that slept two hours past its one-hour OAuth 2.0 token sends a
// new token, not the expired one: the receiver judges the token by the wall
// clock. The cache compared the token's time by the monotonic clock alone,
// which stood still while the machine slept, and sent the expired token
// (to be refused; a receiver that answers 403 to it rather than 401 failed
// every delivery until the token's hour had passed by the monotonic clock).
func TestOAuthTokenAfterSuspend(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + strconv.Itoa(n), "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(ts.Close)

	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = config.OAuth2{TokenURL: ts.URL + "/token", ClientID: "hookbridge", ClientSecret: "client-secret"}
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q, want Bearer tok-1", got)
	}

	o := oauthOf(t, tg)
	resumed := wallMoved(t, time.Now(), 2*time.Hour)
	o.mu.Lock()
	o.now = func() time.Time { return resumed }
	o.mu.Unlock()
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-2" {
		t.Errorf("Authorization after a two-hour suspend = %q, want Bearer tok-2: tok-1 expired an hour ago", got)
	}
}
