// Package detach waits for calls that cannot be canceled, such as sarama's
// connection attempts, no longer than their caller wants to.
package detach

import "context"

// Call runs open on a goroutine of its own and returns its result, or ctx's
// error as soon as ctx ends. A call still running then finishes on its own,
// and what it opened is handed to release, so nothing is leaked.
func Call[T any](ctx context.Context, open func() (T, error), release func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := open()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				release(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}
