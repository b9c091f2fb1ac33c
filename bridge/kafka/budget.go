package kafka

import "sync"

// budget bounds the records and bytes a route holds (queued in lanes or being
// delivered). A claim loop that cannot acquire pauses its partition and waits.
type budget struct {
	mu                   sync.Mutex
	records, bytes       int64
	maxRecords, maxBytes int64
	freed                chan struct{} // closed and replaced on every release
}

func newBudget(maxRecords, maxBytes int64) *budget {
	return &budget{maxRecords: maxRecords, maxBytes: maxBytes, freed: make(chan struct{})}
}

// tryAcquire takes room for one record of size bytes. When there is none it
// returns false and a channel closed at the next release. A record larger than
// the whole byte budget is admitted when nothing else is held, so it can never
// wedge its partition.
func (b *budget) tryAcquire(size int64) (bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.records == 0 || (b.records < b.maxRecords && b.bytes+size <= b.maxBytes) {
		b.records++
		b.bytes += size
		return true, nil
	}
	return false, b.freed
}

func (b *budget) release(size int64) {
	b.mu.Lock()
	b.records--
	b.bytes -= size
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

func (b *budget) held() (records, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes
}
