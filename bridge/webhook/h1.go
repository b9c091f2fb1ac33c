package webhook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// h1Transport is the round tripper of a plain-HTTP webhook that goes through
// no proxy: HTTP/1.1 over a pool of keep-alive connections, each request
// written and its response read by the calling goroutine (what of a request
// does not go in one write is written by a goroutine of its own while the
// answer is read, so that an answer sent before the receiver read the whole
// request is not held up behind it).
//
// net/http's Transport gives every connection a reader and a writer
// goroutine and hands each request and response between them and the
// caller. For a small webhook those hand-offs cost about twice the CPU of
// the request itself: a client sending the webhook's requests this way
// spends about 16 µs of CPU per request on this project's bench machine,
// net/http's about 45 µs (bench/README.md). HTTPS targets keep net/http,
// which also brings HTTP/2.
//
// What it does, as net/http does for such a request: keep-alive with an
// idle timeout and a cap on idle connections; "Connection: close" and
// close-delimited bodies end a connection; 1xx answers before the final one
// are skipped; the response header is bounded; the request's context
// bounds the dial, the write, the response and the body (a deadline, and a
// cancellation that unblocks the connection), and so does the deadline of a
// message sent with send (the Target's direct path). Answers are read by
// readResponse. A connection is reused only once its response body was read
// to the end and the whole request was written. A request that fails on a
// reused connection before any byte of the answer arrived (the receiver
// closed the idle connection) is sent once more on a new connection. Idle connections are checked before every reuse
// (see h1Conn.alive).
type h1Transport struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	idleTimeout time.Duration
	maxIdle     int   // idle connections kept per address
	maxHeader   int64 // bytes of a response's status line and header

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by address; the most recently used last
	closed bool
	sweep  *time.Timer // closes the connections idle past idleTimeout; nil while none is idle

	wmu     sync.Mutex
	watches map[<-chan struct{}]*ctxWatch // by the context's Done channel
}

func newH1Transport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *h1Transport {
	return &h1Transport{
		dial:        dial,
		idleTimeout: idleConnTimeout,
		maxIdle:     maxIdleConns,
		maxHeader:   maxResponseHeaderSize,
		idle:        make(map[string][]*h1Conn),
	}
}

// h1Conn is one pooled connection.
type h1Conn struct {
	net.Conn
	lr       limitReader // what br reads from: the connection, bounded while a header is read
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	peek     *peeker   // whether the peer closed it or sent anything while idle
	usedAt   time.Time // when its last exchange started: idle since then at most
	deadline time.Time // the connection's deadline, as the last exchange set it
	watched  int       // its index in the conns of the ctxWatch of its exchange
}

// alive tells whether an idle connection can carry a request at now:
// nothing is buffered past its last answer, and the peer neither closed it
// nor sent anything since (peeker). It clears first the deadline its last
// exchange left on it if that has passed, which the peek would trip over;
// one still ahead stays until the exchange sets its own.
func (pc *h1Conn) alive(now time.Time) bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if !pc.deadline.IsZero() && !now.Before(pc.deadline) {
		_ = pc.SetDeadline(time.Time{})
		pc.deadline = time.Time{}
	}
	return pc.peek.alive()
}

// limitReader reads from r at most n bytes, then fails with errHeaderTooLarge;
// read counts the bytes it returned.
type limitReader struct {
	r    io.Reader
	n    int64
	read int64
}

var errHeaderTooLarge = errors.New("http: response header too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}

// aLongTimeAgo is a deadline in the past: it unblocks every read and write.
var aLongTimeAgo = time.Unix(1, 0)

// retryableError marks a failure on a reused connection before any byte of
// the answer arrived.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// h1Message is a request the transport writes: an *http.Request (RoundTrip)
// or a record's request built by the Target (see Target.deliverDirect).
type h1Message interface {
	// writeTo writes the whole request on bw and flushes.
	writeTo(bw *bufio.Writer) error
	// rewind makes the message ready to be written once more, on a new
	// connection; an error when it cannot be.
	rewind() error
	// abandon is called when the message will not be written at all.
	abandon()
	// closes reports that the request asks to close the connection after
	// its answer.
	closes() bool
	// fullHeader reports that the caller reads every field of the answer;
	// otherwise only Content-Type and Retry-After (see readResponse).
	fullHeader() bool
}

// httpMessage is an *http.Request as an h1Message.
type httpMessage struct{ req *http.Request }

func (m *httpMessage) writeTo(bw *bufio.Writer) error { return writeRequest(bw, m.req) }
func (m *httpMessage) abandon()                       { closeRequestBody(m.req) }
func (m *httpMessage) closes() bool                   { return m.req.Close }
func (m *httpMessage) fullHeader() bool               { return true }

func (m *httpMessage) rewind() error {
	if m.req.GetBody == nil {
		return errors.New("http: request body cannot be sent again")
	}
	body, err := m.req.GetBody()
	if err != nil {
		return err
	}
	again := *m.req
	again.Body = body
	m.req = &again
	return nil
}

// RoundTrip sends req and reads the response's status and header; the body
// is read from the connection as the caller reads it.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.send(req.Context(), canonicalAddr(req.URL), time.Now(), time.Time{}, &httpMessage{req: req})
}

// send writes m to addr and reads the response's status and header; now is
// the time it starts. ctx bounds the exchange and the body; so does
// deadline, unless it is zero. A deadline passed shows as an error wrapping
// os.ErrDeadlineExceeded, with ctx still alive.
func (t *h1Transport) send(ctx context.Context, addr string, now, deadline time.Time, m h1Message) (*http.Response, error) {
	for first := true; ; first = false {
		// The second try goes on a new connection: the pooled ones may
		// have been closed with the one that failed (a receiver restarted).
		pc, reused, err := t.get(ctx, addr, now, deadline, !first)
		if err != nil {
			m.abandon()
			return nil, t.ctxErr(ctx, err)
		}
		pc.usedAt = now
		resp, err := t.exchange(ctx, pc, m, reused, deadline)
		if err == nil {
			return resp, nil
		}
		_ = pc.Close()
		var retry *retryableError
		if !first || !errors.As(err, &retry) || ctx.Err() != nil || m.rewind() != nil {
			return nil, t.ctxErr(ctx, err)
		}
	}
}

// ctxErr reports a failure caused by the request's context as the context's
// error, as net/http does.
func (t *h1Transport) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var retry *retryableError
	if errors.As(err, &retry) {
		return retry.err
	}
	return err
}

// exchange writes m on pc and reads the response's header.
func (t *h1Transport) exchange(ctx context.Context, pc *h1Conn, m h1Message, reused bool, deadline time.Time) (*http.Response, error) {
	// The exchange's own deadline goes on the connection (zero clears the
	// last one), before the context's watch: the context's end, deadline
	// or cancellation, then moves the deadline to the past and cuts the I/O
	// short, and nothing moves it back.
	if !deadline.Equal(pc.deadline) {
		_ = pc.SetDeadline(deadline)
		pc.deadline = deadline
	}
	w := t.watch(ctx, pc)
	fail := func(err error) (*http.Response, error) {
		t.unwatch(w, pc)
		// A reused connection that failed before any answer came was
		// likely closed by the receiver while idle: the request goes again
		// on a new one. Not when the request's time ran out: the receiver
		// has it and did not answer in time, and a new connection, dialed
		// past the deadline, would only hide that behind a dial error.
		if reused && pc.lr.read == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &retryableError{err}
		}
		return nil, err
	}
	pc.lr.read = 0
	rest, werr := pc.writeFirst(m)
	if werr != nil {
		// A receiver may answer and close before it read the whole request
		// (413 Content Too Large, say): its answer says more than the
		// broken write. Look for one, briefly.
		if ctx.Err() != nil {
			return fail(werr)
		}
		_ = pc.SetReadDeadline(lookFor(deadline))
		resp, err := t.answer(pc, m, w, false, nil)
		if err != nil {
			return fail(werr)
		}
		return resp, nil
	}
	// What did not go at once is written while the answer is read: a
	// receiver may answer before it read the whole request (413 for its
	// Content-Length) and then read no more of it, and its answer must not
	// wait behind a write that cannot end.
	wr := pc.writeRest(ctx, rest, deadline)
	resp, err := t.answer(pc, m, w, true, wr)
	if err != nil {
		if werr := wr.finish(pc, false); werr != nil {
			return fail(werr) // the write broke first: it says why
		}
		return fail(err)
	}
	return resp, nil
}

// lookFor is how long to look for an answer after the request's write
// broke: briefly, and never past the request's own deadline.
func lookFor(deadline time.Time) time.Time {
	look := time.Now().Add(time.Second)
	if !deadline.IsZero() && deadline.Before(look) {
		look = deadline // the request's own time is what bounds it
	}
	return look
}

// h1Writing is the rest of a request being written, by a goroutine of its
// own, while the exchange reads the answer.
type h1Writing struct {
	done chan struct{}
	err  error       // the write's, once done is closed
	cut  atomic.Bool // finish cut the write short
}

// writeRest writes the rest of a request on pc in a goroutine of its own;
// nil when nothing is left to write. When the write breaks the answer is
// looked for briefly (lookFor), as when the first write breaks.
func (pc *h1Conn) writeRest(ctx context.Context, rest func() error, deadline time.Time) *h1Writing {
	if rest == nil {
		return nil
	}
	wr := &h1Writing{done: make(chan struct{})}
	go func() {
		defer close(wr.done)
		wr.err = rest()
		if wr.err != nil && !wr.cut.Load() && ctx.Err() == nil {
			_ = pc.SetReadDeadline(lookFor(deadline))
		}
	}()
	return wr
}

// writeWait is how long an exchange whose answer is complete waits for the
// rest of its request to be written before it gives up on reusing the
// connection: the receiver answered, so the write has ended but for its
// goroutine's turn to run, unless the receiver answered before it read the
// whole request.
const writeWait = 50 * time.Millisecond

// finish ends the write of wr: it cuts it short if it is still going (the
// answer came first) and waits for its goroutine; with wait, the connection
// could carry another request, and the write gets writeWait to end first.
// It returns the write's error when it broke by itself; complete reports
// that all of it was written, the condition for pc to carry another request.
func (wr *h1Writing) finish(pc *h1Conn, wait bool) error {
	if wr == nil {
		return nil
	}
	select {
	case <-wr.done:
		return wr.err
	default:
	}
	if wait {
		timer := time.NewTimer(writeWait)
		defer timer.Stop()
		select {
		case <-wr.done:
			return wr.err
		case <-timer.C:
		}
	}
	wr.cut.Store(true)
	_ = pc.SetWriteDeadline(aLongTimeAgo)
	<-wr.done
	return nil
}

// complete reports whether the write of wr ended and all of it went; nil
// (nothing left to write) is complete. Call it after finish.
func (wr *h1Writing) complete() bool {
	return wr == nil || (wr.err == nil && !wr.cut.Load())
}

// flatMessage is an h1Message that can give its whole request in one piece;
// flat returns nil when it does not.
type flatMessage interface{ flat() []byte }

// writeFirst writes what of m goes at once and returns rest, which writes
// what is left (nil when nothing is). A request in one piece goes with one
// write(2) that also waits for the answer to arrive (peeker.send), which
// spares the read that would find nothing yet; what the socket did not take,
// or a request not in one piece, is left to rest.
func (pc *h1Conn) writeFirst(m h1Message) (rest func() error, err error) {
	f, ok := m.(flatMessage)
	var b []byte
	if ok {
		b = f.flat()
	}
	if b == nil {
		return func() error { return m.writeTo(pc.bw) }, nil
	}
	n, err := pc.peek.send(b)
	if err != nil {
		return nil, pc.writeError(err)
	}
	if n == len(b) {
		return nil, nil
	}
	return func() error {
		_, _ = pc.bw.Write(b[n:])
		return pc.bw.Flush()
	}, nil
}

// writeError gives an error of peeker.send the form of a failed write on
// pc: the deadline's and the close's keep their identity for errors.Is.
func (pc *h1Conn) writeError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	} else if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError("write", errno)
	}
	return &net.OpError{Op: "write", Net: "tcp", Source: pc.LocalAddr(), Addr: pc.RemoteAddr(), Err: err}
}

// answer reads the response to m from pc, its header bounded by
// maxHeader, and gives it a body that hands pc back to the pool once read to
// its end when reusable, and otherwise closes it.
func (t *h1Transport) answer(pc *h1Conn, m h1Message, w *ctxWatch, reusable bool, wr *h1Writing) (*http.Response, error) {
	pc.lr.n = t.maxHeader
	resp, err := readResponse(pc.br, m.fullHeader())
	if err != nil {
		return nil, err
	}
	pc.lr.n = math.MaxInt64
	resp.Body = &h1Body{rc: resp.Body, pc: pc, t: t, w: w, wr: wr, keep: reusable && !resp.Close && !m.closes()}
	return resp, nil
}

// writeRequest writes req as HTTP/1.1 and its body, and flushes. It closes
// the request's body, as a RoundTripper must.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	defer closeRequestBody(req)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validHeaderValue(host) {
		return fmt.Errorf("http: invalid Host %q", host)
	}
	if req.ContentLength < 0 || (req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody) {
		return errors.New("http: request body of unknown length")
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(req.URL.RequestURI())
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	if req.ContentLength > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		_, _ = bw.WriteString("\r\n")
	}
	if req.Close {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	if err := writeHeader(bw, req.Header); err != nil {
		return err
	}
	if req.Body != nil && req.ContentLength > 0 {
		n, err := io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
		if err != nil {
			return err
		}
		if n != req.ContentLength {
			return fmt.Errorf("http: request body of %d bytes, Content-Length %d", n, req.ContentLength)
		}
	}
	return bw.Flush()
}

// writeHeader writes the fields of h and the empty line that ends a
// request's header. It refuses a name or value that would break the
// request's framing, and leaves out the fields the transport writes itself.
func writeHeader(bw *bufio.Writer, h http.Header) error {
	for name, values := range h {
		switch name {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
			continue // written by the transport, or not ours to set
		}
		if !validToken(name) {
			return fmt.Errorf("http: invalid header field name %q", name)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return fmt.Errorf("http: invalid header field value for %q", name)
			}
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	_, _ = bw.WriteString("\r\n")
	return nil
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// get returns an idle connection to addr that is still open, or dials one
// (always, when fresh); now is the time, and deadline, unless zero, bounds
// the dial.
func (t *h1Transport) get(ctx context.Context, addr string, now, deadline time.Time, fresh bool) (pc *h1Conn, reused bool, err error) {
	for !fresh {
		t.mu.Lock()
		conns := t.idle[addr]
		if len(conns) == 0 {
			t.mu.Unlock()
			break
		}
		pc = conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		t.mu.Unlock()
		// A connection may have been closed by the receiver while idle
		// (keep-alive timeouts of a few seconds are common), and one that
		// holds bytes nobody asked for must not carry a request: they would
		// be read as its answer.
		if now.Sub(pc.usedAt) < t.idleTimeout && pc.alive(now) {
			return pc, true, nil
		}
		_ = pc.Close()
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	pc = &h1Conn{Conn: c, addr: addr, peek: newPeeker(c)}
	pc.lr.r = c
	pc.lr.n = math.MaxInt64
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	pc.bw = bufio.NewWriterSize(c, 4<<10)
	return pc, false, nil
}

// put returns a connection whose exchange is complete to the pool.
func (t *h1Transport) put(pc *h1Conn) {
	t.mu.Lock()
	if t.closed || len(t.idle[pc.addr]) >= t.maxIdle {
		t.mu.Unlock()
		_ = pc.Close()
		return
	}
	t.idle[pc.addr] = append(t.idle[pc.addr], pc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout, t.closeExpired)
	}
	t.mu.Unlock()
}

// closeExpired closes the pooled connections idle for idleTimeout or longer,
// as net/http does. get drops such a connection only when it reaches it, and
// it takes the most recently used first: after a burst the others would stay
// open, and their receivers' ends with them, for as long as the bridge runs.
func (t *h1Transport) closeExpired() {
	now := time.Now()
	var expired []*h1Conn
	t.mu.Lock()
	t.sweep = nil
	next := time.Duration(0) // until the next connection left expires
	for addr, conns := range t.idle {
		kept := conns[:0]
		for _, pc := range conns {
			if left := t.idleTimeout - now.Sub(pc.usedAt); left > 0 {
				kept = append(kept, pc)
				if next == 0 || left < next {
					next = left
				}
				continue
			}
			expired = append(expired, pc)
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = kept
		}
	}
	if next > 0 && !t.closed {
		t.sweep = time.AfterFunc(next, t.closeExpired)
	}
	t.mu.Unlock()
	for _, pc := range expired {
		_ = pc.Close()
	}
}

// CloseIdleConnections closes the pooled connections; connections in use are
// closed when their exchange ends.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*h1Conn)
	t.closed = true
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			_ = pc.Close()
		}
	}
}

// ctxWatch cuts short the exchanges in flight under one context when it
// ends, by moving their connections' deadlines to the past. The contexts of
// a route's deliveries share their Done channel (the partition's, under the
// values of spans and trace context), so one registration with the context
// (context.AfterFunc) serves every exchange in flight under it, instead of
// one registration per request; on a busy route that was a few per cent of a
// record's CPU. A watch is dropped when its last exchange ends, so a context
// that never ends keeps nothing registered.
type ctxWatch struct {
	done  <-chan struct{}
	stop  func() bool
	conns []*h1Conn // connections with an exchange in flight under it
	ended bool      // the context ended; conns' deadlines were moved to the past
}

// watch puts pc's exchange under the watch of ctx; nil when ctx never ends.
func (t *h1Transport) watch(ctx context.Context, pc *h1Conn) *ctxWatch {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	w := t.watches[done]
	if w == nil {
		w = &ctxWatch{done: done}
		if t.watches == nil {
			t.watches = make(map[<-chan struct{}]*ctxWatch)
		}
		t.watches[done] = w
		// f runs in a goroutine of its own, never under wmu.
		w.stop = context.AfterFunc(ctx, func() { t.ended(w) })
	}
	pc.watched = len(w.conns)
	w.conns = append(w.conns, pc)
	return w
}

// ended cuts short the exchanges in flight under w, whose context ended.
func (t *h1Transport) ended(w *ctxWatch) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	w.ended = true
	if t.watches[w.done] == w {
		delete(t.watches, w.done)
	}
	for _, pc := range w.conns {
		_ = pc.SetDeadline(aLongTimeAgo)
	}
}

// unwatch takes pc's exchange from under w. It reports false when w's
// context ended first: pc's deadline was moved to the past, and pc must not
// be reused.
func (t *h1Transport) unwatch(w *ctxWatch, pc *h1Conn) bool {
	if w == nil {
		return true
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	last := len(w.conns) - 1
	moved := w.conns[last]
	w.conns[pc.watched], moved.watched = moved, pc.watched
	w.conns[last] = nil
	w.conns = w.conns[:last]
	if w.ended {
		return false
	}
	if last == 0 {
		// A context that ends after this is no concern of pc's: ended finds
		// no connection under w.
		w.stop()
		delete(t.watches, w.done)
	}
	return true
}

// h1Body is a response body: once read to the end (or closed) it gives the
// connection back to the pool, or closes it when it cannot be reused.
type h1Body struct {
	rc   io.ReadCloser
	pc   *h1Conn
	t    *h1Transport
	w    *ctxWatch  // the watch of the exchange's context
	wr   *h1Writing // the rest of the request, still being written when the answer came; nil when none
	keep bool       // the connection may be reused once the body is read
	eof  bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	switch {
	case b.eof:
		return 0, io.EOF // again: the connection may already serve another request
	case b.done:
		return 0, errors.New("http: read on closed response body")
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.finish()
	case err != nil:
		b.keep = false
		b.finish()
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.finish()
	return nil
}

func (b *h1Body) finish() {
	if b.done {
		return
	}
	b.done = true
	// Bytes past the end of the answer are none of the next request's.
	reusable := b.keep && b.eof && b.pc.br.Buffered() == 0
	// A request the receiver answered before it read all of it leaves the
	// connection in no state to carry another: its write is cut short
	// (before the watch ends, which bounds it).
	_ = b.wr.finish(b.pc, reusable)
	if b.t.unwatch(b.w, b.pc) && reusable && b.wr.complete() {
		b.t.put(b.pc)
		return
	}
	_ = b.pc.Close()
}
