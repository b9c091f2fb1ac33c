// Package memo keeps values that are made from a string key on a hot path
// and are almost always made from the same key: a span name from a route's
// topic, a CloudEvents source from it. Made once, they cost no allocation per
// record.
package memo

import "sync/atomic"

// Last keeps the value made for the last key it was asked for. Safe for
// concurrent use; the zero value is ready.
type Last struct {
	last atomic.Pointer[entry]
}

type entry struct{ key, value string }

// Get returns build(key), calling build only when key is not the last key.
func (l *Last) Get(key string, build func(string) string) string {
	if e := l.last.Load(); e != nil && e.key == key {
		return e.value
	}
	e := &entry{key: key, value: build(key)}
	l.last.Store(e)
	return e.value
}
