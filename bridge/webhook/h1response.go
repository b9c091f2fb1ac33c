package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
)

// readResponse reads the final response to a POST from br, skipping 1xx
// answers (100 Continue, 103 Early Hints) before it, and frames its body as
// RFC 9112 section 6.3 says: none for 204 and 304, chunked, Content-Length,
// or until the connection closes.
//
// With full, the Response is what http.ReadResponse gives (the tests compare
// the two). Without, as the Target's direct path asks, its Header holds only
// the two fields the Target reads, Content-Type and Retry-After (nil when
// neither came): a webhook's answer is a status line and a few fields
// nobody reads, and building a map of them was a good part of what reading
// an answer cost.
func readResponse(br *bufio.Reader, full bool) (*http.Response, error) {
	for {
		resp, f, err := readHead(br, full)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errSwitchingProtocols
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		if err := f.frame(resp, br); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

var errMalformedResponse = errors.New("http: malformed response")

// errSwitchingProtocols is a final 101 answer: the bridge never switches
// protocols, and the connection is closed unread. Target.failure reports it
// with the answer's status, as Target.response reports a 101 that net/http
// returns.
var errSwitchingProtocols = errors.New("http: unexpected 101 Switching Protocols")

// framing is what a response's fields say about its body and connection.
type framing struct {
	lengths    []string // Content-Length values
	te         []string // Transfer-Encoding values
	connection []string // Connection values
	close      bool     // Connection: close
	keepAlive  bool     // Connection: keep-alive
}

// readHead reads a status line and its fields.
func readHead(br *bufio.Reader, full bool) (*http.Response, framing, error) {
	var f framing
	line, err := readLine(br, math.MaxInt)
	if err != nil {
		return nil, f, err
	}
	resp := &http.Response{ProtoMajor: 1}
	// HTTP/1.x SP 3DIGIT [SP reason]
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
		resp.Proto, resp.ProtoMinor = "HTTP/1.1", 1
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		resp.Proto = "HTTP/1.0"
	default:
		return nil, f, malformed("status line", line)
	}
	code := line[len("HTTP/1.1 "):]
	if len(code) < 3 || (len(code) > 3 && code[3] != ' ') {
		return nil, f, malformed("status line", line)
	}
	for _, c := range code[:3] {
		if c < '0' || c > '9' {
			return nil, f, malformed("status line", line)
		}
		resp.StatusCode = resp.StatusCode*10 + int(c-'0')
	}
	if resp.StatusCode < 100 {
		return nil, f, malformed("status line", line)
	}
	resp.Status = statusLine(code)

	if full {
		resp.Header = make(http.Header, 4)
	}
	var vals []string   // the one-value slices of the header, from one array
	var last string     // the name of the previous field kept, for a folded line
	var folds *[]string // the framing values of the previous field, for a folded line
	// The value of the previous field joined with the lines that continue
	// it so far, while folding: it replaces the value once the field ends.
	// Joined into a new string line by line, a value folded over the many
	// lines that a header of maxResponseHeaderSize holds cost a copy of
	// itself per line: gigabytes, and seconds of CPU, for one answer.
	var folded []byte
	folding := false
	endFold := func() {
		if !folding {
			return
		}
		folding = false
		v := string(folded)
		if vs := resp.Header[last]; last != "" && len(vs) > 0 {
			vs[len(vs)-1] = v
		}
		if folds != nil {
			vs := *folds
			vs[len(vs)-1] = v
		}
	}
	fields := 0
	for {
		line, err := readLine(br, math.MaxInt)
		if err != nil {
			return nil, f, err
		}
		if len(line) == 0 {
			endFold()
			for _, v := range f.connection {
				f.close = f.close || hasToken(v, "close")
				f.keepAlive = f.keepAlive || hasToken(v, "keep-alive")
			}
			return resp, f, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: the line continues the previous field's value
			// (RFC 9112 section 5.2: replaced by a space).
			if fields == 0 {
				return nil, f, malformed("header line", line)
			}
			more := bytes.Trim(line, " \t")
			if !validHeaderValue(more) {
				// Part of the value: held to its rules.
				return nil, f, malformed("folded line", line)
			}
			// A framing field frames the answer with its whole value, as
			// net/http reads it: "Content-Length: 1" folded with "2" is
			// "1 2", refused, not a body of 1 byte;
			// "Transfer-Encoding: chunked" folded with "gzip" is not
			// chunked.
			if !folding {
				var v string
				switch {
				case folds != nil:
					v = (*folds)[len(*folds)-1]
				case last != "" && len(resp.Header[last]) > 0:
					v = resp.Header[last][len(resp.Header[last])-1]
				default:
					continue // a field nobody reads
				}
				folded = append(folded[:0], v...)
				folding = true
			}
			folded = unfold(folded, more)
			continue
		}
		endFold()
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validToken(line[:colon]) {
			return nil, f, malformed("header line", line)
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if !validHeaderValue(value) {
			return nil, f, malformed("value of", name)
		}
		fields++
		key, known := knownKey(name)
		folds = nil
		switch key {
		case "Content-Length":
			f.lengths = append(f.lengths, string(value))
			folds = &f.lengths
		case "Transfer-Encoding":
			f.te = append(f.te, string(value))
			folds = &f.te
		case "Connection":
			f.connection = append(f.connection, string(value))
			folds = &f.connection
		}
		last = ""
		if !full && key != "Content-Type" && key != "Retry-After" {
			continue
		}
		if !known {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		if resp.Header == nil {
			resp.Header = make(http.Header, 4)
		}
		if len(vals) == cap(vals) {
			vals = make([]string, 0, 8)
		}
		vals = append(vals, string(value))
		n := len(vals)
		if vs, ok := resp.Header[key]; ok {
			resp.Header[key] = append(vs, vals[n-1])
		} else {
			resp.Header[key] = vals[n-1 : n : n]
		}
		last = key
	}
}

// unfold appends to value v the folded line more (trimmed): joined with a
// space, and without spaces or tabs at the ends of the whole, as any field
// value.
func unfold(v, more []byte) []byte {
	if len(more) == 0 {
		return v
	}
	if len(v) > 0 {
		v = append(v, ' ')
	}
	return append(v, more...)
}

// readLine reads one line without its CRLF (or bare LF). A line longer than
// the reader's buffer is put together from its pieces, up to max bytes
// (errLineTooLong past that); the caller bounds a header's size by what br
// reads from. A connection that ends before the line does is
// io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > max {
				return nil, errLineTooLong
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if len(line) > max {
		return nil, errLineTooLong
	}
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// knownKeys are the field names a webhook receiver commonly answers with,
// in canonical form: found here, a name costs no string of its own.
var knownKeys = []string{
	"Content-Length", "Content-Type", "Date", "Server", "Connection", "Keep-Alive",
	"Transfer-Encoding", "Retry-After", "Cache-Control", "Vary",
}

// knownKey is name in canonical form when it is one of knownKeys.
func knownKey(name []byte) (string, bool) {
	for _, k := range knownKeys {
		if len(k) == len(name) && strings.EqualFold(k, string(name)) {
			return k, true
		}
	}
	return "", false
}

// statusLine is Response.Status: the status line after the version, as
// net/http gives it.
func statusLine(rest []byte) string {
	if string(rest) == "200 OK" {
		return "200 OK"
	}
	return string(rest)
}

// malformed is the error of a malformed line; it quotes the line's start.
func malformed(what string, b []byte) error {
	return fmt.Errorf("%w: %s %q", errMalformedResponse, what, quoted(b))
}

// quoted is what an error quotes of an answer's bytes: the first 64. A
// receiver's answer may hold a megabyte in one field, which the log lines
// and span events that carry the error would otherwise repeat.
func quoted[T string | []byte](b T) T {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// frame gives resp its body and framing: Close when the connection ends with
// this response, ContentLength (-1 when unknown), TransferEncoding, and a
// body that reads exactly the response's bytes from br. As net/http does,
// a full header keeps no field whose job these do (Connection: close,
// Transfer-Encoding, a repeated Content-Length).
func (f framing) frame(resp *http.Response, br *bufio.Reader) error {
	h := resp.Header
	resp.Close = f.close || (resp.ProtoMinor == 0 && !f.keepAlive)
	if f.close {
		delete(h, "Connection")
	}
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		resp.Body = http.NoBody
		return nil
	}
	if len(f.te) > 0 && resp.ProtoMinor == 0 {
		// Transfer-Encoding came with HTTP/1.1: an HTTP/1.0 answer that has
		// one likely passed a hop that did not decode it, and its framing
		// is faulty (RFC 9112 section 6.1). The field is ignored, as
		// net/http (the https path) ignores it, so that both read the same
		// body; the connection ends with the answer, as the RFC asks.
		resp.Close = true
		delete(h, "Transfer-Encoding")
		f.te = nil
	}
	if len(f.te) > 0 {
		if len(f.te) != 1 || !strings.EqualFold(trimOWS(f.te[0]), "chunked") {
			return fmt.Errorf("%w: unsupported Transfer-Encoding %q", errMalformedResponse, quoted(strings.Join(f.te, ", ")))
		}
		if len(f.lengths) > 0 {
			// The chunks frame the body; a Content-Length beside them
			// that is no length at all says the framing is not to be
			// trusted (RFC 9112 section 6.3), and net/http refuses it.
			if _, err := contentLength(f.lengths); err != nil {
				return err
			}
		}
		resp.TransferEncoding = []string{"chunked"}
		resp.ContentLength = -1
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length") // the chunks frame the body (RFC 9112 section 6.3)
		resp.Body = &chunkedBody{br: br, r: httputil.NewChunkedReader(br)}
		return nil
	}
	if len(f.lengths) > 0 {
		n, err := contentLength(f.lengths)
		if err != nil {
			return err
		}
		resp.ContentLength = n
		if len(h["Content-Length"]) > 1 {
			h["Content-Length"] = h["Content-Length"][:1]
		}
		if n == 0 {
			resp.Body = http.NoBody
			return nil
		}
		resp.Body = &fixedBody{r: br, n: n}
		return nil
	}
	// No length: the body ends with the connection.
	resp.ContentLength = -1
	resp.Close = true
	resp.Body = io.NopCloser(br)
	return nil
}

// contentLength parses the Content-Length values of a response: one number,
// or the same number repeated. A number is digits only (RFC 9110 section
// 8.6): strconv.ParseInt also takes a sign, and "+5" would frame the body
// where net/http, and likely a proxy on the way, refuses the answer.
func contentLength(values []string) (int64, error) {
	var n int64 = -1
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = trimOWS(part)
			m, err := strconv.ParseInt(part, 10, 64)
			if err != nil || !digits(part) || (n >= 0 && m != n) {
				return 0, fmt.Errorf("%w: Content-Length %q", errMalformedResponse, quoted(strings.Join(values, ", ")))
			}
			n = m
		}
	}
	return n, nil
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// trimOWS trims the spaces and tabs around s, the only white space around
// the elements of a field's list (RFC 9110 section 5.6.1). strings.TrimSpace
// would also trim Unicode spaces: "close\u00a0" would read as close where
// net/http reads another token.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// hasToken reports whether the comma-separated value v holds token, in any
// case.
func hasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(trimOWS(part), token) {
			return true
		}
	}
	return false
}

// fixedBody reads a body of n bytes; the connection ending first is
// io.ErrUnexpectedEOF.
type fixedBody struct {
	r io.Reader
	n int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF && b.n > 0:
		return n, io.ErrUnexpectedEOF
	case err == io.EOF, err == nil && b.n == 0:
		return n, io.EOF
	}
	return n, err
}

func (b *fixedBody) Close() error { return nil }

// chunkedBody reads a chunked body and, after its last chunk, the trailer
// section (ignored), so that the connection is left at the next response.
type chunkedBody struct {
	br  *bufio.Reader
	r   io.Reader
	eof bool
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		for left := maxTrailer; ; {
			line, lerr := readLine(b.br, left)
			switch {
			case lerr == errLineTooLong:
				return n, errTrailerTooLong
			case lerr != nil:
				return n, lerr // io.ErrUnexpectedEOF, or the connection's error (its deadline)
			case len(line) == 0:
				b.eof = true
				return n, err
			}
			if left -= len(line) + 2; left < 0 {
				return n, errTrailerTooLong
			}
		}
	}
	return n, err
}

// maxTrailer bounds the trailer section of a chunked answer, which the
// bridge reads (and ignores) only to reach the end of the answer: a trailer
// that never ends must not be read into memory for good.
const maxTrailer = 64 << 10

var (
	errLineTooLong    = errors.New("http: line too long")
	errTrailerTooLong = errors.New("http: chunked answer's trailer over 64 KiB")
)

func (b *chunkedBody) Close() error { return nil }
