//go:build unix

package webhook

import (
	"errors"
	"net"
	"syscall"
)

// peeker works on a connection's file descriptor. alive tells whether an
// idle connection can carry a request: the peer has not closed it and sent
// nothing unasked. It peeks without blocking (one
// recv(MSG_PEEK|MSG_DONTWAIT)); nothing to read is the healthy case. send
// writes a request and waits for its answer without a read that finds
// nothing. Made once per connection, it costs no allocation per use.
type peeker struct {
	rc      syscall.RawConn
	check   func(fd uintptr) bool // p.peek, bound once
	buf     [1]byte
	healthy bool

	// send's state
	sendFn func(fd uintptr) bool // p.sendOnce, bound once
	out    []byte
	sent   int
	werr   error
	tried  bool
}

// newPeeker returns the peeker of c; nil when c has no file descriptor, and
// then every check passes.
func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.check = p.peek
	p.sendFn = p.sendOnce
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// EAGAIN: open, nothing sent. n == 0 without an error: closed. Anything
	// read: an answer nobody asked for.
	p.healthy = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
	return true // done: never wait for readability
}

func (p *peeker) alive() bool {
	if p == nil {
		return true
	}
	p.healthy = false
	return p.rc.Read(p.check) == nil && p.healthy
}

// send writes b with one write(2) and, when all of it went, waits until the
// connection has something to read, the answer, without reading it. It
// returns the bytes written; the caller writes the rest, if any, the usual
// way. The error is the write's, or that of the deadline or close that
// stopped it before it wrote anything.
//
// Writing, and then reading, costs a read(2) that finds nothing (the answer
// is not there yet) before the goroutine waits. Here the wait comes first:
// the write happens inside the connection's raw read, after the poller
// forgot any earlier readiness, so an answer that comes at once is not
// missed, and the first read after it finds the answer.
func (p *peeker) send(b []byte) (int, error) {
	if p == nil {
		return 0, nil
	}
	p.out, p.sent, p.werr, p.tried = b, 0, nil, false
	err := p.rc.Read(p.sendFn)
	p.out = nil
	if !p.tried {
		return 0, err // the deadline passed, or the connection was closed
	}
	// An error of the wait after a complete write (the deadline, say) shows
	// again to the read that follows.
	return p.sent, p.werr
}

func (p *peeker) sendOnce(fd uintptr) bool {
	if p.tried {
		return true // readable (or the wait ended): the caller reads
	}
	p.tried = true
	for {
		n, err := syscall.Write(int(fd), p.out)
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			p.sent = n
		}
		if err != nil && err != syscall.EAGAIN {
			p.werr = err
		}
		// All of it went: wait for the answer. Otherwise the caller writes
		// the rest, waiting for room as writes do.
		return err != nil || n < len(p.out)
	}
}
