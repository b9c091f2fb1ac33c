package webhook

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzResponse reads arbitrary bytes as a receiver's answer, with the full
// header and the lean one, and compares with net/http's ReadResponse (1xx
// answers skipped): both refuse it, or both read the same status, framing,
// body, and bytes left after it, and agree on whether the connection may be
// reused. Where readResponse deliberately refuses more (a status line out of
// strictStatusLine, a space in a field name, 101) or reads more (framing
// fields of an answer without a body, repeated Content-Length values, a
// chunked answer's trailer) than net/http, the difference is checked to be
// that one (see weStricter, weLenient).
func FuzzResponse(f *testing.F) {
	for _, raw := range answers {
		f.Add([]byte(raw + nextAnswer))
	}
	for _, raw := range malformedAnswers {
		f.Add([]byte(raw))
	}
	for _, raw := range []string{
		// Framing a hostile receiver may try.
		"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 03\r\nContent-Length: 3\r\n\r\nabc",
		// Read otherwise than net/http reads them before readResponse was
		// fixed: a sign, an obs-fold or a Unicode space in a framing
		// field, a Content-Length beside chunked that is not a length,
		// Transfer-Encoding in HTTP/1.0, a control character or a Unicode
		// space in a folded line.
		"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n , gzip\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\xc2\xa0\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nContent-Length: 6\r\n\r\n1\r\na\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\xc2\xa0\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\xc2\xa0\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n \x00\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n \xc2\xa0\r\nContent-Length: 0\r\n\r\n",
		// Differences by design (see weStricter, weLenient).
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n X: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\nTransfer-Encoding: gzip\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 199 Whatever\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n\t\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\n:\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
	} {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > MaxResponseBody {
			// Past the header bound and the body cap, which net/http's
			// ReadResponse does not have, the two differ by design.
			t.Skip()
		}
		theirs := readNetHTTP(raw)
		full := readOurs(raw, true)
		lean := readOurs(raw, false)
		compareLean(t, full, lean)
		compareNetHTTP(t, raw, full, theirs)
	})
}

// answerRead is what one parser made of an answer.
type answerRead struct {
	resp    *http.Response
	err     error // reading the status line and the header
	body    []byte
	bodyErr error
	rest    []byte // the bytes left after the body (nil when the body failed)
	codes   []int  // net/http: the status codes of the heads begun (-1 when unread)
}

// readOurs reads an answer as h1Transport.answer does: the header bounded
// by maxResponseHeaderSize, then at most MaxResponseBody+1 bytes of body.
func readOurs(raw []byte, full bool) answerRead {
	lr := &limitReader{r: bytes.NewReader(raw), n: maxResponseHeaderSize}
	br := bufio.NewReaderSize(lr, 4<<10)
	var a answerRead
	a.resp, a.err = readResponse(br, full)
	if a.err != nil {
		return a
	}
	lr.n = math.MaxInt64
	a.readBody(br)
	return a
}

// readNetHTTP reads an answer with http.ReadResponse, skipping the 1xx
// answers before it as net/http's Transport does (101 ends the reading).
func readNetHTTP(raw []byte) answerRead {
	br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	var a answerRead
	for {
		a.codes = append(a.codes, peekCode(br))
		a.resp, a.err = http.ReadResponse(br, nil)
		if a.err != nil {
			return a
		}
		if c := a.resp.StatusCode; c < 100 || c >= 200 || c == http.StatusSwitchingProtocols {
			break
		}
	}
	a.readBody(br)
	return a
}

func (a *answerRead) readBody(br *bufio.Reader) {
	a.body, a.bodyErr = io.ReadAll(io.LimitReader(a.resp.Body, MaxResponseBody+1))
	_ = a.resp.Body.Close()
	if a.bodyErr == nil {
		a.rest, _ = io.ReadAll(br)
	}
}

// peekCode is the status code of the status line br is at, when it has the
// form readResponse reads; -1 otherwise.
func peekCode(br *bufio.Reader) int {
	b, _ := br.Peek(len("HTTP/1.1 200"))
	if len(b) < len("HTTP/1.1 200") || !bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return -1
	}
	code := 0
	for _, c := range b[len("HTTP/1.1 "):] {
		if c < '0' || c > '9' {
			return -1
		}
		code = code*10 + int(c-'0')
	}
	return code
}

// compareLean checks that the lean header changes nothing but the header,
// which holds the full one's Content-Type and Retry-After.
func compareLean(t *testing.T, full, lean answerRead) {
	t.Helper()
	if (full.err == nil) != (lean.err == nil) {
		t.Fatalf("full header: %v; lean: %v", full.err, lean.err)
	}
	if full.err != nil {
		return
	}
	if lean.resp.StatusCode != full.resp.StatusCode || lean.resp.Close != full.resp.Close ||
		lean.resp.ContentLength != full.resp.ContentLength ||
		!bytes.Equal(lean.body, full.body) || (lean.bodyErr == nil) != (full.bodyErr == nil) || !bytes.Equal(lean.rest, full.rest) {
		t.Fatalf("lean: %d close=%v length=%d %q (%v) then %q\nfull: %d close=%v length=%d %q (%v) then %q",
			lean.resp.StatusCode, lean.resp.Close, lean.resp.ContentLength, lean.body, lean.bodyErr, lean.rest,
			full.resp.StatusCode, full.resp.Close, full.resp.ContentLength, full.body, full.bodyErr, full.rest)
	}
	want := http.Header{}
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v, ok := full.resp.Header[k]; ok {
			want[k] = v
		}
	}
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(lean.resp.Header, want) {
		t.Fatalf("lean header %q, want %q", lean.resp.Header, want)
	}
}

// compareNetHTTP checks ours (read with the full header) against theirs.
func compareNetHTTP(t *testing.T, raw []byte, ours, theirs answerRead) {
	t.Helper()
	switch {
	case ours.err != nil && theirs.err != nil:
		return
	case ours.err != nil:
		if weStricter(raw) {
			return
		}
		t.Fatalf("refused (%v) an answer net/http reads as %q, header %q", ours.err, theirs.resp.Status, theirs.resp.Header)
	case theirs.err != nil:
		if weLenient(raw, theirs) {
			return
		}
		t.Fatalf("read as %q, header %q, an answer net/http refuses: %v", ours.resp.Status, ours.resp.Header, theirs.err)
	}

	o, n := ours.resp, theirs.resp
	noBody := o.StatusCode == http.StatusNoContent || o.StatusCode == http.StatusNotModified
	// An HTTP/1.0 answer with Transfer-Encoding ends its connection (RFC
	// 9112 section 6.1), where net/http may keep it.
	faulty := !noBody && o.ProtoMinor == 0 && len(readHeads(raw).f.te) > 0
	if o.StatusCode != n.StatusCode || o.Status != n.Status || o.Proto != n.Proto || o.Close != n.Close && !(faulty && o.Close) ||
		// An answer without a body has no framing: net/http keeps what
		// its fields said, readResponse does not look at them.
		!noBody && (o.ContentLength != n.ContentLength || !reflect.DeepEqual(o.TransferEncoding, n.TransferEncoding)) {
		t.Fatalf("ours: %q %s close=%v length=%d te=%v\nnet/http: %q %s close=%v length=%d te=%v",
			o.Status, o.Proto, o.Close, o.ContentLength, o.TransferEncoding,
			n.Status, n.Proto, n.Close, n.ContentLength, n.TransferEncoding)
	}
	if oh, nh := withoutFraming(o.Header), withoutFraming(n.Header); !reflect.DeepEqual(oh, nh) {
		t.Fatalf("header\n ours:     %q\n net/http: %q", oh, nh)
	}

	switch {
	case ours.bodyErr == nil && theirs.bodyErr == nil:
		if !bytes.Equal(ours.body, theirs.body) || !bytes.Equal(ours.rest, theirs.rest) {
			t.Fatalf("body %q then %q; net/http %q then %q", ours.body, ours.rest, theirs.body, theirs.rest)
		}
	case ours.bodyErr != nil && theirs.bodyErr != nil:
	case ours.bodyErr != nil:
		t.Fatalf("body %q: %v; net/http reads %q then %q", ours.body, ours.bodyErr, theirs.body, theirs.rest)
	default:
		// The chunks are read by the same code on both sides
		// (httputil.NewChunkedReader is net/http's); the trailer section
		// after them readResponse skips unread up to its empty line, where
		// net/http parses it as a header and refuses more (bare LF line
		// ends, a trailer past its 4 KiB buffer, a malformed field).
		if !slices.Equal(o.TransferEncoding, []string{"chunked"}) || !bytes.Equal(ours.body, theirs.body) {
			t.Fatalf("body %q then %q; net/http %q: %v", ours.body, ours.rest, theirs.body, theirs.bodyErr)
		}
	}
}

// withoutFraming is h without the fields that frame the answer, which
// compareNetHTTP compares as the Response's framing instead: net/http drops
// or keeps them by rules of its own (Connection: close only for HTTP/1.1,
// Transfer-Encoding even where it ignores it, Trailer moved to
// Response.Trailer), and adds Cache-Control: no-cache for Pragma: no-cache.
// No caller reads them from the header. Values lose their trailing spaces
// and tabs: net/http keeps the space that replaced an obs-fold before an
// empty continuation line, which is not part of the value (RFC 9110
// section 5.5).
func withoutFraming(h http.Header) http.Header {
	h = h.Clone()
	for _, vs := range h {
		for i, v := range vs {
			vs[i] = strings.TrimRight(v, " \t")
		}
	}
	for _, k := range []string{"Connection", "Transfer-Encoding", "Content-Length", "Trailer"} {
		delete(h, k)
	}
	if _, ok := h["Pragma"]; ok {
		delete(h, "Cache-Control")
	}
	if len(h) == 0 {
		return nil
	}
	return h
}

// strictStatusLine is the status line readResponse reads: HTTP/1.0 or
// HTTP/1.1, one space, three digits, then the end or a space and a reason.
// net/http also reads other versions (HTTP/1.2, HTTP/3.0), spaces before
// the code, and codes like "+20" or "000".
var strictStatusLine = regexp.MustCompile(`(?s)^HTTP/1\.[01] [1-9][0-9][0-9](?: .*)?$`)

// refusedField finds the start of the header line readResponse refused
// in its error.
var refusedField = regexp.MustCompile(`header line "(.*)"$`)

// heads is what readHead makes of the heads of an answer, up to the final
// one or the first it refuses.
type heads struct {
	resp *http.Response // the last head read
	f    framing        // its framing
	line []byte         // the status line of the last head begun
	err  error          // why readHead refused it
}

// readHeads reads the heads of raw as readResponse does, bodies aside.
func readHeads(raw []byte) heads {
	br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	var h heads
	for {
		h.line, _ = br.Peek(4 << 10)
		if i := bytes.IndexByte(h.line, '\n'); i >= 0 {
			h.line = bytes.TrimSuffix(h.line[:i], []byte("\r"))
		}
		h.resp, h.f, h.err = readHead(br, true)
		if h.err != nil || h.resp.StatusCode < 100 || h.resp.StatusCode >= 200 || h.resp.StatusCode == http.StatusSwitchingProtocols {
			return h
		}
	}
}

// weStricter reports whether readResponse refused raw, which net/http reads,
// on purpose: a status line out of strictStatusLine, a field name with a
// space in it (net/http reads one for compatibility, RFC 9112 section 5.1
// forbids it), or a final 101 (the bridge does not switch protocols).
func weStricter(raw []byte) bool {
	h := readHeads(raw)
	switch {
	case h.err == nil:
		return h.resp.StatusCode == http.StatusSwitchingProtocols
	case strings.Contains(h.err.Error(), "status line"):
		return !strictStatusLine.Match(h.line)
	}
	if m := refusedField.FindStringSubmatch(h.err.Error()); m != nil {
		name, _, _ := strings.Cut(m[1], ":")
		return strings.Contains(name, " ") && validToken(strings.ReplaceAll(name, " ", "x"))
	}
	return false
}

// weLenient reports whether readResponse read raw, which net/http refuses,
// on purpose: net/http refused the framing fields of an answer without a
// body (1xx, 204, 304), which readResponse does not look at; repeated
// Content-Length values that are all one number, which RFC 9110 section 8.6
// lets a recipient read as that number; or the Trailer field of a chunked
// answer, which announces trailer fields the bridge never reads.
func weLenient(raw []byte, theirs answerRead) bool {
	msg := theirs.err.Error()
	if strings.HasPrefix(msg, "bad trailer key") {
		return true
	}
	framing := strings.Contains(msg, "Content-Length") || strings.Contains(msg, "transfer encoding")
	if !framing {
		return false
	}
	switch c := theirs.codes[len(theirs.codes)-1]; {
	case c >= 100 && c < 200, c == http.StatusNoContent, c == http.StatusNotModified:
		return true
	}
	h := readHeads(raw)
	if h.err != nil {
		return false
	}
	n, err := contentLength(h.f.lengths)
	return err == nil && n >= 0 && (len(h.f.te) == 0 || h.resp.ProtoMinor == 0) &&
		(len(h.f.lengths) > 1 || len(h.f.lengths) == 1 && strings.Contains(h.f.lengths[0], ","))
}
