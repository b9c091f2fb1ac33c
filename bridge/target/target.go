// Package target defines the port every delivery target implements: the
// record handed to it, the result it returns and the error classes that
// decide what the dispatch chain does next.
package target

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unsafe"
)

// Header is one Kafka record header. Keys may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Kafka record as the bridge sees it. Key is nil for a null key.
// A Record is never modified after it was consumed; targets must not change it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
	// Read is when the bridge read the record from Kafka (zero when not
	// known): retry.max_age, the longest a record may wait in the bridge,
	// counts from it, so that the time it waited behind the records before
	// it (its lane's, during an outage) counts too.
	Read time.Time
}

// ID is the record's stable identity, "<topic>-<partition>-<offset>". It is the
// webhook-id and the idempotency key a receiver dedupes on.
func (r *Record) ID() string {
	return r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10)
}

// Header returns the value of the last header named key, and whether one was found.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// Size is the number of bytes the record holds in memory, roughly.
func (r *Record) Size() int {
	n := len(r.Key) + len(r.Value) + len(r.Topic) + 64
	for _, h := range r.Headers {
		// The header's bytes as fetched, the copy of its name, and the
		// Header itself: a record of thousands of empty headers holds
		// tens of bytes for each, which the route's max_in_flight_bytes
		// must count (a producer may send a megabyte of them).
		n += 2*len(h.Key) + len(h.Value) + headerOverhead
	}
	return n
}

// headerOverhead is what one header of a Record holds besides its bytes: the
// Header (a string and a slice) and the lengths of its name and value in the
// fetched buffer.
const headerOverhead = int(unsafe.Sizeof(Header{})) + 2

// Delivery is one attempt to hand a record to a target.
type Delivery struct {
	Route   string
	Record  *Record
	Attempt int // starts at 1
}

// Output is a record a target asks the bridge to produce to the route's reply
// topic (or to Topic when set). A nil Key means "the original record's key".
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}

// Result is what a successful delivery returns.
type Result struct {
	Outputs []Output
	// Shared says that the record reached its target in one request with
	// other records (a webhook batch), and that another record of that
	// request reports the request's outcome to the target's circuit breaker,
	// which counts requests, not records. Shared(err) marks a failure so.
	Shared bool
	// Attempt is the attempt that delivered the record: the retry layer
	// sets it on a result with outputs (for dispatch.Reply), which a target
	// therefore makes afresh for each delivery.
	Attempt int
	// Attempts is how many of the record's attempts counted against its
	// max_attempts, the one that delivered it included (a failed half-open
	// probe does not count); set with Attempt.
	Attempts int
}

// Target delivers one record. Deliver is called concurrently from many
// goroutines; it must return promptly once ctx is done. A nil error means the
// record was delivered. Errors are classified with the helpers in errors.go: a
// plain error is retryable.
type Target interface {
	Deliver(ctx context.Context, d *Delivery) (*Result, error)
}

// Closer is implemented by targets that hold resources. Close is called once,
// after the last Deliver returned, and must return by the time ctx is done.
type Closer interface {
	Close(ctx context.Context) error
}

// Healther is implemented by targets that can tell they cannot work at all
// (a plugin whose process does not start): Health returns why, or nil. It
// must be cheap; /readyz asks it.
type Healther interface {
	Health() error
}

// Func adapts a function to Target.
type Func func(ctx context.Context, d *Delivery) (*Result, error)

// Deliver calls f.
func (f Func) Deliver(ctx context.Context, d *Delivery) (*Result, error) { return f(ctx, d) }

var _ Target = Func(nil)

// Layer wraps a target with one concern of the dispatch chain.
type Layer func(Target) Target

// Chain applies layers so that the first one is the outermost.
func Chain(t Target, layers ...Layer) Target {
	for i := len(layers) - 1; i >= 0; i-- {
		t = layers[i](t)
	}
	return t
}

// String renders a record's coordinates for logs and errors.
func (r *Record) String() string {
	return fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
}
