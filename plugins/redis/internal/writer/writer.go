package writer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/hookbridge/hookbridge/plugins/internal/recordjson"
	"github.com/hookbridge/hookbridge/sdk"
)

// Handler writes records to Redis. It is an sdk.Handler: Handle is safe for
// concurrent use. Close it when Serve returned.
type Handler struct {
	cfg   Config
	store store
	log   *slog.Logger
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
// acknowledged without a write (stream and list modes; SET is idempotent).
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
	written := true
	switch h.cfg.Mode {
	case ModeStream:
		written, err = h.store.AddStream(ctx, key, h.marker(key, msg), h.cfg.DedupeTTL, h.cfg.MaxLen, streamFields(msg))
	case ModeList:
		written, err = h.store.Push(ctx, key, h.marker(key, msg), h.cfg.DedupeTTL, msg.Value)
	case ModeSet:
		err = h.store.Set(ctx, key, msg.Value, h.cfg.TTL)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("hookbridge-redis: %s: %s %q: %w", msg.ID, h.cfg.Mode, key, err))
	}
	if !written {
		h.log.DebugContext(ctx, "already written, skipped", "id", msg.ID, "key", key, "attempt", msg.Attempt)
	}
	return nil, nil
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
// recordjson.Headers; absent when there are none). A null value arrives as an empty
// one (the plugin protocol does not tell them apart) and is written as "".
func streamFields(msg *sdk.Message) []any {
	f := make([]any, 0, 14)
	f = append(f,
		"topic", msg.Topic,
		"partition", strconv.FormatInt(int64(msg.Partition), 10),
		"offset", strconv.FormatInt(msg.Offset, 10))
	if msg.Key != nil {
		f = append(f, "key", msg.Key)
	}
	f = append(f, "value", msg.Value)
	if !msg.Timestamp.IsZero() {
		f = append(f, "timestamp", strconv.FormatInt(msg.Timestamp.UnixMilli(), 10))
	}
	if len(msg.Headers) > 0 {
		f = append(f, "headers", recordjson.Headers(msg.Headers, false))
	}
	return f
}
