package webhook

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/signing"
)

// The request sent again after a 401 goes with a new token only once one
// was fetched and its turn under rate_limit came: it carries the time it
// is sent as webhook-timestamp, signed anew, not the first request's,
// which may be past the receiver's tolerance by then. The clock here moves
// on ten minutes at each reading.
func TestOAuth2RequestSentAgainIsSignedAgain(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, reqs, _ := refusingReceiver(t, "Bearer tok-1")
	secret := secretOfLen(t, 32)
	var readings atomic.Int64
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = oauthConfig(ts, "client-secret")
		o.Config.SigningSecrets = []string{secret}
		o.Now = func() time.Time { return fixedNow.Add(time.Duration(readings.Add(1)) * 10 * time.Minute) }
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	first, again := next(t, reqs), next(t, reqs)
	if again.header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("the request sent again carried %q", again.header.Get("Authorization"))
	}
	if first.header.Get("webhook-timestamp") == again.header.Get("webhook-timestamp") {
		t.Fatalf("the request sent again kept the first one's webhook-timestamp %s", first.header.Get("webhook-timestamp"))
	}
	key, err := signing.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := strconv.ParseInt(again.header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.Verify([][]byte{key}, again.header.Get("webhook-id"), again.header.Get("webhook-timestamp"),
		again.header.Get("webhook-signature"), again.body, time.Unix(sent, 0), time.Minute); err != nil {
		t.Errorf("the request sent again does not verify at the time it carries: %v", err)
	}
	if string(again.body) != string(record().Value) || again.header.Get("webhook-id") != first.header.Get("webhook-id") {
		t.Errorf("the request sent again is not the same record: body %q, id %q", again.body, again.header.Get("webhook-id"))
	}
}
