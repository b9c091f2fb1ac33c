package webhook

import (
	"bufio"
	"context"
	"errors"
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
// *http.Request (whose construction parses the URL again) and no header map:
// the request line is built once per target, the fields are written straight
// into a pooled buffer (lineSink), and the request timeout is a deadline on
// the connection instead of a context with a timer of its own.
func (t *Target) deliverDirect(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	m := directMessages.Get().(*directMessage)
	defer m.release()
	rec := d.Record
	ts := t.timeNow().Unix()
	h := &m.head
	h.buf = append(h.buf, t.head...)
	h.buf = append(h.buf, "Content-Length: "...)
	h.buf = strconv.AppendInt(h.buf, int64(len(rec.Value)), 10)
	h.buf = append(h.buf, "\r\n"...)
	t.header(ctx, h, rec, d.Attempt, ts)

	span, traced := t.spans.start(ctx, h, d.Attempt)
	if h.err != nil {
		if traced {
			failed(span, h.err)
		}
		return nil, t.failure(ctx, ctx, 0, h.err)
	}
	h.buf = append(h.buf, "\r\n"...)
	m.value = rec.Value
	// The request's time starts once it is ready to go: building the header
	// of a record with thousands of headers is the bridge's time, not the
	// receiver's.
	now := time.Now()
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

// directMessage is the request of one record on the direct path: the
// request line and header, then the body.
type directMessage struct {
	head   lineSink
	value  []byte
	joined bool // value appended to head.buf (flat)
}

var directMessages = sync.Pool{New: func() any {
	return &directMessage{head: lineSink{buf: make([]byte, 0, 1024)}}
}}

// release empties m and puts it back in the pool; a pooled message holds no
// record.
func (m *directMessage) release() {
	if cap(m.head.buf) > 64<<10 {
		return // a record with huge headers: do not keep its buffer
	}
	m.head.reset()
	m.value = nil
	m.joined = false
	directMessages.Put(m)
}

func (m *directMessage) writeTo(bw *bufio.Writer) error {
	if m.joined {
		_, _ = bw.Write(m.head.buf)
		return bw.Flush()
	}
	_, _ = bw.Write(m.head.buf)
	_, _ = bw.Write(m.value)
	return bw.Flush()
}

// maxFlat is the largest value flat copies behind the header.
const maxFlat = 16 << 10

// flat gives the whole request in one piece when the value is small: the
// header with the value copied behind it. A large value is written from
// where it is.
func (m *directMessage) flat() []byte {
	if !m.joined {
		if len(m.value) > maxFlat {
			return nil
		}
		m.head.buf = append(m.head.buf, m.value...)
		m.joined = true
	}
	return m.head.buf
}

func (m *directMessage) rewind() error { return nil } // bytes: written again as they are
func (m *directMessage) abandon()      {}
func (m *directMessage) closes() bool  { return false }

// fullHeader is false: Target.response reads Content-Type and Retry-After
// of an answer, and nothing else.
func (m *directMessage) fullHeader() bool { return false }

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
