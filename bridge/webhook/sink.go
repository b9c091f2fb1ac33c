package webhook

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// headerSink takes the fields of a record's request as Target.header makes
// them: into an http.Header (mapSink, for a round tripper) or straight into
// the request's bytes (lineSink, the direct path). Names are in canonical
// form unless said otherwise; values are valid as they come, except those
// of put, which the sink checks.
type headerSink interface {
	// configured adds the target's configured fields but Content-Type
	// (see Target.header): h, or the same as header lines.
	configured(h http.Header, lines []byte)
	// put sets a field the contract sets once.
	put(name, v string)
	// putBytes, putInt, putTime and putBase64 set such a field from a
	// value that is not a string yet: bytes that are a valid value, a
	// number, a time (RFC 3339 with nanoseconds, UTC), or bytes to send as
	// base64.
	putBytes(name string, v []byte)
	putInt(name string, v int64)
	putTime(name string, t time.Time)
	putBase64(name string, v []byte)
	// forward adds a record header's field, which may repeat; name is
	// not canonical. v goes as is (a valid value) or as base64.
	forward(name string, v []byte, asBase64 bool)
	// ce sets ce-<attr> to a record's own CloudEvents attribute (attr is a
	// lower-case token, v encoded).
	ce(attr, v string)
}

// mapSink is a headerSink into an http.Header. The single values of put
// share one array, so that a request's header costs one allocation for
// them instead of one each.
type mapSink struct {
	h    http.Header
	vals []string
}

func (s *mapSink) configured(h http.Header, _ []byte) {
	for k, vs := range h {
		if k != "Content-Type" {
			s.h[k] = slices.Clone(vs) // never share a slice a later Add could grow
		}
	}
}

func (s *mapSink) put(name, v string) {
	if len(s.vals) == cap(s.vals) {
		s.vals = make([]string, 0, 16)
	}
	s.vals = append(s.vals, v)
	n := len(s.vals)
	s.h[name] = s.vals[n-1 : n : n] // capacity 1: an Add elsewhere copies instead of overwriting a neighbour
}

func (s *mapSink) putBytes(name string, v []byte)   { s.put(name, string(v)) }
func (s *mapSink) putInt(name string, v int64)      { s.put(name, strconv.FormatInt(v, 10)) }
func (s *mapSink) putTime(name string, t time.Time) { s.put(name, t.UTC().Format(time.RFC3339Nano)) }
func (s *mapSink) putBase64(name string, v []byte)  { s.put(name, base64.StdEncoding.EncodeToString(v)) }
func (s *mapSink) ce(attr, v string)                { s.h.Set("ce-"+attr, v) }

func (s *mapSink) forward(name string, v []byte, asBase64 bool) {
	if asBase64 {
		s.h.Add(name, base64.StdEncoding.EncodeToString(v))
	} else {
		s.h.Add(name, string(v))
	}
}

// lineSink is a headerSink that writes each field as a header line,
// "Name: value\r\n", onto buf. A value put that is not a valid field value
// (it cannot happen with a topic Kafka accepted) is kept as err and not
// written.
type lineSink struct {
	buf []byte
	err error
}

func (s *lineSink) reset() { s.buf, s.err = s.buf[:0], nil }

func (s *lineSink) configured(_ http.Header, lines []byte) { s.buf = append(s.buf, lines...) }

func (s *lineSink) name(name string) {
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, ": "...)
}

func (s *lineSink) end() { s.buf = append(s.buf, "\r\n"...) }

func (s *lineSink) put(name, v string) {
	if !validHeaderValue(v) {
		if s.err == nil {
			s.err = fmt.Errorf("http: invalid header field value for %q", name)
		}
		return
	}
	s.name(name)
	s.buf = append(s.buf, v...)
	s.end()
}

func (s *lineSink) putBytes(name string, v []byte) {
	s.name(name)
	s.buf = append(s.buf, v...)
	s.end()
}

func (s *lineSink) putInt(name string, v int64) {
	s.name(name)
	s.buf = strconv.AppendInt(s.buf, v, 10)
	s.end()
}

func (s *lineSink) putTime(name string, t time.Time) {
	s.name(name)
	s.buf = t.UTC().AppendFormat(s.buf, time.RFC3339Nano)
	s.end()
}

func (s *lineSink) putBase64(name string, v []byte) {
	s.name(name)
	s.buf = base64.StdEncoding.AppendEncode(s.buf, v)
	s.end()
}

func (s *lineSink) forward(name string, v []byte, asBase64 bool) {
	s.buf = appendCanonical(s.buf, name)
	s.buf = append(s.buf, ": "...)
	if asBase64 {
		s.buf = base64.StdEncoding.AppendEncode(s.buf, v)
	} else {
		s.buf = append(s.buf, v...)
	}
	s.end()
}

func (s *lineSink) ce(attr, v string) {
	s.buf = append(s.buf, "Ce-"...)
	s.buf = appendCanonical(s.buf, attr)
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, v...)
	s.end()
}

// Get, Set and Keys make a lineSink the carrier the propagator injects the
// trace context into (traceparent, tracestate, baggage).
func (s *lineSink) Get(string) string { return "" }
func (s *lineSink) Keys() []string    { return nil }

func (s *lineSink) Set(key, value string) {
	if !validToken(key) || !validHeaderValue(value) {
		if s.err == nil {
			s.err = fmt.Errorf("http: invalid trace context field %q", key)
		}
		return
	}
	s.buf = appendCanonical(s.buf, key)
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, value...)
	s.end()
}

// appendCanonical appends the token name in the canonical form http.Header
// gives it: upper case at the start and after each hyphen, lower case
// elsewhere.
func appendCanonical(b []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// headerLines renders configured fields but Content-Type as header lines,
// sorted by name (a request's field order carries no meaning; a fixed one is
// easier to read in a capture).
func headerLines(h http.Header) []byte {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if k == "Content-Type" {
			continue
		}
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}
