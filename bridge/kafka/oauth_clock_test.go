package kafka

import (
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

// A token's expiry is a time on the wall clock: the broker refuses the
// token from then on. The provider compared it, as returned with a
// monotonic reading, with time.Now, also with one, so the monotonic clock
// decided alone; after a machine slept past the expiry (monotonic clock
// stood still) the provider served the expired token to every connection,
// each refused by the broker, for up to the token's whole lifetime after
// the resume. The wall clock stepped back must not keep a token past its
// lifetime either: then the monotonic clock says it is due.
func TestOAuthBearerTokenDueByEitherClock(t *testing.T) {
	for _, c := range []struct {
		name    string
		elapsed time.Duration // by the monotonic clock
		wall    time.Duration // the wall clock's jump on top
	}{
		{"suspended two hours", 0, 2 * time.Hour},
		{"suspended past the refresh point", 30 * time.Minute, 30 * time.Minute},
		{"wall clock stepped back two hours", time.Hour, -2 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, calls := tokenEndpoint(t, 3600)
			p := newTokenProvider(config.OAuth2{TokenURL: srv.URL, ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
			fetched := time.Now()
			p.now = func() time.Time { return fetched }
			if tok, err := p.Token(); err != nil || tok.Token != "tok-1" {
				t.Fatalf("Token = %v, %v; want tok-1", tok, err)
			}
			later := wallMoved(t, fetched.Add(c.elapsed), c.wall)
			p.now = func() time.Time { return later }
			tok, err := p.Token()
			if err == nil && tok.Token == "tok-1" {
				// A token not expired yet is served while its refresh
				// runs: wait for that, then Token returns what it fetched.
				p.fetching <- struct{}{}
				<-p.fetching
				tok, err = p.Token()
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.Token != "tok-2" || calls() != 2 {
				t.Errorf("Token = %q after %v elapsed by the monotonic clock and %v by the wall clock, %d token(s) issued; "+
					"want tok-2, a new token: the one-hour token is due for refresh", tok.Token, c.elapsed, c.elapsed+c.wall, calls())
			}
		})
	}
}
