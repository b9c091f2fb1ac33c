package config

import (
	"fmt"
	"strings"
)

// suggest returns ` (did you mean "x"?)` for the candidate closest to word,
// or "" when none is close. A candidate is close when it is at most a third
// of the word's length (and at most 3 edits) away, or when one of the two
// starts with the other and the shorter has at least 3 characters.
func suggest(word string, candidates []string) string {
	limit := min(3, max(1, len(word)/3))
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(word, c)
		if (d <= limit || isPrefixPair(word, c)) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// isPrefixPair reports whether one of a and b starts with the other, which
// has at least 3 characters.
func isPrefixPair(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(a) >= 3 && strings.HasPrefix(b, a)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggestFor is suggest for the value at path, or "" when the value came
// from the environment: a close candidate would give part of it away.
func (v *checker) suggestFor(path, word string, candidates []string) string {
	if _, ok := v.fromEnv[path]; ok {
		return ""
	}
	return suggest(word, candidates)
}
