//go:build unix

package webhook

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection can carry a request: the peer has
// not closed it and sent nothing unasked. It peeks without blocking (one
// recv(MSG_PEEK|MSG_DONTWAIT)); nothing to read is the healthy case.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	healthy := false
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open, nothing sent. n == 0 without an error: closed.
		// Anything read: an answer nobody asked for.
		healthy = n < 0 && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true // done: never wait for readability
	})
	return err == nil && healthy
}
