package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// The configured webhook header names the webhook target refuses because the
// contract or the HTTP framing sets them, matched in any case. They must stay
// the lists of reservedHeader in bridge/webhook/headers.go, which refuses
// them at start-up; TestReservedHeadersMatchWebhook fails when they differ.
var (
	reservedHeaderPrefixes = []string{"webhook-", "ce-", "kafka-", "hookbridge-"}
	reservedHeaderNames    = []string{
		"traceparent", "tracestate", "baggage",
		"host", "content-length", "transfer-encoding", "connection", "keep-alive",
		"te", "trailer", "upgrade", "proxy-connection", "expect",
	}
)

// headerTokenChars are the bytes of an HTTP token besides letters and digits.
const headerTokenChars = "!#$%&'*+-.^_`|~"

// validateHeaders checks the configured headers of a webhook as the webhook
// target does when it starts, so that validate refuses what run would: every
// name an HTTP token and not reserved, no value with a control character.
// No message shows a value, nor a name that is not a token: such a "name"
// may be a whole header line ("Authorization: Bearer ...") written as a key.
func (w *Webhook) validateHeaders(v *checker, path string) {
	for _, name := range sortedKeys(w.Headers) {
		key := joinKey(path, name)
		switch {
		case name == "":
			v.addAt(key, path, "header names must not be empty")
		case !httpToken(name):
			v.addAt(key, path, "a header name must be an HTTP token: letters, digits and %s, no spaces or colons", headerTokenChars)
		case reservedHeader(name):
			v.addf(key, "is set by the bridge and cannot be configured")
		case !headerValueOK(w.Headers[name]):
			v.addf(key, "the value holds a control character (CR, LF, NUL or another; only tab is allowed)")
		}
	}
	w.sameHeaderNames(v, path)
}

// sameHeaderNames checks that no two configured header names differ only in
// case (X-Api-Key, x-api-key; a merge that overrides a header in another
// case): HTTP names are not case-sensitive, so the target would send one of
// the values, a different one from start to start. The later key in the
// file is reported.
func (w *Webhook) sameHeaderNames(v *checker, path string) {
	names := slices.DeleteFunc(sortedKeys(w.Headers), func(name string) bool {
		return !httpToken(name) || reservedHeader(name) // reported above
	})
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(v.line(joinKey(path, a)), v.line(joinKey(path, b)))
	})
	first := map[string]string{} // by lower-case name
	for _, name := range names {
		f, dup := first[strings.ToLower(name)]
		if !dup {
			first[strings.ToLower(name)] = name
			continue
		}
		where := ""
		if line := v.line(joinKey(path, f)); line > 0 {
			where = fmt.Sprintf(" (line %d)", line)
		}
		v.addf(joinKey(path, name), "the same header as %q%s: header names are not case-sensitive, so only one of "+
			"the values would be sent; keep one", f, where)
	}
}

// reservedHeader reports whether a configured header name is one the bridge
// sets itself.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	return slices.Contains(reservedHeaderNames, n) ||
		slices.ContainsFunc(reservedHeaderPrefixes, func(prefix string) bool { return strings.HasPrefix(n, prefix) })
}

// httpToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// only thing a header name may be.
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		letterOrDigit := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !letterOrDigit && strings.IndexByte(headerTokenChars, c) < 0 {
			return false
		}
	}
	return true
}

// headerValueOK reports whether s is a legal header value: no control
// character other than tab (so no CR, LF or NUL).
func headerValueOK(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
