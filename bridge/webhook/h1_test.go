package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// rawServer accepts connections on 127.0.0.1 and runs serve on each: the
// tests script the bytes a receiver sends, including the ones net/http's
// server would never send.
type rawServer struct {
	ln     net.Listener
	conns  atomic.Int32 // accepted
	closed atomic.Int32 // closed after serve returned
	reqs   atomic.Int32 // requests read by readRequest
	wg     sync.WaitGroup
}

func newRawServer(t testing.TB, serve func(s *rawServer, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Go(func() {
				serve(s, c, bufio.NewReader(c))
				_ = c.Close()
				s.closed.Add(1)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/hook?x=1" }

// readRequest reads one request and its body; nil when the client is gone.
func (s *rawServer) readRequest(br *bufio.Reader) (*http.Request, []byte) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil
	}
	s.reqs.Add(1)
	return req, body
}

// keepAlive answers every request with answer(request, body) until the
// client goes away.
func keepAlive(answer func(*http.Request, []byte) string) func(*rawServer, net.Conn, *bufio.Reader) {
	return func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			req, body := s.readRequest(br)
			if req == nil {
				return
			}
			if _, err := io.WriteString(c, answer(req, body)); err != nil {
				return
			}
		}
	}
}

func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// newTestH1 is a transport whose idle connections are closed when the test
// ends (before its servers stop, which wait for their connections).
func newTestH1(t *testing.T) *h1Transport {
	rt := newH1Transport((&net.Dialer{Timeout: time.Second}).DialContext)
	t.Cleanup(rt.CloseIdleConnections)
	return rt
}

// post sends one POST with body through rt and reads the whole answer.
func post(t *testing.T, ctx context.Context, rt http.RoundTripper, url, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Webhook-Id", "orders-1-7")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestH1SendsTheRequestAndReusesTheConnection(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := newRawServer(t, keepAlive(func(r *http.Request, body []byte) string {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s host=%s len=%d id=%s body=%s", r.Method, r.URL.RequestURI(), r.Host, r.ContentLength, r.Header.Get("Webhook-Id"), body))
		mu.Unlock()
		return ok("thanks")
	}))
	rt := newTestH1(t)
	for i := range 50 {
		resp, body, err := post(t, t.Context(), rt, srv.url(), fmt.Sprintf("record %d", i))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != 200 || body != "thanks" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for 50 sequential requests, want 1", n)
	}
	want := "POST /hook?x=1 host=" + srv.ln.Addr().String() + " len=8 id=orders-1-7 body=record 7"
	if got[7] != want {
		t.Errorf("request 7 arrived as %q, want %q", got[7], want)
	}
}

func TestH1PoolsConnectionsOfConcurrentRequests(t *testing.T) {
	srv := newRawServer(t, keepAlive(func(_ *http.Request, body []byte) string { return ok(string(body)) }))
	rt := newTestH1(t)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				want := fmt.Sprintf("g%d-%d", g, i)
				_, body, err := post(t, t.Context(), rt, srv.url(), want)
				if err != nil || body != want {
					t.Errorf("%s: body %q, err %v", want, body, err)
				}
			}
		})
	}
	wg.Wait()
	if n := srv.conns.Load(); n > 16 {
		t.Errorf("%d connections for 16 concurrent callers, want at most 16", n)
	}
}

// Every way a response can be framed, and whether the connection survives it.
func TestH1ResponseFraming(t *testing.T) {
	cases := []struct {
		name   string
		answer string // the raw response
		body   string
		status int
		reused bool // the next request goes on the same connection
	}{
		{"content-length", ok("abc"), "abc", 200, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde", 200, true},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "", 204, true},
		{"1xx first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok("ok"), "ok", 200, true},
		{"connection close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy", "busy", 503, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
				for {
					if req, _ := s.readRequest(br); req == nil {
						return
					}
					_, _ = io.WriteString(c, tc.answer)
					if !tc.reused {
						return
					}
				}
			})
			rt := newTestH1(t)
			for i := range 2 {
				resp, body, err := post(t, t.Context(), rt, srv.url(), "x")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if resp.StatusCode != tc.status || body != tc.body {
					t.Fatalf("request %d: %d %q, want %d %q", i, resp.StatusCode, body, tc.status, tc.body)
				}
			}
			want := int32(2)
			if tc.reused {
				want = 1
			}
			if n := srv.conns.Load(); n != want {
				t.Errorf("%d connections for two requests, want %d", n, want)
			}
		})
	}
}

// A body with no length ends with the connection.
func TestH1CloseDelimitedBody(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if req, _ := s.readRequest(br); req != nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil the end")
		}
	})
	rt := newTestH1(t)
	for i := range 2 {
		_, body, err := post(t, t.Context(), rt, srv.url(), "x")
		if err != nil || body != "until the end" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (a close-delimited body ends its connection)", n)
	}
}

// The receiver closed the idle connection (a keep-alive timeout) right after
// answering: the next request fails on it before any answer and goes once
// more on a new connection. The receiver sees each request once.
func TestH1SendsAgainWhenTheIdleConnectionWasClosed(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if req, body := s.readRequest(br); req != nil {
			_, _ = io.WriteString(c, ok(string(body)))
		}
	})
	rt := newTestH1(t)
	for i := range 5 {
		want := fmt.Sprintf("record %d", i)
		_, body, err := post(t, t.Context(), rt, srv.url(), want)
		if err != nil || body != want {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := srv.reqs.Load(); n != 5 {
		t.Errorf("the receiver read %d requests, want 5", n)
	}
}

func TestH1AliveTellsAClosedConnection(t *testing.T) {
	c, peer := tcpPair(t)
	p := newPeeker(c)
	if !p.alive() {
		t.Fatal("an open, quiet connection is not alive")
	}
	if n := testing.AllocsPerRun(10, func() { p.alive() }); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
	_, _ = peer.Write([]byte("x"))
	waitFor(t, 10*time.Second, "unasked bytes to arrive", func() bool { return !p.alive() })
	_, _ = io.ReadFull(c, make([]byte, 1))
	if !p.alive() {
		t.Fatal("alive after the unasked byte was read")
	}
	_ = peer.Close()
	waitFor(t, 10*time.Second, "the close to arrive", func() bool { return !p.alive() })
}

func TestH1ContextBoundsTheExchange(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		req, body := s.readRequest(br)
		if req == nil {
			return
		}
		switch string(body) {
		case "no answer":
		case "half a body":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
		default:
			_, _ = io.WriteString(c, ok("fine"))
			return
		}
		<-release
	})
	rt := newTestH1(t)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := post(t, ctx, rt, srv.url(), "no answer"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no answer: err = %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.url(), strings.NewReader("half a body"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("reading the rest of a stalled body after the cancellation: no error")
	}
	_ = resp.Body.Close()

	if _, body, err := post(t, t.Context(), rt, srv.url(), "again"); err != nil || body != "fine" {
		t.Errorf("the next request: %q, %v", body, err)
	}
	if n := srv.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3: a connection whose exchange was cut short is not reused", n)
	}
}

// The exchanges in flight under contexts that share a Done channel share one
// watch of it. The watch is dropped when its last exchange ends, and when the
// context ends it cuts every one of them short, and their connections are not
// reused.
func TestH1OneWatchPerContext(t *testing.T) {
	const n = 8
	arrived := make(chan struct{}, 2*n)
	first, second := make(chan struct{}), make(chan struct{})
	defer close(second)
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			req, body := s.readRequest(br)
			if req == nil {
				return
			}
			arrived <- struct{}{}
			switch string(body) {
			case "first":
				<-first
			case "second":
				<-second
			}
			if _, err := io.WriteString(c, ok("fine")); err != nil {
				return
			}
		}
	})
	rt := newTestH1(t)
	watches := func() (watches, conns int) {
		rt.wmu.Lock()
		defer rt.wmu.Unlock()
		for _, w := range rt.watches {
			conns += len(w.conns)
		}
		return len(rt.watches), conns
	}
	type key struct{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	send := func(body string) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// A context of its own, the same Done channel: as a
				// route's deliveries under their spans.
				_, _, errs[i] = post(t, context.WithValue(ctx, key{}, i), rt, srv.url(), body)
			})
		}
		for range n {
			<-arrived
		}
		if w, c := watches(); w != 1 || c != n {
			t.Errorf("%s: %d exchanges in flight under %d watches; want %d under 1", body, c, w, n)
		}
		switch body {
		case "first":
			close(first)
		case "second":
			cancel()
		}
		wg.Wait()
		return errs
	}

	for i, err := range send("first") {
		if err != nil {
			t.Errorf("first round, request %d: %v", i, err)
		}
	}
	if w, c := watches(); w != 0 || c != 0 {
		t.Errorf("after the first round: %d watches, %d exchanges; want none", w, c)
	}
	for i, err := range send("second") {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("second round, request %d: err = %v, want context.Canceled", i, err)
		}
	}
	if w, c := watches(); w != 0 || c != 0 {
		t.Errorf("after the cancellation: %d watches, %d exchanges; want none", w, c)
	}
	if _, body, err := post(t, t.Context(), rt, srv.url(), "third"); err != nil || body != "fine" {
		t.Errorf("the next request: %q, %v", body, err)
	}
	if c := srv.conns.Load(); c != n+1 {
		t.Errorf("%d connections, want %d: the %d cut short are not reused", c, n+1, n)
	}
}

func TestH1BoundsTheResponseHeader(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if req, _ := s.readRequest(br); req != nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\nContent-Length: 0\r\n\r\n")
		}
	})
	if _, _, err := post(t, t.Context(), newTestH1(t), srv.url(), "x"); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("err = %v, want %v", err, errHeaderTooLarge)
	}
}

// A body closed before its end closes its connection instead of reading the
// rest (the receiver may send gigabytes).
func TestH1BodyLeftUnreadClosesTheConnection(t *testing.T) {
	srv := newRawServer(t, keepAlive(func(_ *http.Request, body []byte) string {
		if string(body) == "big" {
			return ok(strings.Repeat("z", 4<<20))
		}
		return ok("small")
	}))
	rt := newTestH1(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url(), strings.NewReader("big"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, body, err := post(t, t.Context(), rt, srv.url(), "x"); err != nil || body != "small" {
		t.Fatalf("next request: %q, %v", body, err)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestH1RefusesAnInvalidHeader(t *testing.T) {
	srv := newRawServer(t, keepAlive(func(*http.Request, []byte) string { return ok("") }))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url(), bytes.NewReader([]byte("x")))
	req.Header["X-Evil"] = []string{"a\r\nInjected: yes"}
	if _, err := newTestH1(t).RoundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid header field value") {
		t.Errorf("err = %v, want an invalid header error", err)
	}
	if n := srv.reqs.Load(); n != 0 {
		t.Errorf("the receiver read %d requests, want none", n)
	}
}

// A receiver that answers before it read the whole request and closes (413
// for a body too large) gets its answer through, not a broken write.
func TestH1EarlyAnswerToALargeRequest(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!")
	})
	resp, body, err := post(t, t.Context(), newTestH1(t), srv.url(), strings.Repeat("x", 16<<20))
	if err != nil {
		t.Fatalf("err = %v, want the receiver's 413", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too big!" {
		t.Errorf("answer %d %q, want 413 %q", resp.StatusCode, body, "too big!")
	}
}

// A body read to its end keeps answering io.EOF, though its connection has
// gone back to the pool and may carry another request meanwhile.
func TestH1BodyAtItsEndStaysAtItsEnd(t *testing.T) {
	srv := newRawServer(t, keepAlive(func(_ *http.Request, body []byte) string { return ok(string(body)) }))
	rt := newTestH1(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url(), strings.NewReader("first"))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "first" {
		t.Fatalf("body %q, %v", b, err)
	}
	if _, body, err := post(t, t.Context(), rt, srv.url(), "second"); err != nil || body != "second" {
		t.Fatalf("second request: %q, %v", body, err)
	}
	if n, err := resp.Body.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("Read after the end: %d, %v; want 0, io.EOF", n, err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// BenchmarkDeliver is one single-record delivery over the HTTP/1.1 client:
// headers, request, answer. The receiver runs in the same process, so its
// allocations and CPU are in the figures too.
func BenchmarkDeliver(b *testing.B) {
	srv := newRawServer(b, keepAlive(func(*http.Request, []byte) string { return ok("") }))
	tg := newTarget(b, srv.url(), nil)
	rec := &target.Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("customer-7"), Value: make([]byte, 256),
		Timestamp: time.Now(), Headers: []target.Header{{Key: "tenant", Value: []byte("acme")}}}
	d := &target.Delivery{Route: "orders-billing", Record: rec, Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tg.Deliver(b.Context(), d); err != nil {
			b.Fatal(err)
		}
	}
}

// Bytes a receiver sends past the end of an answer (a second answer nobody
// asked for, in the same write or a moment later) are never read as the
// answer to the next request on that connection: a record the receiver
// answered 500 must not count as delivered. The connection is dropped
// instead, as net/http does, whose Transport passes the same test.
func TestStrayAnswerIsNotTheNextRequestsAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		later  time.Duration // the stray answer comes this long after the real one; 0: in the same write
		closes bool          // the client closes the connection once the stray answer arrives (net/http's read loop)
	}{
		{"direct, same write", nil, 0, false},
		{"direct, a moment later", nil, 50 * time.Millisecond, false},
		{"round tripper, same write", roundTripper, 0, false},
		{"round tripper, a moment later", roundTripper, 50 * time.Millisecond, false},
		{"net/http", func(o *Options) { o.Transport = &http.Transport{} }, 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strayed := make(chan struct{})
			srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
				for {
					if req, _ := s.readRequest(br); req == nil {
						return
					}
					answer := "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
					const okEmpty = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
					if s.reqs.Load() == 1 {
						answer = okEmpty
						if tc.later == 0 {
							answer += okEmpty
						}
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
					if s.reqs.Load() == 1 {
						if tc.later > 0 {
							time.Sleep(tc.later)
							_, _ = io.WriteString(c, okEmpty)
						}
						close(strayed)
					}
				}
			})
			tg := newTarget(t, srv.url(), tc.change)
			if _, err := deliver(t, t.Context(), tg, record()); err != nil {
				t.Fatalf("first record: %v", err)
			}
			<-strayed
			if tc.closes {
				// net/http sees the stray answer in its read loop, a goroutine
				// of its own: a request sent before that loop ran takes the
				// stray answer for its own. Wait until it closed the connection.
				waitFor(t, 10*time.Second, "the client to close the connection", func() bool { return srv.closed.Load() == 1 })
			} else {
				time.Sleep(50 * time.Millisecond) // for the stray bytes to cross loopback; a test of data, not of timing
			}
			second := record()
			second.Offset = 43
			_, err := deliver(t, t.Context(), tg, second)
			if n := srv.reqs.Load(); n != 2 {
				t.Fatalf("the receiver read %d requests, want 2", n)
			}
			wantKind(t, err, target.Retryable, 500)
		})
	}
}

// Connections the receiver closed while they sat in the pool are not used,
// and the one more try that a request on a reused connection gets, when that
// connection turns out closed before any byte of an answer, goes on a new
// connection rather than on another pooled one, which may have been closed
// with it (a receiver restarted).
func TestRequestsAvoidClosedPooledConnections(t *testing.T) {
	for _, path := range []struct {
		name   string
		change func(*Options)
	}{{"direct", nil}, {"round tripper", roundTripper}} {
		for _, closeAll := range []bool{true, false} {
			name := path.name + ", pooled connections closed"
			if !closeAll {
				name = path.name + ", the reused connection closed on the request"
			}
			t.Run(name, func(t *testing.T) {
				var gate sync.WaitGroup
				gate.Add(2) // the first two requests are answered together: two connections are pooled
				srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
					for {
						req, _ := s.readRequest(br)
						if req == nil {
							return
						}
						n := s.reqs.Load()
						if n <= 2 {
							gate.Done()
							gate.Wait()
						}
						if n == 3 && !closeAll {
							return // read the request, closed without an answer
						}
						_, _ = io.WriteString(c, ok(""))
						if n <= 2 && closeAll {
							return // closed once idle
						}
					}
				})
				tg := newTarget(t, srv.url(), path.change)
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						rec := record()
						rec.Offset = int64(i)
						if _, err := deliver(t, t.Context(), tg, rec); err != nil {
							t.Errorf("record %d: %v", i, err)
						}
					})
				}
				wg.Wait()
				if closeAll {
					waitFor(t, 10*time.Second, "both connections to close", func() bool { return srv.closed.Load() == 2 })
				}
				rec := record()
				rec.Offset = 99
				if _, err := deliver(t, t.Context(), tg, rec); err != nil {
					t.Fatalf("the receiver is up; the record failed with %v", err)
				}
				if n := srv.conns.Load(); n != 3 {
					t.Errorf("%d connections, want 3: the record went on a closed one, then on a pooled one", n)
				}
			})
		}
	}
}

// deadlineConn is a connection whose writes fail as a passed deadline makes
// them fail, and which records the read deadlines set on it.
type deadlineConn struct {
	net.Conn
	mu    sync.Mutex
	reads []time.Time
}

func (c *deadlineConn) Write([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

func (c *deadlineConn) SetReadDeadline(d time.Time) error {
	c.mu.Lock()
	c.reads = append(c.reads, d)
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(d)
}

// After a write cut short (the receiver stopped reading a large request),
// the bridge looks briefly for an answer the receiver may have sent before
// it closed (413, say), but never past the request's own deadline.
func TestAnswerAfterABrokenWriteWithinTheDeadline(t *testing.T) {
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) { _, _ = io.Copy(io.Discard, br) })
	var conn *deadlineConn
	rt := newH1Transport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn = &deadlineConn{Conn: c}
		return conn, nil
	})
	t.Cleanup(rt.CloseIdleConnections)
	now := time.Now()
	deadline := now.Add(200 * time.Millisecond)
	m := &directMessage{value: []byte("body")}
	m.head.buf = append(m.head.buf, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"...)
	if _, err := rt.send(t.Context(), srv.ln.Addr().String(), now, deadline, m); err == nil {
		t.Fatal("the write failed, yet send succeeded")
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.reads) == 0 {
		t.Fatal("no read deadline was set to look for an answer")
	}
	for _, d := range conn.reads {
		if d.After(deadline) {
			t.Errorf("read deadline %s past the request's deadline %s", d.Sub(now), deadline.Sub(now))
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// A request sent in one piece that does not fit in the socket's buffer is
// written in part by peeker.send; write sends the rest, and the receiver gets
// every byte in order.
func TestH1SendInPartsWhenTheSocketIsFull(t *testing.T) {
	c, peer := tcpPair(t)
	if newPeeker(c) == nil {
		t.Skip("no raw connection to write on here")
	}
	_ = c.SetWriteBuffer(4 << 10)
	_ = peer.SetReadBuffer(4 << 10)
	want := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB: more than the two buffers hold
	n, err := newPeeker(c).send(want)
	if err != nil || n <= 0 || n >= len(want) {
		t.Fatalf("send wrote %d of %d bytes (err %v), want a part and no error", n, len(want), err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	pc := &h1Conn{Conn: c, peek: newPeeker(c), bw: bufio.NewWriterSize(c, 4<<10)}
	m := &directMessage{}
	m.head.buf = append(m.head.buf, want[n:]...)
	m.joined = true
	if err := writeAll(pc, m); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the receiver got %d bytes, not the %d sent, in order", len(b), len(want))
	}
}

// A request whose deadline passed is not written, and the error is a write's
// that passed its deadline; a write to a connection the peer reset fails as
// a write, with the system's error.
func TestH1SendErrors(t *testing.T) {
	c, peer := tcpPair(t)
	pc := &h1Conn{Conn: c, peek: newPeeker(c), bw: bufio.NewWriterSize(c, 4<<10)}
	if pc.peek == nil {
		t.Skip("no raw connection to write on here")
	}
	m := &directMessage{value: []byte("body")}
	m.head.buf = append(m.head.buf, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"...)
	_ = c.SetDeadline(aLongTimeAgo)
	err := writeAll(pc, m)
	var op *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &op) || op.Op != "write" {
		t.Fatalf("err = %v, want a write past its deadline", err)
	}
	_ = c.SetDeadline(time.Time{})
	_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the peer read %d bytes (err %v) of a request that passed its deadline", n, err)
	}

	_ = peer.SetLinger(0)
	_ = peer.Close() // a reset
	waitFor(t, 10*time.Second, "the reset to arrive", func() bool { return !pc.peek.alive() })
	err = writeAll(pc, m)
	if !errors.As(err, &op) || op.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("err = %v, want a write that the connection's reset failed", err)
	}
	if !strings.HasPrefix(err.Error(), "write tcp ") {
		t.Errorf("err = %q, want it worded as net's own write errors", err)
	}
}

// A request that runs out of time on a reused connection, the receiver
// having read it and not answered, fails as the request timeout, as on a new
// connection: it is not sent again on a new connection (dialed past the
// deadline, which only failed with a dial error that named no timeout).
func TestTimeoutOnAReusedConnectionIsTheRequestTimeout(t *testing.T) {
	var requests atomic.Int32
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			if req, _ := s.readRequest(br); req == nil {
				return
			}
			if requests.Add(1) > 1 {
				_, _ = io.Copy(io.Discard, br) // no answer: wait for the client to go
				return
			}
			_, _ = io.WriteString(c, ok(""))
		}
	})
	tg := newTarget(t, srv.url(), func(o *Options) { o.Config.Timeout = config.Duration(200 * time.Millisecond) })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 0)
	if !strings.Contains(err.Error(), "no response within 200ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the request timeout", err)
	}
	if n, conns := requests.Load(), srv.conns.Load(); n != 2 || conns != 1 {
		t.Errorf("the receiver got %d requests on %d connections, want 2 on 1", n, conns)
	}
}

// writeAll writes all of m on pc, as an exchange does but in the caller's
// goroutine.
func writeAll(pc *h1Conn, m h1Message) error {
	rest, err := pc.writeFirst(m)
	if err != nil || rest == nil {
		return err
	}
	return rest()
}

// A chunked 2xx whose trailer never ends fails a captured reply with the
// request timeout, on every path, as a body that stops does: the trailer's
// read was reported as "unexpected EOF", the receiver's fault, on the
// bridge's own client.
func TestTimeoutInAChunkedTrailerIsTheRequestTimeout(t *testing.T) {
	for _, tc := range clientPaths {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
				if req, _ := s.readRequest(br); req == nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n")
				_, _ = io.Copy(io.Discard, br) // the trailer's end never comes: wait for the client to go
			})
			tg := newTarget(t, srv.url(), func(o *Options) {
				o.Config.Timeout = config.Duration(200 * time.Millisecond)
				o.CaptureReply = true
				if tc.change != nil {
					tc.change(o)
				}
			})
			_, err := deliver(t, t.Context(), tg, record())
			wantKind(t, err, target.Retryable, http.StatusOK)
			if !strings.Contains(err.Error(), "no response within 200ms") || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want the request timeout", err)
			}
		})
	}
}
