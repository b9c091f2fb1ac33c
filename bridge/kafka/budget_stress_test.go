package kafka

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Many claim loops acquire random sizes, some larger than the whole budget,
// wait when refused (nudging as admit does), and release from other
// goroutines, some reported stuck meanwhile, joining and leaving: the budget
// comes back to exactly nothing held, and never holds more than its bounds
// allow.
func TestBudgetStress(t *testing.T) {
	const maxRecords, maxBytes = 64, 4096
	b := newBudget(maxRecords, maxBytes, 4)
	var over sync.Once
	var stuckHeld atomic.Int64 // records stuck once and not released yet
	check := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		// Past the bounds only by one record larger than the budget next to
		// stuck ones (see budget), which hold their room until released.
		if b.records > maxRecords || (b.bytes > maxBytes && b.records > stuckHeld.Load()+1) {
			over.Do(func() { t.Errorf("budget holds %d records, %d bytes, %d stuck", b.records, b.bytes, b.stuck) })
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				b.join()
				w := newBudgetWait()
				var releases sync.WaitGroup
				for range 50 {
					size := int64(rand.IntN(400))
					if rand.IntN(50) == 0 {
						size = 2 * maxBytes
					}
					if !b.tryAcquire(size, w) {
						for granted := false; !granted; {
							select {
							case <-w.ready:
								granted = true
							default:
								if b.nudge(w) {
									<-w.ready
									granted = true
								} else {
									runtime.Gosched()
								}
							}
						}
					}
					check()
					stuck := rand.IntN(20) == 0
					if stuck {
						stuckHeld.Add(1)
						b.stick()
					}
					releases.Go(func() {
						if stuck {
							b.unstick()
						}
						b.release(w, size)
						if stuck {
							stuckHeld.Add(-1)
						}
					})
				}
				releases.Wait()
				b.leave()
			}
		})
	}
	wg.Wait()
	if recs, byts := b.held(); recs != 0 || byts != 0 || b.stuck != 0 || b.claims != 0 || len(b.waiting) != 0 {
		t.Fatalf("after everything was released: %d records, %d bytes, %d stuck, %d claims, %d waiting",
			recs, byts, b.stuck, b.claims, len(b.waiting))
	}
}
