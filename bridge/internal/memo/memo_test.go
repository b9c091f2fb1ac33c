package memo

import (
	"sync"
	"testing"
)

// Get gives make's value for every key, makes it again only when the key
// changes, and stays right when goroutines ask for different keys at once.
func TestLast(t *testing.T) {
	var l Last
	made := 0
	mk := func(k string) string { made++; return "v:" + k }
	for _, k := range []string{"a", "a", "b", "b", "a"} {
		if got := l.Get(k, mk); got != "v:"+k {
			t.Fatalf("Get(%q) = %q", k, got)
		}
	}
	if made != 3 {
		t.Errorf("make called %d times, want 3 (a, b, a)", made)
	}
	var wg sync.WaitGroup
	for _, k := range []string{"x", "y", "z", "x"} {
		wg.Go(func() {
			for range 1000 {
				if got := l.Get(k, func(k string) string { return "v:" + k }); got != "v:"+k {
					t.Errorf("Get(%q) = %q", k, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
