// Package excerpt quotes text that another party sent (a receiver's body,
// a token endpoint's error description) for an error message, which goes to
// logs and dead-letter headers: clipped, quoted, nothing when binary.
package excerpt

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Quote returns the start of text, at most n bytes of valid UTF-8 with the
// surrounding white space trimmed, as a Go-quoted string (control characters
// escaped); "" when text is empty or not UTF-8.
func Quote(text []byte, n int) string {
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return ""
	}
	if len(text) > n {
		text = text[:n]
		for len(text) > 0 && !utf8.Valid(text) {
			text = text[:len(text)-1]
		}
	}
	if len(text) == 0 || !utf8.Valid(text) {
		return ""
	}
	return strconv.Quote(string(text))
}
