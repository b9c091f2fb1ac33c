package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tally counts the distinct records of one scenario and notes when the first
// and the last one arrived. It is safe for concurrent use.
type tally struct {
	n        int
	seen     []atomic.Uint64 // bit i: record i arrived
	unique   atomic.Int64
	dups     atomic.Int64
	invalid  atomic.Int64
	firstAt  atomic.Int64 // unix nanoseconds; 0 until the first record
	lastAt   time.Time    // written before done is closed
	done     chan struct{}
	requests atomic.Int64
	traced   atomic.Int64 // requests with a traceparent header
}

func newTally(n int) *tally {
	return &tally{n: n, seen: make([]atomic.Uint64, (n+63)/64), done: make(chan struct{})}
}

// add counts the record whose value is v.
func (t *tally) add(v []byte) {
	i, err := indexOf(v)
	if err != nil || i >= t.n {
		t.invalid.Add(1)
		return
	}
	bit := uint64(1) << (i % 64)
	if t.seen[i/64].Or(bit)&bit != 0 {
		t.dups.Add(1)
		return
	}
	if t.firstAt.Load() == 0 {
		t.firstAt.CompareAndSwap(0, time.Now().UnixNano())
	}
	if t.unique.Add(1) == int64(t.n) {
		t.lastAt = time.Now()
		close(t.done)
	}
}

// fill sets the counting fields of r from t; start is the scenario's start.
func (t *tally) fill(r *Result, start time.Time) {
	r.Elapsed = t.lastAt.Sub(start)
	if f := t.firstAt.Load(); f != 0 {
		r.FirstRecord = time.Unix(0, f).Sub(start)
	}
	r.Delivered = int(t.unique.Load())
	r.Duplicates = int(t.dups.Load())
	r.Invalid = int(t.invalid.Load())
	r.Requests = int(t.requests.Load())
	r.Traced = int(t.traced.Load())
}

// setDelivered counts records that someone else counted: the bridge's
// hookbridge_records_delivered_total, read at time now, for the scenarios
// whose target is not the receiver (p). Deliveries beyond the topic's records
// are duplicates. One goroutine calls it.
func (t *tally) setDelivered(n int64, now time.Time) {
	if n <= 0 {
		return
	}
	t.firstAt.CompareAndSwap(0, now.UnixNano())
	u := min(n, int64(t.n))
	t.dups.Store(n - u)
	if old := t.unique.Swap(u); old < u && u == int64(t.n) {
		t.lastAt = now
		close(t.done)
	}
}

// await waits until every record was counted. It fails when ctx ends, when
// exited is closed first (a process died), or when no new record was counted
// for stall.
func (t *tally) await(ctx context.Context, stall time.Duration, exited <-chan struct{}) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last, changed := int64(-1), time.Now()
	for {
		select {
		case <-t.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("interrupted at %d of %d records: %w", t.unique.Load(), t.n, ctx.Err())
		case <-exited:
			select {
			case <-t.done:
				return nil
			default:
			}
			return fmt.Errorf("process exited after %d of %d records", t.unique.Load(), t.n)
		case now := <-tick.C:
			if u := t.unique.Load(); u != last {
				last, changed = u, now
			} else if now.Sub(changed) > stall {
				return fmt.Errorf("stalled at %d of %d records for %s (%d requests, %d invalid)",
					u, t.n, stall, t.requests.Load(), t.invalid.Load())
			}
		}
	}
}

// receiver is the one webhook endpoint of the run: it counts every request's
// record into the current tally and answers 200 with an empty body. A batch
// request (Content-Type application/cloudevents-batch+json) is counted record
// by record and answered 200 {"failed":[]}.
type receiver struct {
	ln   net.Listener
	srv  *http.Server
	url  string
	size int
	cur  atomic.Pointer[tally]
	done chan struct{}
	bufs sync.Pool // *bytes.Buffer for batch bodies
}

func startReceiver(size int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: receiver: %w", err)
	}
	r := &receiver{ln: ln, url: "http://" + ln.Addr().String() + "/hook", size: size, done: make(chan struct{})}
	r.bufs.New = func() any { return new(bytes.Buffer) }
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

// count makes t the tally requests are counted into from now on.
func (r *receiver) count(t *tally) { r.cur.Store(t) }

// batchContentType is what the bridge's batch mode sends.
const batchContentType = "application/cloudevents-batch+json"

var batchAnswer = []byte(`{"failed":[]}`)

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Content-Type") == batchContentType {
		r.serveBatch(w, req)
		return
	}
	var head [indexDigits]byte
	n, _ := io.ReadFull(req.Body, head[:])
	rest, _ := io.Copy(io.Discard, req.Body)
	if t := r.cur.Load(); t != nil {
		t.requests.Add(1)
		if req.Header.Get("Traceparent") != "" {
			t.traced.Add(1)
		}
		if n+int(rest) == r.size {
			t.add(head[:n])
		} else {
			t.invalid.Add(1)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// serveBatch counts the records of a batch body: a JSON array of structured
// CloudEvents whose data_base64 is the record value (the bench records have no
// content-type, so the bridge base64-encodes them). It finds every
// "data_base64" member without decoding the JSON, decodes the first 16 base64
// characters (12 bytes, enough for the record's index) and checks the encoded
// length; a batch whose hookbridge-batch-size header does not match the
// records found counts as invalid.
func (r *receiver) serveBatch(w http.ResponseWriter, req *http.Request) {
	buf := r.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(req.Body)
	if t := r.cur.Load(); t != nil {
		t.requests.Add(1)
		found := countBatch(buf.Bytes(), base64.StdEncoding.EncodedLen(r.size), t)
		if want, err := strconv.Atoi(req.Header.Get("hookbridge-batch-size")); err != nil || want != found {
			t.invalid.Add(1)
		}
	}
	if buf.Cap() <= 4<<20 {
		r.bufs.Put(buf)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(batchAnswer)
}

var dataBase64 = []byte(`"data_base64":"`)

// countBatch adds every record of a batch body to t and returns how many it
// found; a member of the wrong length or not one of the records is invalid.
func countBatch(body []byte, encodedLen int, t *tally) int {
	found := 0
	for {
		i := bytes.Index(body, dataBase64)
		if i < 0 {
			return found
		}
		body = body[i+len(dataBase64):]
		end := bytes.IndexByte(body, '"')
		if end < 0 {
			t.invalid.Add(1)
			return found
		}
		found++
		var head [12]byte
		if end != encodedLen || end < 16 {
			t.invalid.Add(1)
		} else if n, err := base64.StdEncoding.Decode(head[:], body[:16]); err != nil || n != 12 {
			t.invalid.Add(1)
		} else {
			t.add(head[:indexDigits])
		}
		body = body[end:]
	}
}

// close stops the receiver; every scenario is over, so open connections are
// closed at once.
func (r *receiver) close() error {
	err := r.srv.Close()
	<-r.done
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bench: receiver: %w", err)
	}
	return nil
}
