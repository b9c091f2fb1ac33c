package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/plugins/internal/recordjson"
	"github.com/hookbridge/hookbridge/sdk"
)

// Handler writes records to Redis. It is an sdk.Handler: Handle is safe for
// concurrent use. Close it when Serve returned.
type Handler struct {
	cfg   Config
	store store
	log   *slog.Logger

	bulkLimit atomic.Int64 // the server's proto-max-bulk-len as last read; 0: to be read (see tooLarge)
}

var _ sdk.Handler = (*Handler)(nil)

// New returns a Handler for cfg, which must come from ConfigFromEnv. It
// does not connect: connections are made by the first calls, and a server
// that is down fails them as retryable errors.
func New(cfg Config, log *slog.Logger) *Handler {
	return newHandler(cfg, newRedisStore(cfg.options), log)
}

func newHandler(cfg Config, s store, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, store: s, log: log}
}

// Close closes the connections to Redis.
func (h *Handler) Close() error { return h.store.Close() }

// Handle writes msg. A redelivered record that was written before is
// acknowledged without a write (stream and list modes; SET and DEL are
// idempotent). In set mode a null value (a tombstone) deletes the key.
// Errors are retryable, except those Permanent names and a null key for a
// template that uses {key}, which are sdk.Permanent.
func (h *Handler) Handle(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
	key, err := h.cfg.Key.Render(msg)
	if err != nil {
		return nil, sdk.Permanent(fmt.Errorf("hookbridge-redis: %s: %s=%q: %w", msg.ID, EnvKey, h.cfg.Key, err))
	}
	if strings.HasPrefix(key, h.cfg.DedupePrefix) {
		// The dedupe markers live in the same keyspace: a record written
		// there could pose as another record's marker, which would then be
		// acknowledged without being written.
		return nil, sdk.Permanent(fmt.Errorf("hookbridge-redis: %s: the key rendered from %s=%q starts with %s %q, "+
			"where the dedupe markers are kept", msg.ID, EnvKey, h.cfg.Key, EnvDedupePrefix, h.cfg.DedupePrefix))
	}
	var fields []any
	if h.cfg.Mode == ModeStream {
		fields = streamFields(msg)
	}
	largest := h.largestArgument(key, msg, fields)
	if err := h.tooLarge(ctx, largest); err != nil {
		return nil, sdk.Permanent(fmt.Errorf("hookbridge-redis: %s: %s %q: %w", msg.ID, h.cfg.Mode, key, err))
	}
	written := true
	switch h.cfg.Mode {
	case ModeStream:
		written, err = h.store.AddStream(ctx, key, h.marker(key, msg), h.cfg.DedupeTTL, h.cfg.MaxLen, fields)
	case ModeList:
		written, err = h.store.Push(ctx, key, h.marker(key, msg), h.cfg.DedupeTTL, msg.Value)
	case ModeSet:
		if msg.Value == nil {
			// A tombstone: the record's key was deleted. DEL is as
			// idempotent as SET, and a key that is gone already is no error.
			err = h.store.Delete(ctx, key)
			break
		}
		err = h.store.Set(ctx, key, msg.Value, h.cfg.TTL)
	}
	if err != nil {
		if largest > minBulkLimit {
			// The server's limit may have been lowered since it was read:
			// read it again before the next large write.
			h.bulkLimit.Store(0)
		}
		return nil, classify(fmt.Errorf("hookbridge-redis: %s: %s %q: %w", msg.ID, h.cfg.Mode, key, err))
	}
	if !written {
		h.log.DebugContext(ctx, "already written, skipped", "record", msg.ID, "key", key, "attempt", msg.Attempt)
	}
	return nil, nil
}

// largestArgument is the length of the largest argument the write of msg to
// key sends: the key, the value or another stream field, the marker.
func (h *Handler) largestArgument(key string, msg *sdk.Message, fields []any) int {
	n := max(len(key), len(msg.Value))
	for _, f := range fields {
		switch v := f.(type) {
		case []byte:
			n = max(n, len(v))
		case string:
			n = max(n, len(v))
		}
	}
	if h.cfg.Mode != ModeSet {
		n = max(n, len(h.cfg.DedupePrefix)+len(key)+1+len(msg.ID)) // the marker
	}
	return n
}

// minBulkLimit is the lowest proto-max-bulk-len Redis accepts (1mb):
// arguments up to it are never refused for their size.
const minBulkLimit = 1 << 20

// defaultBulkLimit is Redis's default proto-max-bulk-len (512mb), assumed
// when the server refuses CONFIG GET (managed services often do).
const defaultBulkLimit = 512 << 20

// tooLarge fails a write whose largest argument is n bytes when that is
// more than the server's proto-max-bulk-len. Redis refuses such an argument
// as it reads the command's length header and closes the connection while
// the client still writes, so the client sees a reset connection, which
// cannot be told from a network failure: without this check the record
// would be retried for ever. Arguments up to 1 MiB, the lowest limit Redis
// allows, are not checked. A larger one is checked against the limit last
// read (CONFIG GET), and refused only after the limit was read again, so
// that a raised limit never refuses a record; the limit is also read again
// after a large write failed, in case it was lowered. A limit that cannot be
// read for now (no connection) refuses nothing: the write then fails as the
// network does.
func (h *Handler) tooLarge(ctx context.Context, n int) error {
	if n <= minBulkLimit || int64(n) <= h.bulkLimit.Load() {
		return nil
	}
	v, err := h.store.MaxBulkLen(ctx)
	var rerr redis.Error
	switch {
	case err == nil && v > 0:
	case errors.As(err, &rerr):
		v = defaultBulkLimit // CONFIG refused
	default:
		return nil
	}
	h.bulkLimit.Store(v)
	if int64(n) > v {
		return fmt.Errorf("an argument of %d bytes is larger than the server's proto-max-bulk-len, %d", n, v)
	}
	return nil
}

// marker returns the dedupe marker of msg written to key. It names the key
// as well as the record, so that two plugins (or routes) writing one topic
// to different keys do not take each other's writes for redeliveries.
func (h *Handler) marker(key string, msg *sdk.Message) string {
	return h.cfg.DedupePrefix + key + ":" + msg.ID
}

// streamFields returns a stream entry's fields for msg, in this order:
// topic, partition, offset, key (absent for a null key), value, timestamp
// (Unix milliseconds; absent when the record has none), headers (JSON, see
// recordjson.Headers; absent when there are none). Like the key, the value
// is absent when it is null (a tombstone) and "" when it is empty.
func streamFields(msg *sdk.Message) []any {
	f := make([]any, 0, 14)
	f = append(f,
		"topic", msg.Topic,
		"partition", strconv.FormatInt(int64(msg.Partition), 10),
		"offset", strconv.FormatInt(msg.Offset, 10))
	if msg.Key != nil {
		f = append(f, "key", msg.Key)
	}
	if msg.Value != nil {
		f = append(f, "value", msg.Value)
	}
	if !msg.Timestamp.IsZero() {
		f = append(f, "timestamp", strconv.FormatInt(msg.Timestamp.UnixMilli(), 10))
	}
	if len(msg.Headers) > 0 {
		f = append(f, "headers", recordjson.Headers(msg.Headers, false))
	}
	return f
}
