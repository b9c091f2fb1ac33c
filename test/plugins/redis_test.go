package plugins

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// redisStream is a stream the hookbridge-redis plugin writes.
type redisStream struct {
	c   *redis.Client
	key string
}

func (s *redisStream) written(t *testing.T) []written {
	t.Helper()
	entries, err := s.c.XRange(t.Context(), s.key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]written, len(entries))
	for i, e := range entries {
		p, _ := strconv.ParseInt(e.Values["partition"].(string), 10, 32)
		o, _ := strconv.ParseInt(e.Values["offset"].(string), 10, 64)
		out[i] = written{Partition: int32(p), Offset: o}
		v, _ := e.Values["value"].(string)
		if err := json.Unmarshal([]byte(v), &out[i].Rec); err != nil {
			t.Fatalf("entry %s: value %q: %v", e.ID, v, err)
		}
		if k, _ := e.Values["key"].(string); k != out[i].Rec.Key {
			t.Fatalf("entry %s: key field %q, value says %q", e.ID, k, out[i].Rec.Key)
		}
	}
	return out
}

// block pauses every client's writes (CLIENT PAUSE ... WRITE, which holds
// EVALSHA too), with a bound in case the test dies before releasing them.
func (s *redisStream) block(t *testing.T) func() {
	t.Helper()
	if err := s.c.Do(t.Context(), "CLIENT", "PAUSE", 120000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := s.c.Do(context.WithoutCancel(t.Context()), "CLIENT", "UNPAUSE").Err(); err != nil {
			t.Errorf("CLIENT UNPAUSE: %v", err)
		}
	}
}

// blocked reports a client held by the pause (the test's reads are not).
func (s *redisStream) blocked(t *testing.T) bool {
	t.Helper()
	info, err := s.c.InfoMap(t.Context(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(info["Clients"]["blocked_clients"])
	return n > 0
}

// kill -9 in the middle of a stream: every record ends up in the Redis
// stream exactly once (XLEN == N, each offset once), each key's records in
// the order they were produced.
func TestRedisStreamExactlyOnceAcrossKill9(t *testing.T) {
	addr := need(t, envRedis)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("%s=%s: %v", envRedis, addr, err)
	}
	const prefix = "hookbridge-test:"
	stream := &redisStream{c: c}
	s := scenario{plugin: redisBin, n: 2000, keys: 50, prepare: func(t *testing.T, topic string) (map[string]string, sink) {
		stream.key = prefix + topic // the topic's name is unique to the run: so is the stream's
		t.Cleanup(func() {
			ctx := context.WithoutCancel(t.Context())
			c.Del(ctx, stream.key)
			iter := c.Scan(ctx, 0, "hookbridge:dedupe:"+stream.key+":*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		})
		return map[string]string{
			"REDIS_URL":  "redis://" + addr + "/0",
			"REDIS_MODE": "stream",
			"REDIS_KEY":  prefix + "{topic}",
		}, stream
	}}

	res := s.run(t)
	if n := c.XLen(t.Context(), stream.key).Val(); n != int64(s.n) {
		t.Errorf("XLEN %s = %d, want %d", stream.key, n, s.n)
	}
	checkExactlyOnce(t, stream.written(t), res.produced)
	t.Logf("kill -9 with writes in flight: %d records were written before the restart and delivered again; every record is in the stream once", res.redelivered)
}
