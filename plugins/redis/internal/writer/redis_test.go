package writer

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// envTestRedis names a real Redis server (host:port) for the tests that
// need one; test/services/start.sh starts one.
const envTestRedis = "HOOKBRIDGE_TEST_REDIS"

// realRedis returns a client of the test server and a key prefix unique to
// the test, whose keys are deleted when the test ends; it skips the test
// without a server.
func realRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv(envTestRedis)
	if addr == "" {
		e2eSkipf(t, "%s is not set: no Redis server to test against (bash test/services/start.sh starts one)", envTestRedis)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("%s=%s: %v", envTestRedis, addr, err)
	}
	prefix := fmt.Sprintf("hookbridge-test:%s:%d:", t.Name(), rand.Int64())
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		var keys []string
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		// Markers embed the key, so they start with the marker prefix.
		iter = c.Scan(ctx, 0, "hookbridge:dedupe:"+prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		_ = c.Close()
	})
	return c, prefix
}

// realHandler serves a Handler on the test server through sdktest.
func realHandler(t *testing.T, vars map[string]string) *sdktest.Server {
	t.Helper()
	m := map[string]string{EnvURL: "redis://" + os.Getenv(envTestRedis) + "/0"}
	for k, v := range vars {
		m[k] = v
	}
	cfg, err := ConfigFromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	h := New(cfg, nil)
	t.Cleanup(func() { _ = h.Close() })
	return sdktest.NewServer(t, h)
}

func TestRedisStream(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvKey: prefix + "{topic}"})
	msg := &sdk.Message{Topic: "orders", Partition: 1, Offset: 10, Key: []byte("k"), Value: []byte(`{"a":1}`),
		Timestamp: time.UnixMilli(1700000000000), Headers: []sdk.Header{{Key: "h", Value: []byte("v")}}}
	for attempt := 1; attempt <= 3; attempt++ {
		msg.Attempt = attempt
		if _, err := srv.Handle(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := c.XRange(t.Context(), prefix+"orders", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d entries after 3 deliveries, want 1", len(entries))
	}
	want := map[string]any{"topic": "orders", "partition": "1", "offset": "10", "key": "k", "value": `{"a":1}`,
		"timestamp": "1700000000000", "headers": `[{"key":"h","value":"v"}]`}
	if fmt.Sprint(entries[0].Values) != fmt.Sprint(want) {
		t.Errorf("entry %v, want %v", entries[0].Values, want)
	}
	marker := "hookbridge:dedupe:" + prefix + "orders:orders-1-10"
	if id, err := c.Get(t.Context(), marker).Result(); err != nil || id != entries[0].ID {
		t.Errorf("marker = %q, %v; want the entry id %s", id, err, entries[0].ID)
	}
	if ttl := c.PTTL(t.Context(), marker).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("marker TTL %v, want (0, 24h]", ttl)
	}
}

func TestRedisStreamConcurrentRedeliveries(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvKey: prefix + "s"})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			// 20 records, each delivered 10 times at once.
			_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: int64(i % 20), Value: []byte("v")})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := c.XLen(t.Context(), prefix+"s").Val(); n != 20 {
		t.Errorf("XLEN = %d, want 20", n)
	}
}

func TestRedisStreamMaxLen(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvKey: prefix + "s", EnvMaxLen: "10"})
	for i := range 500 {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: int64(i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	// MAXLEN ~ trims whole macro nodes (100 entries by default): about 10.
	if n := c.XLen(t.Context(), prefix+"s").Val(); n >= 500 || n < 10 {
		t.Errorf("XLEN = %d, want trimmed to about 10", n)
	}
}

func TestRedisWrongTypeIsPermanentAndLeavesNoMarker(t *testing.T) {
	c, prefix := realRedis(t)
	// (SET and DEL take a key of any type: set mode never meets WRONGTYPE.)
	for _, mode := range []Mode{ModeStream, ModeList} {
		key := prefix + string(mode)
		c.Set(t.Context(), key, "a string", 0)
		srv := realHandler(t, map[string]string{EnvMode: string(mode), EnvKey: key})
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")})
		if !sdk.IsPermanent(err) {
			t.Errorf("%s on a string key: err = %v, want permanent (WRONGTYPE)", mode, err)
		}
		if n := c.Exists(t.Context(), "hookbridge:dedupe:"+key+":t-0-1").Val(); n != 0 {
			t.Errorf("%s: a failed write left its marker behind", mode)
		}
	}
}

// Redis closes the connection on an argument above proto-max-bulk-len
// while the client still writes: without the plugin's own check the record
// would fail as the network does, and be retried for ever.
func TestRedisValueAboveTheBulkLimitIsPermanent(t *testing.T) {
	c, prefix := realRedis(t)
	old := c.ConfigGet(t.Context(), "proto-max-bulk-len").Val()["proto-max-bulk-len"]
	if err := c.ConfigSet(t.Context(), "proto-max-bulk-len", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ConfigSet(context.WithoutCancel(t.Context()), "proto-max-bulk-len", old) })
	for _, mode := range []Mode{ModeStream, ModeList, ModeSet} {
		srv := realHandler(t, map[string]string{EnvMode: string(mode), EnvKey: prefix + string(mode)})
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: make([]byte, 1<<20+10)})
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "proto-max-bulk-len") {
			t.Errorf("%s: err = %v, want permanent", mode, err)
		}
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 2, Value: make([]byte, 1<<20)}); err != nil {
			t.Errorf("%s: 1 MiB: %v", mode, err)
		}
	}
}

func TestRedisList(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvMode: "list", EnvKey: prefix + "{key}"})
	for i := range 5 {
		for range 2 {
			if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: int64(i), Key: []byte("q"), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := c.LRange(t.Context(), prefix+"q", 0, -1).Val()
	if fmt.Sprint(got) != "[v4 v3 v2 v1 v0]" {
		t.Errorf("list = %v, want [v4 v3 v2 v1 v0]", got)
	}
}

func TestRedisSet(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvMode: "set", EnvKey: prefix + "{key}", EnvTTL: "1h"})
	doc, _ := json.Marshal(map[string]int{"n": 1})
	for range 2 {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Key: []byte("u1"), Value: doc}); err != nil {
			t.Fatal(err)
		}
	}
	if v := c.Get(t.Context(), prefix+"u1").Val(); v != string(doc) {
		t.Errorf("value %q", v)
	}
	if ttl := c.PTTL(t.Context(), prefix+"u1").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL %v, want (0, 1h]", ttl)
	}
	// A tombstone deletes the key, delivered once or twice.
	for range 2 {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Key: []byte("u1"), Value: nil}); err != nil {
			t.Fatal(err)
		}
		if n := c.Exists(t.Context(), prefix+"u1").Val(); n != 0 {
			t.Errorf("after a tombstone the key exists (%q)", c.Get(t.Context(), prefix+"u1").Val())
		}
	}
	// An empty value is an empty string, not a delete.
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Key: []byte("u2"), Value: []byte{}}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(t.Context(), prefix+"u2").Result(); err != nil || v != "" {
		t.Errorf("empty value: %q, %v; want \"\"", v, err)
	}
}

// A stream entry leaves the value out for a null value, as it leaves out a
// null key, and keeps "" for an empty one.
func TestRedisStreamNullAndEmptyValues(t *testing.T) {
	c, prefix := realRedis(t)
	srv := realHandler(t, map[string]string{EnvKey: prefix + "s"})
	for i, v := range [][]byte{nil, {}} {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: int64(i), Key: []byte("k"), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	entries := c.XRange(t.Context(), prefix+"s", "-", "+").Val()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	if v, ok := entries[0].Values["value"]; ok {
		t.Errorf("the tombstone's entry has a value %q", v)
	}
	if v, ok := entries[1].Values["value"]; !ok || v != "" {
		t.Errorf("the empty value's entry: value %q, %v; want \"\"", v, ok)
	}
}

// e2eSkipf skips a test whose server is not configured, except in the
// end-to-end tier (HOOKBRIDGE_E2E=1, set by test/e2e.sh), where a missing
// server is a failure: that tier must never pass by skipping.
func e2eSkipf(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("HOOKBRIDGE_E2E") == "1" {
		t.Fatalf("HOOKBRIDGE_E2E=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}
