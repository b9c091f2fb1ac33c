//go:build !unix

package webhook

import "net"

// peeker cannot peek at a connection here, nor send through its file
// descriptor: a request that fails on a closed idle connection is sent again
// on a new one (see h1Transport), and requests are written the usual way.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) alive() bool { return true }

// send writes nothing: the caller writes b the usual way.
func (*peeker) send([]byte) (int, error) { return 0, nil }
