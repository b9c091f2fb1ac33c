package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// serverError is a reply error as go-redis returns it (any type with a
// RedisError method is one).
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

var _ redis.Error = serverError("")

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serverError("WRONGTYPE Operation against a key holding the wrong kind of value"), true},
		{serverError("WRONGTYPE Operation against a key holding the wrong kind of value script: 5e2c, on @user_script:11."), true},
		{serverError("ERR Error running script (call to f_5e2c): @user_script:11: WRONGTYPE Operation against a key"), true},
		{fmt.Errorf("hookbridge-redis: x: %w", serverError("WRONGTYPE Operation against a key")), true},
		{serverError("ERR string exceeds maximum allowed size (proto-max-bulk-len)"), true},
		{serverError("ERR Protocol error: invalid bulk length"), true},
		// The server's state, not the record's: retryable.
		{serverError("LOADING Redis is loading the dataset in memory"), false},
		{serverError("READONLY You can't write against a read only replica."), false},
		{serverError("OOM command not allowed when used memory > 'maxmemory'."), false},
		{serverError("BUSY Redis is busy running a script."), false},
		{serverError("NOAUTH Authentication required."), false},
		{serverError("WRONGPASS invalid username-password pair or user is disabled."), false},
		{serverError("NOPERM this user has no permissions to run the 'evalsha' command"), false},
		{serverError("MASTERDOWN Link with MASTER is down"), false},
		{serverError("ERR max number of clients reached"), false},
		// Transport: retryable.
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{io.EOF, false},
		{redis.ErrPoolTimeout, false},
		{redis.ErrClosed, false},
		{context.DeadlineExceeded, false},
		{errors.New("WRONGTYPE in a plain error is not a reply"), false},
		{redis.Nil, false},
		{nil, false},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if tc.err != nil && sdk.IsPermanent(classify(tc.err)) != tc.want {
			t.Errorf("classify(%v) permanent = %v, want %v", tc.err, !tc.want, tc.want)
		}
	}
}

// fakeStore is a store in memory with the scripts' semantics: a marker is
// checked, the write done, and the marker set, under one lock.
type fakeStore struct {
	mu      sync.Mutex
	streams map[string][][]any
	lists   map[string][][]byte
	strings map[string][]byte
	ttls    map[string]time.Duration
	markers map[string]time.Duration
	maxLens []int64
	err     error // returned by every call when set
	closed  bool

	bulkLimit    int64 // MaxBulkLen's answer
	bulkLimitErr error // MaxBulkLen's error
	bulkReads    int   // MaxBulkLen calls
}

func newFakeStore() *fakeStore {
	return &fakeStore{streams: map[string][][]any{}, lists: map[string][][]byte{}, strings: map[string][]byte{},
		ttls: map[string]time.Duration{}, markers: map[string]time.Duration{}}
}

func (f *fakeStore) AddStream(_ context.Context, key, marker string, ttl time.Duration, maxLen int64, fields []any) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	if _, ok := f.markers[marker]; ok {
		return false, nil
	}
	f.streams[key] = append(f.streams[key], fields)
	f.maxLens = append(f.maxLens, maxLen)
	f.markers[marker] = ttl
	return true, nil
}

func (f *fakeStore) Push(_ context.Context, key, marker string, ttl time.Duration, value []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false, f.err
	}
	if _, ok := f.markers[marker]; ok {
		return false, nil
	}
	f.lists[key] = append([][]byte{value}, f.lists[key]...)
	f.markers[marker] = ttl
	return true, nil
}

func (f *fakeStore) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.strings[key] = value
	f.ttls[key] = ttl
	return nil
}

func (f *fakeStore) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.strings, key)
	delete(f.ttls, key)
	return nil
}

func (f *fakeStore) MaxBulkLen(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bulkReads++
	return f.bulkLimit, f.bulkLimitErr
}

func (f *fakeStore) Close() error { f.closed = true; return nil }

// newTestHandler serves a Handler over a fake store through sdktest.
func newTestHandler(t *testing.T, vars map[string]string) (*sdktest.Server, *fakeStore) {
	t.Helper()
	m := map[string]string{EnvURL: "redis://127.0.0.1:1"}
	for k, v := range vars {
		m[k] = v
	}
	cfg, err := ConfigFromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeStore()
	return sdktest.NewServer(t, newHandler(cfg, fs, nil), sdktest.WithRoute("to-redis")), fs
}

func TestStreamMode(t *testing.T) {
	srv, fs := newTestHandler(t, map[string]string{EnvKey: "events:{topic}", EnvMaxLen: "500"})
	ts := time.UnixMilli(1700000000123)
	msg := &sdk.Message{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k1"), Value: []byte(`{"n":1}`), Timestamp: ts,
		Headers: []sdk.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "bin", Value: []byte{0xff, 0x01}}, {Key: "empty"}}}
	if _, err := srv.Handle(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	entries := fs.streams["events:orders"]
	if len(entries) != 1 {
		t.Fatalf("stream entries = %d, want 1", len(entries))
	}
	got := fmt.Sprint(entries[0])
	want := fmt.Sprint([]any{"topic", "orders", "partition", "2", "offset", "41", "key", []byte("k1"), "value", []byte(`{"n":1}`),
		"timestamp", "1700000000123", "headers", `[{"key":"content-type","value":"application/json"},{"key":"bin","value_base64":"/wE="},{"key":"empty"}]`})
	if got != want {
		t.Errorf("fields\n got %s\nwant %s", got, want)
	}
	if ttl, ok := fs.markers["hookbridge:dedupe:events:orders:orders-2-41"]; !ok || ttl != 24*time.Hour {
		t.Errorf("markers = %v", fs.markers)
	}
	if fs.maxLens[0] != 500 {
		t.Errorf("maxlen = %d", fs.maxLens[0])
	}

	// A redelivery (attempt 2, or after a restart) writes nothing.
	msg.Attempt = 2
	if _, err := srv.Handle(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.streams["events:orders"]); n != 1 {
		t.Errorf("after redelivery: %d entries, want 1", n)
	}
}

func TestStreamFieldsOmitNullKeyAndValue(t *testing.T) {
	got := fmt.Sprint(streamFields(&sdk.Message{Topic: "t", Partition: 0, Offset: 7}))
	if want := fmt.Sprint([]any{"topic", "t", "partition", "0", "offset", "7"}); got != want {
		t.Errorf("null key and value: %s, want %s", got, want)
	}
	got = fmt.Sprint(streamFields(&sdk.Message{Topic: "t", Key: []byte{}, Value: []byte{}}))
	if want := fmt.Sprint([]any{"topic", "t", "partition", "0", "offset", "0", "key", []byte{}, "value", []byte{}}); got != want {
		t.Errorf("empty key and value: %s, want %s", got, want)
	}
}

func TestMarkerNamesTheKey(t *testing.T) {
	// Two plugins writing one topic to two streams must both write.
	a, fa := newTestHandler(t, map[string]string{EnvKey: "a:{topic}"})
	b, fb := newTestHandler(t, map[string]string{EnvKey: "b:{topic}"})
	msg := &sdk.Message{Topic: "orders", Offset: 1, Value: []byte("v")}
	for _, s := range []*sdktest.Server{a, b} {
		if _, err := s.Handle(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	for name, m := range map[string]map[string]time.Duration{"a": fa.markers, "b": fb.markers} {
		if _, ok := m["hookbridge:dedupe:"+name+":orders:orders-0-1"]; !ok {
			t.Errorf("%s markers: %v", name, m)
		}
	}
}

func TestListMode(t *testing.T) {
	srv, fs := newTestHandler(t, map[string]string{EnvMode: "list", EnvKey: "q:{key}", EnvDedupeTTL: "2h", EnvDedupePrefix: "d:"})
	for i := range 3 {
		msg := &sdk.Message{Topic: "jobs", Offset: int64(i), Key: []byte("w"), Value: []byte(fmt.Sprint("job", i))}
		for range 2 { // every record twice
			if _, err := srv.Handle(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := fmt.Sprintf("%s", fs.lists["q:w"]); got != "[job2 job1 job0]" {
		t.Errorf("list = %s, want [job2 job1 job0] (LPUSH: newest at the head)", got)
	}
	if ttl := fs.markers["d:q:w:jobs-0-2"]; ttl != 2*time.Hour {
		t.Errorf("markers = %v", fs.markers)
	}
}

func TestSetMode(t *testing.T) {
	srv, fs := newTestHandler(t, map[string]string{EnvMode: "set", EnvKey: "user:{key}", EnvTTL: "1h"})
	for _, v := range []string{"v1", "v2"} {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Key: []byte("7"), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if string(fs.strings["user:7"]) != "v2" || fs.ttls["user:7"] != time.Hour {
		t.Errorf("strings %q ttls %v", fs.strings, fs.ttls)
	}
	if len(fs.markers) != 0 {
		t.Errorf("set mode wrote markers: %v", fs.markers)
	}
	// An empty value is set; a null value (a tombstone) deletes the key,
	// and again when it is delivered again.
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Key: []byte("7"), Value: []byte{}}); err != nil {
		t.Fatal(err)
	}
	if v, ok := fs.strings["user:7"]; !ok || len(v) != 0 {
		t.Errorf("empty value: %q, %v; want an empty value set", v, ok)
	}
	for range 2 {
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Key: []byte("7"), Value: nil}); err != nil {
			t.Fatal(err)
		}
		if v, ok := fs.strings["user:7"]; ok {
			t.Errorf("null value: the key holds %q, want it deleted", v)
		}
	}
}

func TestNullKeyIsPermanent(t *testing.T) {
	srv, fs := newTestHandler(t, map[string]string{EnvMode: "set", EnvKey: "user:{key}"})
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Offset: 9, Value: []byte("v")})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "users-0-9") || !strings.Contains(err.Error(), "null key") {
		t.Fatalf("err = %v, want a permanent error naming the record and the null key", err)
	}
	if len(fs.strings) != 0 {
		t.Errorf("wrote %v", fs.strings)
	}
}

// A record whose key renders into the dedupe markers' keyspace is refused:
// written there, it could pose as another record's marker, and that record
// would be acknowledged without being written.
func TestKeyInTheMarkersKeyspaceIsPermanent(t *testing.T) {
	for _, mode := range []string{"stream", "list", "set"} {
		srv, fs := newTestHandler(t, map[string]string{EnvMode: mode, EnvKey: "{key}"})
		poser := &sdk.Message{Topic: "orders", Offset: 1, Key: []byte("hookbridge:dedupe:acct:orders-0-7"), Value: []byte("x")}
		_, err := srv.Handle(t.Context(), poser)
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "orders-0-1") || !strings.Contains(err.Error(), EnvDedupePrefix) {
			t.Fatalf("%s: err = %v, want a permanent error naming the record and %s", mode, err, EnvDedupePrefix)
		}
		if len(fs.streams)+len(fs.lists)+len(fs.strings)+len(fs.markers) != 0 {
			t.Errorf("%s: wrote something for the refused record", mode)
		}
		// The record it would have shadowed is written.
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Offset: 7, Key: []byte("acct"), Value: []byte("y")}); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		_, set := fs.strings["acct"]
		if written := len(fs.streams["acct"]) + len(fs.lists["acct"]); written != 1 && !(mode == "set" && set) {
			t.Errorf("%s: the record for key acct was not written", mode)
		}
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	for _, tc := range []struct {
		err       error
		permanent bool
	}{
		{serverError("WRONGTYPE Operation against a key holding the wrong kind of value"), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{serverError("LOADING Redis is loading the dataset in memory"), false},
	} {
		srv, fs := newTestHandler(t, map[string]string{EnvKey: "events"})
		fs.err = tc.err
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Offset: 5, Value: []byte("v")})
		if err == nil || sdktest.IsCallError(err) {
			t.Fatalf("%v: err = %v, want the handler's error", tc.err, err)
		}
		if sdk.IsPermanent(err) != tc.permanent {
			t.Errorf("%v: permanent = %v, want %v", tc.err, sdk.IsPermanent(err), tc.permanent)
		}
		if !strings.Contains(err.Error(), `hookbridge-redis: orders-0-5: stream "events"`) {
			t.Errorf("message %q lacks the record and the key", err)
		}
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	// A port nothing listens on: the dial is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg, err := ConfigFromEnv(env(map[string]string{EnvURL: "redis://" + addr + "/0?max_retries=-1", EnvKey: "events"}))
	if err != nil {
		t.Fatal(err)
	}
	h := New(cfg, nil)
	defer h.Close()
	srv := sdktest.NewServer(t, h)
	_, err = srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) || sdktest.IsCallError(err) {
		t.Fatalf("err = %v, want a retryable handler error", err)
	}
}

// A value larger than the server's proto-max-bulk-len fails permanently
// before it is sent: Redis would close the connection, which looks like a
// network failure and would be retried for ever. The limit is read only for
// values above 1 MiB, and read again before a refusal and after a large
// write failed.
func TestValueAboveTheServersBulkLimitIsPermanent(t *testing.T) {
	for _, mode := range []string{"stream", "list", "set"} {
		srv, fs := newTestHandler(t, map[string]string{EnvMode: mode, EnvKey: "events"})
		fs.bulkLimit = 2 << 20
		small := &sdk.Message{Topic: "t", Offset: 1, Value: make([]byte, 1<<20)}
		if _, err := srv.Handle(t.Context(), small); err != nil || fs.bulkReads != 0 {
			t.Fatalf("%s: 1 MiB: err %v, %d limit reads, want written without one", mode, err, fs.bulkReads)
		}
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 2, Value: make([]byte, 2<<20)}); err != nil {
			t.Fatalf("%s: at the limit: %v", mode, err)
		}
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 3, Value: make([]byte, 2<<20+1)})
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "larger than the server's proto-max-bulk-len, 2097152") {
			t.Fatalf("%s: above the limit: err = %v, want permanent", mode, err)
		}
		if n := len(fs.streams["events"]) + len(fs.lists["events"]); mode != "set" && n != 2 {
			t.Errorf("%s: %d records written, want the two within the limit", mode, n)
		}
		// Raised: the refusal reads the limit again first.
		fs.bulkLimit = 4 << 20
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 3, Value: make([]byte, 2<<20+1)}); err != nil {
			t.Fatalf("%s: after the limit was raised: %v", mode, err)
		}
		// Lowered: the next large write fails as the connection does, and
		// the one after it reads the limit again.
		fs.bulkLimit = 1 << 20
		fs.err = errors.New("write: connection reset by peer")
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 4, Value: make([]byte, 3<<20)}); err == nil || sdk.IsPermanent(err) {
			t.Fatalf("%s: a reset connection: err = %v, want retryable", mode, err)
		}
		fs.err = nil
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 4, Value: make([]byte, 3<<20)}); !sdk.IsPermanent(err) {
			t.Fatalf("%s: after the limit was lowered: err = %v, want permanent", mode, err)
		}
	}
}

// A server that refuses CONFIG GET (managed services often do) is taken to
// have Redis's default limit, 512 MB; one that cannot be asked for now
// refuses nothing.
func TestBulkLimitUnknown(t *testing.T) {
	srv, fs := newTestHandler(t, map[string]string{EnvKey: "events"})
	fs.bulkLimitErr = errors.New("dial tcp: connection refused")
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: make([]byte, 3<<20)}); err != nil {
		t.Fatalf("limit unknown: %v", err)
	}
	fs.bulkLimitErr = serverError("ERR unknown command 'CONFIG'")
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 2, Value: make([]byte, 3<<20)}); err != nil {
		t.Fatalf("CONFIG refused: %v", err)
	}
	reads := fs.bulkReads
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 3, Value: make([]byte, 3<<20)}); err != nil || fs.bulkReads != reads {
		t.Fatalf("err %v, %d more limit reads, want the default kept", err, fs.bulkReads-reads)
	}
}
