package webhook

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Receiver is an HTTP/2 receiver written frame by frame, for the
// connection management a load balancer does and Go's server does not:
// GOAWAY after a number of streams, RST_STREAM with a chosen code, a
// connection closed under its streams. It
// answers nothing by itself: done decides, for each request whose body
// ended (or, with early, as soon as its headers came), what to write.
type h2Receiver struct {
	ln         net.Listener
	ca         *pki
	handshakes atomic.Int32 // TLS handshakes completed
	streams    atomic.Int32 // requests whose headers were read
	answered   sync.Map     // webhook-id → true: answered 200 by goAwayAfter
	settings   []http2.Setting
	// early, when set, is called when a request's headers arrive; done,
	// when the request's body has ended. id is the stream, n counts the
	// requests of the whole receiver from 1, and hook is the request's
	// webhook-id.
	early func(c *h2Conn, id uint32, n int32, hook string)
	done  func(c *h2Conn, id uint32, n int32, hook string, body []byte)
	wg    sync.WaitGroup
}

// h2Conn is one connection of an h2Receiver; its writes are serialized.
type h2Conn struct {
	net.Conn
	mu  sync.Mutex
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func newH2Receiver(t *testing.T, r *h2Receiver) *h2Receiver {
	t.Helper()
	r.ca = newPKI(t, "server")
	cert, _, _ := r.ca.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	r.ln = ln
	var mu sync.Mutex
	var conns []net.Conn
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			r.wg.Go(func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				r.handshakes.Add(1)
				r.serve(c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *h2Receiver) url() string { return "https://" + r.ln.Addr().String() + "/hook" }

func (r *h2Receiver) serve(nc net.Conn) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	c := &h2Conn{Conn: nc, fr: http2.NewFramer(nc, nc)}
	c.enc = hpack.NewEncoder(&c.buf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 16 << 20
	c.write(func() { _ = c.fr.WriteSettings(r.settings...) })
	bodies, ns, hooks := map[uint32][]byte{}, map[uint32]int32{}, map[uint32]string{}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() { _ = c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() { _ = c.fr.WritePing(true, f.Data) })
			}
		case *http2.MetaHeadersFrame:
			id, n := f.StreamID, r.streams.Add(1)
			bodies[id], ns[id], hooks[id] = []byte{}, n, ""
			for _, hf := range f.Fields {
				if hf.Name == "webhook-id" {
					hooks[id] = hf.Value
				}
			}
			if r.early != nil {
				r.early(c, id, n, hooks[id])
			}
			if f.StreamEnded() {
				go r.done(c, id, n, hooks[id], nil)
			}
		case *http2.DataFrame:
			id := f.StreamID
			bodies[id] = append(bodies[id], f.Data()...)
			if l := uint32(f.Length); l > 0 {
				c.write(func() { _ = c.fr.WriteWindowUpdate(0, l); _ = c.fr.WriteWindowUpdate(id, l) })
			}
			if f.StreamEnded() {
				go r.done(c, id, ns[id], hooks[id], bodies[id])
			}
		}
	}
}

func (c *h2Conn) write(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// respond writes a complete answer with status and no body.
func (c *h2Conn) respond(id uint32, status string, fields ...hpack.HeaderField) {
	c.write(func() {
		c.buf.Reset()
		_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
		for _, hf := range fields {
			_ = c.enc.WriteField(hf)
		}
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.buf.Bytes(), EndHeaders: true, EndStream: true})
	})
}

func (c *h2Conn) reset(id uint32, code http2.ErrCode) {
	c.write(func() { _ = c.fr.WriteRSTStream(id, code) })
}

func (c *h2Conn) goAway(last uint32) {
	c.write(func() { _ = c.fr.WriteGoAway(last, http2.ErrCodeNo, nil) })
}

// goAwayAfter rotates connections as a load balancer does: at the n-th
// request of a connection it sends GOAWAY naming that request's stream as
// the last it takes, answers 200 to every stream up to it, ignores the
// streams above it (never processed), and once the last is answered closes
// the connection: at once, or with linger after its close_notify, reading
// what the client still sends for a second first.
func goAwayAfter(n int, linger bool) *h2Receiver {
	r := &h2Receiver{}
	type state struct {
		mu      sync.Mutex
		count   int
		last    uint32
		pending int
	}
	var conns sync.Map
	get := func(c *h2Conn) *state { v, _ := conns.LoadOrStore(c, &state{}); return v.(*state) }
	r.early = func(c *h2Conn, id uint32, _ int32, _ string) {
		st := get(c)
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.last != 0 {
			return // refused by the GOAWAY
		}
		st.count++
		st.pending++
		if st.count == n {
			st.last = id
			c.goAway(id)
		}
	}
	r.done = func(c *h2Conn, id uint32, _ int32, hook string, _ []byte) {
		st := get(c)
		st.mu.Lock()
		if st.last != 0 && id > st.last {
			st.mu.Unlock()
			return
		}
		r.answered.Store(hook, true) // before the answer: the client may read it at once
		c.respond(id, "200")
		st.pending--
		closeNow := st.last != 0 && st.pending == 0
		st.mu.Unlock()
		if closeNow {
			if linger {
				_ = c.Conn.(*tls.Conn).CloseWrite()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
			} else {
				_ = c.Close()
			}
		}
	}
	return r
}
