package webhook

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func seen(t *testing.T, s Store, id string) bool {
	t.Helper()
	ok, err := s.Seen(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMemoryStoreMarkThenSeen(t *testing.T) {
	s := NewMemoryStore(0, 0)
	if s.capacity != DefaultStoreCapacity || s.ttl != DefaultStoreTTL {
		t.Fatalf("defaults: %d %s", s.capacity, s.ttl)
	}
	if seen(t, s, "a") {
		t.Fatal("a seen before it was marked")
	}
	if seen(t, s, "a") {
		t.Fatal("Seen must not mark")
	}
	_ = s.Mark(context.Background(), "a")
	_ = s.Mark(context.Background(), "a")
	if !seen(t, s, "a") || s.Len() != 1 {
		t.Fatalf("a not seen after Mark (len %d)", s.Len())
	}
}

func TestMemoryStoreCapacity(t *testing.T) {
	s := NewMemoryStore(3, time.Hour)
	ctx := context.Background()
	for i := range 3 {
		_ = s.Mark(ctx, strconv.Itoa(i))
	}
	seen(t, s, "0") // touch 0: 1 is now the least recently used
	_ = s.Mark(ctx, "3")
	if s.Len() != 3 {
		t.Fatalf("len %d, want 3", s.Len())
	}
	for id, want := range map[string]bool{"0": true, "1": false, "2": true, "3": true} {
		if got := seen(t, s, id); got != want {
			t.Errorf("Seen(%s) = %v, want %v", id, got, want)
		}
	}
}

func TestMemoryStoreTTL(t *testing.T) {
	c := newFakeClock()
	s := NewMemoryStore(10, time.Minute)
	s.now = c.now
	ctx := context.Background()
	_ = s.Mark(ctx, "a")
	c.add(30 * time.Second)
	_ = s.Mark(ctx, "b")
	c.add(30 * time.Second) // a is exactly ttl old: still there, and touched
	if !seen(t, s, "a") {
		t.Fatal("a expired at exactly its ttl")
	}
	c.add(31 * time.Second) // b is 61 s old; a was touched 31 s ago
	if seen(t, s, "b") {
		t.Fatal("b outlived its ttl")
	}
	if !seen(t, s, "a") {
		t.Fatal("a was touched and should be kept")
	}
	c.add(2 * time.Minute)
	_ = s.Mark(ctx, "c")
	if s.Len() != 1 {
		t.Fatalf("len %d after everything else expired, want 1", s.Len())
	}
}
