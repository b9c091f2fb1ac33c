package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// oauthOf returns the OAuth 2.0 credential of a target built by newTarget
// (no Options.Transport): the tracing wrapper holds the auth transport.
func oauthOf(t *testing.T, tg *Target) *oauthToken {
	t.Helper()
	at, ok := tg.spans.next.(*authTransport)
	if !ok {
		t.Fatalf("transport under the spans is %T, want *authTransport", tg.spans.next)
	}
	o, ok := at.cred.(*oauthToken)
	if !ok {
		t.Fatalf("credential is %T, want *oauthToken", at.cred)
	}
	return o
}

// The receiver answers 401 to the cached token; the target drops it and asks
// the token endpoint for a new one, but the endpoint is down: a failed token
// request is retryable (docs/security.md), so the record is not
// dead-lettered. The first 401 used to stand, as a permanent failure.
func TestOAuth401ThenTokenEndpointDownIsNotPermanent(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, reqs, refuse := refusingReceiver(t)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	next(t, reqs)

	// The receiver rotated its keys (tok-1 no longer accepted) while the
	// identity provider is down.
	refuse("Bearer tok-1")
	ts.Close()

	_, err := deliver(t, t.Context(), tg, record())
	if err == nil {
		t.Fatal("delivered")
	}
	if k := target.KindOf(err); k != target.Retryable {
		t.Fatalf("kind %s (status %d), want retryable: the token endpoint is down, the record did nothing wrong "+
			"and must not be dead-lettered; error: %v", k, target.StatusOf(err), err)
	}
}

// The cached token is due for refresh (less than a minute of its hour left)
// but still valid; the token endpoint has a short outage. The target keeps
// using the token until it expires; every delivery used to fail, and the
// route paused although the receiver would accept the request.
func TestOAuthRefreshFailureKeepsStillValidToken(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	next(t, reqs)

	o := oauthOf(t, tg)
	// 30 s before the token expires: past the refresh point (60 s before),
	// not past expiry.
	later := time.Now().Add(3600*time.Second - 30*time.Second)
	o.mu.Lock()
	o.now = func() time.Time { return later }
	o.mu.Unlock()
	ts.Close()

	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatalf("token still valid for 30 s but the delivery failed (%s): %v", target.KindOf(err), err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q, want the still-valid Bearer tok-1", got)
	}
}

// A 401 from the receiver is the bridge's credentials problem (a revoked or
// rotated bearer token, a wrong client), the same for every record: it is
// retryable and counted by the breaker, which pauses the route until the
// credentials are fixed. Classed permanent, it dead-lettered every record.
func Test401IsNotPermanent(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	t.Run("bearer_token", func(t *testing.T) {
		tg := newTarget(t, srv.URL, func(o *Options) { o.Config.BearerToken = "revoked-token" })
		for i := range 3 {
			_, err := deliver(t, t.Context(), tg, record())
			if target.KindOf(err) != target.Retryable || !target.TargetDown(err) {
				t.Fatalf("record %d: 401 with the bridge's bearer token: %v (kind %s), want retryable, counted by the breaker", i, err, target.KindOf(err))
			}
		}
	})
	t.Run("oauth2 after a refresh", func(t *testing.T) {
		ts := newTokenServer(t, "client-secret", 3600)
		tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
		_, err := deliver(t, t.Context(), tg, record())
		if target.KindOf(err) != target.Retryable || !target.TargetDown(err) {
			t.Fatalf("401 with a fresh OAuth 2.0 token: %v (kind %s), want retryable, counted by the breaker", err, target.KindOf(err))
		}
	})
}

// A receiver that echoes the credential in its 401 body ("invalid token X")
// must not get it quoted in the delivery error, which goes to the logs and
// the dead-letter record's headers.
func TestErrorDoesNotQuoteTheCredential(t *testing.T) {
	const token = "s3cr3t-bearer-token-value"
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("invalid token: " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
	})
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.BearerToken = token })
	_, err := deliver(t, t.Context(), tg, record())
	if err == nil {
		t.Fatal("delivered")
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("the delivery error shows the bearer token: %v", err)
	}
}

// A token request outlives the delivery that started it: an identity
// provider slower than the webhook's timeout (the delivery's deadline)
// still yields a token, which the next delivery uses. Bound by the
// delivery's context, the request was cancelled with it, and every delivery
// started a new one that met the same fate.
func TestOAuthTokenRequestOutlivesTheDelivery(t *testing.T) {
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok-` + itoa(n) + `","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(idp.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2.TokenURL, o.Config.OAuth2.ClientID, o.Config.OAuth2.ClientSecret = idp.URL+"/token", "hookbridge", "s"
	})

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := tg.Deliver(ctx, &target.Delivery{Record: record(), Attempt: 1})
		errc <- err
	}()
	<-arrived // the token request is at the identity provider
	cancel()  // the delivery gives up, as at its deadline
	if err := <-errc; err == nil {
		t.Fatal("the first delivery succeeded without a token")
	}
	close(release)

	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
		t.Errorf("the next delivery carried %q, want the token the first one asked for, Bearer tok-1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d token requests, want 1", calls)
	}
}

// A token that has expired when it arrives (a negative expires_in, or the
// identity provider's clock ahead) is used, and the next token request comes
// refreshRetry later: not one token request per delivery.
func TestOAuthTokenExpiredOnArrivalIsNotFetchedPerDelivery(t *testing.T) {
	ts := newTokenServer(t, "client-secret", -60)
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	o := oauthOf(t, tg)
	frozen := time.Now() // within refreshRetry of the first token request for the whole test
	o.mu.Lock()
	o.now = func() time.Time { return frozen }
	o.mu.Unlock()
	for i := range 10 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
			t.Fatalf("delivery %d: Authorization = %q, want Bearer tok-1", i, got)
		}
	}
	if n := ts.issued(); n != 1 {
		t.Fatalf("%d token requests for 10 deliveries, want 1", n)
	}
}

// The token endpoint's error code and description are quoted and clipped in
// the error, which goes to logs and dead-letter headers: a description of
// many lines, or of kilobytes, does not reach them whole.
func TestOAuthTokenErrorIsQuotedAndClipped(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             "invalid_request",
			"error_description": "first line\nforged: log line\n" + strings.Repeat("x", 10_000),
		})
	}))
	t.Cleanup(idp.Close)
	srv, _ := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = config.OAuth2{TokenURL: idp.URL, ClientID: "hookbridge", ClientSecret: "s"}
	})
	_, err := deliver(t, t.Context(), tg, record())
	if err == nil {
		t.Fatal("delivered without a token")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || len(msg) > 600 {
		t.Fatalf("error of %d bytes, with raw newlines: %.300q", len(msg), msg)
	}
	if !strings.Contains(msg, `"invalid_request"`) || !strings.Contains(msg, `first line\nforged`) {
		t.Fatalf("error %q does not quote the code and the start of the description", msg)
	}
}
