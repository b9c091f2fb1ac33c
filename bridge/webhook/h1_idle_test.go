package webhook

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// After a burst, the plain-HTTP client's connections that stay idle past the
// idle timeout are closed, at both ends, while the route goes on sending one
// request at a time (which reuses the most recently used connection, never
// reaching the others) and once it stops sending. They used to stay open for
// as long as the bridge ran.
func TestH1ClosesConnectionsIdlePastTheTimeout(t *testing.T) {
	const burst = 20
	var arrived sync.WaitGroup
	arrived.Add(burst)
	release := make(chan struct{})
	var open atomic.Int64 // the receiver's connections
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if r.Header.Get("X-Burst") != "" {
			arrived.Done()
			<-release // every request of the burst holds its connection
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	rt := newTestH1(t)
	rt.idleTimeout = 50 * time.Millisecond
	send := func(burst bool) error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("x"))
		if err != nil {
			return err
		}
		if burst {
			req.Header.Set("X-Burst", "1")
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	idle := func() int {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		n := 0
		for _, conns := range rt.idle {
			n += len(conns)
		}
		return n
	}

	var sent sync.WaitGroup
	for range burst {
		sent.Go(func() {
			if err := send(true); err != nil {
				t.Error(err)
			}
		})
	}
	arrived.Wait()
	close(release)
	sent.Wait()
	if n := idle(); n != burst {
		t.Fatalf("%d idle connections after a burst of %d, want %d", n, burst, burst)
	}

	// One request at a time: only the connection they use stays.
	waitFor(t, 10*time.Second, "the burst's idle connections closed while requests go one at a time", func() bool {
		if err := send(false); err != nil {
			t.Fatal(err)
		}
		return idle() <= 1 && open.Load() <= 1
	})
	// No request: none stays.
	waitFor(t, 10*time.Second, fmt.Sprintf("every idle connection closed (%d idle, %d open at the receiver)", idle(), open.Load()),
		func() bool { return idle() == 0 && open.Load() == 0 })
}
