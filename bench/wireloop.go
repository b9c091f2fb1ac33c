package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// wireLoop is the client of (cw) and (cw2): the claim loop of (c), one
// goroutine per partition, each writing its POSTs straight onto a keep-alive
// connection of its own (http.Request.Write) and reading the answer on the
// same goroutine (http.ReadResponse): none of net/http's Transport, whose
// reader and writer goroutines each request passes through. With Contract,
// each request carries the contract's headers, as in (c2). A failed request
// goes again on a new connection until the receiver accepts it.
func (s clientSpec) wireLoop(ctx context.Context) error {
	u, err := url.Parse(s.URL)
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	var mu sync.Mutex
	conns := make(map[int32]*wireConn)
	defer func() {
		for _, wc := range conns {
			_ = wc.Close()
		}
	}()
	// A request waiting for its answer when the run ends is not waited for.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, wc := range conns {
			_ = wc.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	return s.consumeGroup(ctx, func(ctx context.Context, m *sarama.ConsumerMessage) error {
		for {
			mu.Lock()
			wc := conns[m.Partition]
			mu.Unlock()
			var err error
			if wc == nil {
				if wc, err = dialWire(ctx, u.Host); err == nil {
					mu.Lock()
					conns[m.Partition] = wc
					mu.Unlock()
				}
			}
			if err == nil {
				var keep bool
				if keep, err = wc.post(u, s.headerFor(m), m.Value); !keep {
					mu.Lock()
					delete(conns, m.Partition)
					mu.Unlock()
					_ = wc.Close()
				}
			}
			if err == nil {
				return nil
			}
			if err := pause(ctx); err != nil {
				return err
			}
		}
	})
}

// headerFor is the contract's headers of m for a client with Contract set,
// nil otherwise.
func (s clientSpec) headerFor(m *sarama.ConsumerMessage) http.Header {
	if !s.Contract {
		return nil
	}
	return contractHeader(m.Topic, m.Partition, m.Offset, m.Key, m.Timestamp)
}

// wireConn is one keep-alive connection of wireLoop.
type wireConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dialWire(ctx context.Context, addr string) (*wireConn, error) {
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

// post sends body to u with header and reads the answer to its end; it fails
// unless the answer is 2xx. keep says whether the connection can carry the
// next request.
func (wc *wireConn) post(u *url.URL, header http.Header, body []byte) (keep bool, err error) {
	req := &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
	if req.Header == nil {
		req.Header = make(http.Header, 1)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := req.Write(wc.bw); err != nil {
		return false, err
	}
	if err := wc.bw.Flush(); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(wc.br, req)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode/100 != 2 {
		return !resp.Close, fmt.Errorf("status %d", resp.StatusCode)
	}
	return !resp.Close, nil
}
