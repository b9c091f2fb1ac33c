package excerpt

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct {
		text string
		n    int
		want string
	}{
		{"", 10, ""},
		{"  \n", 10, ""},
		{" bad request\n", 100, `"bad request"`},
		{"line one\nline two", 100, `"line one\nline two"`},
		{strings.Repeat("x", 50), 10, `"xxxxxxxxxx"`},
		{"ab\xffcd", 100, ""},                 // not UTF-8
		{"é" + strings.Repeat("a", 5), 1, ""}, // clipped inside the first rune
		{"aé", 2, `"a"`},                      // clipped inside a rune: the rune goes
	} {
		if got := Quote([]byte(c.text), c.n); got != c.want {
			t.Errorf("Quote(%q, %d) = %s, want %s", c.text, c.n, got, c.want)
		}
	}
}
