//go:build unix

package webhook

import (
	"errors"
	"net"
	"syscall"
)

// peeker tells whether an idle connection can carry a request: the peer has
// not closed it and sent nothing unasked. It peeks without blocking (one
// recv(MSG_PEEK|MSG_DONTWAIT)); nothing to read is the healthy case. Made
// once per connection, it costs no allocation per check.
type peeker struct {
	rc      syscall.RawConn
	check   func(fd uintptr) bool // p.peek, bound once
	buf     [1]byte
	healthy bool
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
