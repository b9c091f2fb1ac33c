package webhook

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Store remembers which records were handled, by webhook-id, so that a
// redelivery is recognised. Handler calls Seen before it handles a record and
// Mark only after the record was handled successfully: a record whose
// handling failed (or whose process died half way) is handled again when the
// bridge redelivers it, so nothing is lost; at worst a record is handled
// twice, when the process dies between handling and Mark.
//
// Methods are called concurrently, with the request's context. A Store
// shared by several replicas of a receiver (a table, a Redis set) dedupes
// across them; MemoryStore dedupes within one process.
type Store interface {
	// Seen reports whether id was marked.
	Seen(ctx context.Context, id string) (bool, error)
	// Mark records id as handled.
	Mark(ctx context.Context, id string) error
}

// Defaults of NewMemoryStore.
const (
	DefaultStoreCapacity = 100_000
	DefaultStoreTTL      = 24 * time.Hour
)

// MemoryStore is a Store in memory: it remembers at most a fixed number of
// ids (the least recently marked or seen are forgotten first) for a fixed
// time after each was last marked or seen. It is safe for concurrent use and
// starts no goroutines: expired ids are dropped as new ones arrive.
type MemoryStore struct {
	capacity int
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	order *list.List               // front = most recently touched; values are *memEntry
	ids   map[string]*list.Element // id -> element of order
}

type memEntry struct {
	id      string
	touched time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore of capacity ids, each kept for ttl
// after it was last touched. Zero or less means DefaultStoreCapacity and
// DefaultStoreTTL. Size it so that an id outlives the bridge's redelivery
// window: a record in flight when the bridge crashed is redelivered once the
// bridge (or another instance) has its partition again, usually within a
// session timeout plus a restart.
func NewMemoryStore(capacity int, ttl time.Duration) *MemoryStore {
	if capacity <= 0 {
		capacity = DefaultStoreCapacity
	}
	if ttl <= 0 {
		ttl = DefaultStoreTTL
	}
	return &MemoryStore{capacity: capacity, ttl: ttl, now: time.Now, order: list.New(), ids: map[string]*list.Element{}}
}

// Seen reports whether id was marked and has not expired or been evicted
// since. A hit counts as a touch: the id is kept for another ttl.
func (s *MemoryStore) Seen(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	el, ok := s.ids[id]
	if !ok {
		return false, nil
	}
	el.Value.(*memEntry).touched = now
	s.order.MoveToFront(el)
	return true, nil
}

// Mark remembers id, evicting the least recently touched id when full.
func (s *MemoryStore) Mark(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	if el, ok := s.ids[id]; ok {
		el.Value.(*memEntry).touched = now
		s.order.MoveToFront(el)
		return nil
	}
	for s.order.Len() >= s.capacity {
		s.removeLocked(s.order.Back())
	}
	s.ids[id] = s.order.PushFront(&memEntry{id: id, touched: now})
	return nil
}

// Len returns the number of ids remembered (expired ones may still count
// until the next call of Seen or Mark).
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// expireLocked drops ids last touched more than ttl ago. The list is in
// touch order, so they are all at the back.
func (s *MemoryStore) expireLocked(now time.Time) {
	for el := s.order.Back(); el != nil; el = s.order.Back() {
		if now.Sub(el.Value.(*memEntry).touched) <= s.ttl {
			return
		}
		s.removeLocked(el)
	}
}

func (s *MemoryStore) removeLocked(el *list.Element) {
	s.order.Remove(el)
	delete(s.ids, el.Value.(*memEntry).id)
}
