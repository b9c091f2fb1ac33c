package webhook

import (
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
)

// maxH2Replays bounds how often one request is sent again after the
// connection it went out on was lost (see h2Replay): each replay goes on
// another connection, which a receiver rotating its connections may close
// as well.
const maxH2Replays = 3

// h2Replay sends a request once more when the HTTP/2 connection it went out
// on was lost before any byte of an answer came: a receiver
// (or its load balancer) that rotates connections sends GOAWAY naming the
// last stream it takes and closes the connection; the requests above that
// stream were never processed. net/http sends them again only when it read
// the GOAWAY before the close; when the close comes first (a write reset by
// the peer, the connection closed under them) it returns a connection
// error, which would fail an attempt and count against the breaker for a
// record the receiver never saw. This is what net/http does for replayable
// requests over HTTP/1.1 (see markReplayable) and the direct path does for
// its own, there on reused connections only; here also on a new one, whose
// streams opened at once with the first may lie above the last stream a
// GOAWAY names as well (maxH2Replays bounds the cost of a receiver that
// kills every connection). A stream the receiver reset (RST_STREAM) is its
// answer, and is not sent again; nor is a request whose context ended.
//
// Over HTTP/1.1 it does the same for a request on a reused connection that
// the receiver closed or reset (an idle timeout, a load balancer dropping an
// idle flow) before any byte of an answer: net/http sends a replayable
// request again when its read fails, but not when its write broke first,
// which a request too large for one write (a record of some 100 KiB, a
// batch) often does, the write racing the read for the error. Such a
// request failed an attempt, counted against the breaker, although the
// receiver never had all of it. A failure on a new connection is the
// receiver's answer, as net/http and the direct path hold it.
type h2Replay struct {
	next *http.Transport
}

func (r *h2Replay) RoundTrip(req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		var onH2, reused, answered atomic.Bool // the answer's first byte is read on the connection's goroutine
		trace := &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				tc, ok := info.Conn.(*tls.Conn)
				onH2.Store(ok && tc.ConnectionState().NegotiatedProtocol == "h2")
				reused.Store(info.Reused) // of the last connection tried, when net/http sent it again itself
			},
			GotFirstResponseByte: func() { answered.Store(true) },
		}
		resp, err := r.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		if err == nil || n == maxH2Replays || !(onH2.Load() || reused.Load()) || answered.Load() || req.Context().Err() != nil ||
			req.GetBody == nil || strings.HasPrefix(err.Error(), "stream error:") {
			return resp, err
		}
		body, berr := req.GetBody()
		if berr != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
}

// CloseIdleConnections closes the idle connections of the pool.
func (r *h2Replay) CloseIdleConnections() { r.next.CloseIdleConnections() }
