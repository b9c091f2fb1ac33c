package kafka

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// claimLogDelay is how long claimLog gathers the claims that started and
// ended before it writes them in one line: the claims of one rebalance start
// (or end) within moments of each other.
const claimLogDelay = 250 * time.Millisecond

// claimLog writes the changes to a session's claims that no "joined group"
// line shows. Under an eager strategy every rebalance starts a new session,
// whose "joined group" line names all its claims. Under a cooperative one the
// session goes on across rebalances: a member that joins a running group
// usually has no claim at first (its partitions are handed over in a second
// step, once their owners let them go), and partitions that move later are
// added to, or revoked from, the running session. claimLog gathers such
// changes for claimLogDelay and writes them as one "claims changed" line with
// the claims the member holds after them, so that one line per rebalance, not
// one per partition, says what the member consumes.
type claimLog struct {
	log *slog.Logger

	mu      sync.Mutex
	owned   map[topicPartition]bool // the session's claims, as last written or written pending
	added   []topicPartition
	revoked []topicPartition
	gen     int32 // the generation of the latest change
	timer   *time.Timer
}

func newClaimLog(log *slog.Logger) *claimLog {
	return &claimLog{log: log, owned: make(map[topicPartition]bool)}
}

// session starts a session whose claims its "joined group" line names.
func (l *claimLog) session(claims map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resetLocked()
	clear(l.owned)
	for topic, parts := range claims {
		for _, p := range parts {
			l.owned[topicPartition{topic, p}] = true
		}
	}
}

// started notes a claim that started in generation gen; one of the claims
// the session started with is not a change.
func (l *claimLog) started(tp topicPartition, gen int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owned[tp] {
		return
	}
	l.owned[tp] = true
	l.added = append(l.added, tp)
	l.changedLocked(gen)
}

// revokedFrom notes a claim that a cooperative rebalance revoked while the
// session went on; gen is the session's generation then.
func (l *claimLog) revokedFrom(tp topicPartition, gen int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.owned[tp] {
		return
	}
	delete(l.owned, tp)
	l.revoked = append(l.revoked, tp)
	l.changedLocked(gen)
}

func (l *claimLog) changedLocked(gen int32) {
	l.gen = max(l.gen, gen)
	if l.timer == nil {
		l.timer = time.AfterFunc(claimLogDelay, l.flush)
	}
}

// flush writes the changes gathered so far, if any. The end of a session
// calls it too, so that changes made just before it are not lost from the
// log.
func (l *claimLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.added) == 0 && len(l.revoked) == 0 {
		l.resetLocked()
		return
	}
	owned := make([]topicPartition, 0, len(l.owned))
	for tp := range l.owned {
		owned = append(owned, tp)
	}
	l.log.Info("claims changed", "generation", l.gen, "added", claimMap(l.added), "revoked", claimMap(l.revoked),
		"claims", claimMap(owned))
	l.resetLocked()
}

// resetLocked drops the changes not written and stops the timer.
func (l *claimLog) resetLocked() {
	l.added, l.revoked = l.added[:0], l.revoked[:0]
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// claimMap is tps by topic, each topic's partitions in order: the shape of
// sarama's Claims, which the "joined group" line shows.
func claimMap(tps []topicPartition) map[string][]int32 {
	m := make(map[string][]int32)
	for _, tp := range tps {
		m[tp.topic] = append(m[tp.topic], tp.partition)
	}
	for _, parts := range m {
		slices.Sort(parts)
	}
	return m
}
