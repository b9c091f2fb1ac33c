package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// A client that announces a request body and never sends it used to hold its
// connection, and a goroutine, for ever: the server waits for the body to
// discard it before it answers, with no deadline on that read (the header
// timeout had passed, and the write timeout bounds writes only). Enough such
// clients exhaust the process's file descriptors, which Kafka and the
// targets need. The whole request must now arrive within requestTimeout.
func TestStalledRequestBodyIsCut(t *testing.T) {
	old := requestTimeout
	requestTimeout = 200 * time.Millisecond
	defer func() { requestTimeout = old }()
	s, err := Listen("127.0.0.1:0", func() error { return nil }, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, req := range []string{
		"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		// A safety net only: the server must end the connection long before.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%q: the server still holds the connection of a request whose body never comes: %v", req, err)
		}
	}
}
