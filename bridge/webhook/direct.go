package webhook

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// deliverDirect is Deliver of a single record on the target's own HTTP/1.1
// client (a plain-HTTP URL with no proxy and no Authorization to add): the
// same request and the same answers as through the round tripper, without
// what a round tripper needs and this path does not. There is no
// *http.Request (whose construction parses the URL again), the request line
// is built once per target, the header map is reused from one request to
// the next, and the request timeout is a deadline on the connection instead
// of a context with a timer of its own.
func (t *Target) deliverDirect(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	m := directMessages.Get().(*directMessage)
	defer m.release()
	m.head, m.value = t.head, d.Record.Value
	now := time.Now()
	ts := now.Unix()
	if t.clock != nil {
		ts = t.clock().Unix()
	}
	t.header(m.h, d.Record, d.Attempt, ts)

	span, traced := t.spans.start(ctx, m.h)
	resp, err := t.direct.send(ctx, t.addr, now, now.Add(t.timeout), m)
	if err != nil {
		if traced {
			failed(span, err)
		}
		return nil, t.failure(ctx, ctx, 0, err)
	}
	if traced {
		answered(span, resp.StatusCode)
		defer span.End()
	}
	defer resp.Body.Close()
	return t.response(ctx, ctx, resp)
}

// directMessage is the request of one record on the direct path.
type directMessage struct {
	head  string      // request line and Host field
	h     http.Header // every other field but Content-Length
	value []byte      // the body
}

var directMessages = sync.Pool{New: func() any {
	return &directMessage{h: make(http.Header, headerRoom)}
}}

// release empties m and puts it back in the pool. The body and the header's
// strings are dropped, so a pooled message holds no record.
func (m *directMessage) release() {
	if len(m.h) > 4*headerRoom {
		m.h = make(http.Header, headerRoom) // a record with a great many headers: do not keep its map
	} else {
		clear(m.h)
	}
	m.head, m.value = "", nil
	directMessages.Put(m)
}

func (m *directMessage) writeTo(bw *bufio.Writer) error {
	_, _ = bw.WriteString(m.head)
	_, _ = bw.WriteString("Content-Length: ")
	_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(m.value)), 10))
	_, _ = bw.WriteString("\r\n")
	if err := writeHeader(bw, m.h); err != nil {
		return err
	}
	_, _ = bw.Write(m.value)
	return bw.Flush()
}

func (m *directMessage) rewind() error { return nil } // the body is a byte slice: it can be written again as is
func (m *directMessage) abandon()      {}
func (m *directMessage) closes() bool  { return false }

// timeoutError is the request timeout passing on the connection of the
// direct path. It wraps the I/O error and context.DeadlineExceeded, as a
// request context's timeout would.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string   { return e.err.Error() }
func (e *timeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.err} }

// timedOut reports whether err is the request timeout: reqCtx's deadline,
// or the connection's on the direct path (when ctx is still alive).
func timedOut(reqCtx context.Context, err error) bool {
	return reqCtx.Err() == context.DeadlineExceeded || (reqCtx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded))
}
