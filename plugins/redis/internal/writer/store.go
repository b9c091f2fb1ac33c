package writer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// store is what the handler needs of Redis. Its methods are called
// concurrently. written is false when the record's marker existed: it was
// written before and nothing was done.
type store interface {
	// AddStream appends an entry with fields (name, value, name, value...)
	// to the stream key, trimmed to about maxLen entries when maxLen > 0,
	// unless marker exists; then sets marker, for markerTTL.
	AddStream(ctx context.Context, key, marker string, markerTTL time.Duration, maxLen int64, fields []any) (written bool, err error)
	// Push pushes value onto the head of the list key unless marker
	// exists; then sets marker, for markerTTL.
	Push(ctx context.Context, key, marker string, markerTTL time.Duration, value []byte) (written bool, err error)
	// Set sets key to value, expiring after ttl when ttl > 0.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete deletes key (DEL), of whatever type; a key that does not exist
	// is no error.
	Delete(ctx context.Context, key string) error
	// MaxBulkLen returns the server's proto-max-bulk-len: the largest
	// argument a command may have.
	MaxBulkLen(ctx context.Context) (int64, error)
	// Close releases the connections.
	Close() error
}

// The scripts run atomically in Redis: the marker is checked, the record
// written and the marker set as one step, so that a record is written once
// even when two deliveries of it race (a redelivery by a restarted bridge
// while the previous plugin process still finishes its call). The marker is
// set after the write, which fails without side effects on a key of the
// wrong type (WRONGTYPE): a failed write leaves no marker behind.
var (
	// KEYS[1] stream, KEYS[2] marker; ARGV[1] marker TTL in ms, ARGV[2]
	// MAXLEN (0: no trim), ARGV[3...] field, value pairs. Returns the new
	// entry's id, or nil when the marker existed.
	streamScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local args = {'XADD', KEYS[1]}
if tonumber(ARGV[2]) > 0 then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = '~'
  args[#args + 1] = ARGV[2]
end
args[#args + 1] = '*'
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
`)
	// KEYS[1] list, KEYS[2] marker; ARGV[1] marker TTL in ms, ARGV[2]
	// value. Returns the list's new length, or nil when the marker existed.
	listScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local n = redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n
`)
)

// redisStore is the store of a real server (or a replicated one behind one
// address). Redis Cluster is not supported: a record's key and its marker
// would have to share a hash slot.
type redisStore struct {
	c *redis.Client
}

var _ store = (*redisStore)(nil)

func newRedisStore(opts *redis.Options) *redisStore {
	o := *opts
	// The call's context (the plugin's timeout, the bridge shutting down)
	// bounds every command, on top of the read and write timeouts.
	o.ContextTimeoutEnabled = true
	return &redisStore{c: redis.NewClient(&o)}
}

func (s *redisStore) AddStream(ctx context.Context, key, marker string, markerTTL time.Duration, maxLen int64, fields []any) (bool, error) {
	args := make([]any, 0, 2+len(fields))
	args = append(args, markerTTL.Milliseconds(), maxLen)
	args = append(args, fields...)
	return ran(streamScript.Run(ctx, s.c, []string{key, marker}, args...).Err())
}

func (s *redisStore) Push(ctx context.Context, key, marker string, markerTTL time.Duration, value []byte) (bool, error) {
	return ran(listScript.Run(ctx, s.c, []string{key, marker}, markerTTL.Milliseconds(), value).Err())
}

func (s *redisStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.c.Set(ctx, key, value, ttl).Err()
}

func (s *redisStore) Delete(ctx context.Context, key string) error {
	return s.c.Del(ctx, key).Err()
}

func (s *redisStore) MaxBulkLen(ctx context.Context) (int64, error) {
	v, err := s.c.ConfigGet(ctx, "proto-max-bulk-len").Result()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v["proto-max-bulk-len"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET proto-max-bulk-len: %q: %w", v["proto-max-bulk-len"], err)
	}
	return n, nil
}

func (s *redisStore) Close() error { return s.c.Close() }

// ran maps a script's nil reply (the marker existed) to written == false.
func ran(err error) (bool, error) {
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
