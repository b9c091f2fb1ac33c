// Package logevery keeps a line that repeats, once per record or per
// request while a failure lasts, from flooding the log: the first is logged
// at once, and those that follow within a window are counted and logged as
// one line at its end, the last of them with how many it stands for.
package logevery

import (
	"sync"
	"time"
)

// Throttle logs one line of a kind at most every Every. The zero value is
// ready (Every then defaults to 10 s); it is safe for concurrent use.
type Throttle struct {
	Every time.Duration // least time between two lines; 0: 10 s

	mu     sync.Mutex
	quiet  time.Time // until then lines are counted, not logged
	held   int       // counted since the last line
	last   func()    // logs the last of them
	report *time.Timer
	closed bool
}

// Line logs one event. repeated is 0 for an event logged as it happened;
// else the line stands for repeated events counted within the window.
type Line func(repeated int, within time.Duration)

// Note logs an event with line at once, or counts it when a line was logged
// less than Every ago; the line of the events counted comes at the window's
// end (by a timer), or at Close.
func (l *Throttle) Note(line Line) {
	l.mu.Lock()
	defer l.mu.Unlock()
	every := l.every()
	if now := time.Now(); l.closed || l.held == 0 && !now.Before(l.quiet) {
		line(0, 0)
		l.quiet = now.Add(every)
		return
	}
	l.held++
	n := l.held
	l.last = func() { line(n, every) }
	if l.report == nil {
		l.report = time.AfterFunc(time.Until(l.quiet), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.report = nil
			l.flushLocked()
		})
	}
}

// Close logs the events counted and not logged yet. After it no timer
// runs, and every event is logged as it happens.
func (l *Throttle) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.report != nil {
		l.report.Stop()
		l.report = nil
	}
	l.closed = true
	l.flushLocked()
}

func (l *Throttle) every() time.Duration {
	if l.Every > 0 {
		return l.Every
	}
	return 10 * time.Second
}

// flushLocked logs the line of the events counted, if any.
func (l *Throttle) flushLocked() {
	if l.held == 0 {
		return
	}
	l.last()
	l.held, l.last = 0, nil
	l.quiet = time.Now().Add(l.every())
}
