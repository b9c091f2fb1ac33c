package sdk

import (
	"context"
	"time"
)

// Handler handles the records of one plugin. Handle is called concurrently
// from many goroutines, once per delivery attempt of a record; it must
// return promptly when ctx is done (the plugin's timeout passed, or the
// bridge is shutting down). A record may be delivered more than once (a
// retry, a restart of the bridge): Message.ID is the key to deduplicate on.
type Handler interface {
	Handle(ctx context.Context, msg *Message) (*Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg *Message) (*Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msg *Message) (*Result, error) { return f(ctx, msg) }

var _ Handler = HandlerFunc(nil)

// Header is one Kafka record header. Keys may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Message is one Kafka record and the delivery attempt that carries it. A
// handler must not keep it, or the slices it refers to, after Handle
// returned.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	// Key is nil for a null key, and empty (not nil) for an empty key.
	Key []byte
	// Value is nil for a null value (a tombstone: on a compacted topic,
	// the delete of its key), and empty (not nil) for an empty value.
	Value   []byte
	Headers []Header
	// Timestamp is the record's timestamp; zero when the record had none.
	Timestamp time.Time

	// Route is the name of the Hookbridge route delivering the record.
	Route string
	// Attempt counts the delivery attempts of this record, starting at 1.
	Attempt int
	// ID is the record's stable identity, "<topic>-<partition>-<offset>",
	// the same on every attempt: the idempotency key.
	ID string
}

// Header returns the value of the last header named key, and whether one
// was found.
func (m *Message) Header(key string) ([]byte, bool) {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return m.Headers[i].Value, true
		}
	}
	return nil, false
}

// Result is what a successful Handle returns. A nil *Result is an empty one.
type Result struct {
	// Outputs are records for the bridge to produce, in order, after the
	// record was handled: to the route's reply topic, or to Output.Topic.
	// They are dropped when neither is set.
	Outputs []Output
}

// Output is a record the bridge produces on the handler's behalf.
type Output struct {
	// Topic to produce to; "" means the route's reply topic.
	Topic string
	// Key of the new record; nil means the original record's key.
	Key []byte
	// Value of the new record: nil produces a null value (a tombstone),
	// empty (not nil) an empty value.
	Value   []byte
	Headers []Header
}
