package webhook

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// answers a receiver may give, each followed on its connection by another.
var answers = map[string]string{
	"content-length":      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc",
	"uvicorn":             "HTTP/1.1 200 OK\r\ndate: Thu, 26 Nov 2026 13:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: 0\r\n\r\n",
	"no content":          "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n",
	"accepted":            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}",
	"chunked":             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
	"chunked trailer":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
	"chunked and length":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n1\r\nz\r\n0\r\n\r\n",
	"repeated fields":     "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nvary: a\r\nVary: b\r\nx-custom-thing: 1\r\nContent-Length: 4\r\n\r\nbusy",
	"same length twice":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"lower-case names":    "HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 1\r\ncontent-type: text/plain\r\n\r\n!",
	"spaces":              "HTTP/1.1 200 OK\r\nContent-Type:   text/plain  \r\nX-Tab:\tv\t\r\nContent-Length: 1\r\n\r\n.",
	"bare LF":             "HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
	"connection close":    "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
	"keep-alive, close":   "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx",
	"http/1.0":            "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"http/1.0 keep-alive": "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
	"unknown code":        "HTTP/1.1 299 Fine Anyway\r\nContent-Length: 0\r\n\r\n",
	"no reason":           "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"redirect":            "HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n",
	"1xx first":           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"long field":          "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 10000) + "\r\nContent-Length: 1\r\n\r\nx",
	"empty header":        "HTTP/1.1 200 OK\r\n\r\nuntil the end",
}

const nextAnswer = "HTTP/1.1 204 No Content\r\n\r\n"

// With the full header, readResponse gives what net/http's ReadResponse
// gives: status, header, framing, body, and the reader left at the next
// answer.
func TestReadResponseAgreesWithNetHTTP(t *testing.T) {
	netHTTP := func(br *bufio.Reader, _ bool) (*http.Response, error) {
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode >= 200 {
				return resp, err
			}
		}
	}
	for name, raw := range answers {
		t.Run(name, func(t *testing.T) {
			ours, ourBody, ourRest := readWith(t, raw+nextAnswer, readResponse, true)
			theirs, theirBody, theirRest := readWith(t, raw+nextAnswer, netHTTP, true)
			if ours.StatusCode != theirs.StatusCode || ours.Status != theirs.Status || ours.Proto != theirs.Proto ||
				ours.Close != theirs.Close || ours.ContentLength != theirs.ContentLength ||
				!reflect.DeepEqual(ours.TransferEncoding, theirs.TransferEncoding) {
				t.Errorf("ours: %q %s close=%v length=%d te=%v\nnet/http: %q %s close=%v length=%d te=%v",
					ours.Status, ours.Proto, ours.Close, ours.ContentLength, ours.TransferEncoding,
					theirs.Status, theirs.Proto, theirs.Close, theirs.ContentLength, theirs.TransferEncoding)
			}
			if !reflect.DeepEqual(ours.Header, theirs.Header) {
				t.Errorf("header\n ours:     %q\n net/http: %q", ours.Header, theirs.Header)
			}
			if ourBody != theirBody || ourRest != theirRest {
				t.Errorf("body %q then %q; net/http %q then %q", ourBody, ourRest, theirBody, theirRest)
			}
		})
	}
}

// Without the full header, the answer is framed the same and its header
// holds Content-Type and Retry-After only.
func TestReadResponseLeanHeader(t *testing.T) {
	for name, raw := range answers {
		t.Run(name, func(t *testing.T) {
			full, fullBody, fullRest := readWith(t, raw+nextAnswer, readResponse, true)
			lean, leanBody, leanRest := readWith(t, raw+nextAnswer, readResponse, false)
			if lean.StatusCode != full.StatusCode || lean.Close != full.Close || lean.ContentLength != full.ContentLength ||
				leanBody != fullBody || leanRest != fullRest {
				t.Errorf("lean: %d close=%v length=%d %q then %q\nfull: %d close=%v length=%d %q then %q",
					lean.StatusCode, lean.Close, lean.ContentLength, leanBody, leanRest,
					full.StatusCode, full.Close, full.ContentLength, fullBody, fullRest)
			}
			want := http.Header{}
			for _, k := range []string{"Content-Type", "Retry-After"} {
				if v, ok := full.Header[k]; ok {
					want[k] = v
				}
			}
			if len(want) == 0 {
				want = nil
			}
			if !reflect.DeepEqual(lean.Header, want) {
				t.Errorf("lean header %q, want %q", lean.Header, want)
			}
		})
	}
}

// readWith reads one answer from raw with read, its body to the end, and
// what is left after it (nothing when the body ran to the connection's end).
func readWith(t *testing.T, raw string, read func(*bufio.Reader, bool) (*http.Response, error), full bool) (*http.Response, string, string) {
	t.Helper()
	br := bufio.NewReaderSize(strings.NewReader(raw), 4<<10)
	resp, err := read(br, full)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	_ = resp.Body.Close()
	rest, _ := io.ReadAll(br)
	return resp, string(body), string(rest)
}

// malformedAnswers cannot be read safely: they are errors, never a guess.
var malformedAnswers = map[string]string{
	"not http":            "SSH-2.0-OpenSSH\r\n\r\n",
	"http/2 text":         "HTTP/2 200\r\n\r\n",
	"short code":          "HTTP/1.1 20 OK\r\n\r\n",
	"letters in code":     "HTTP/1.1 2x0 OK\r\n\r\n",
	"code run-on":         "HTTP/1.1 2000 OK\r\n\r\n",
	"space in name":       "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	"no colon":            "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
	"fold first":          "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
	"control in value":    "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
	"bad length":          "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"conflicting lengths": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
	"gzip encoding":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"switching protocols": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	"header cut short":    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
	"nothing":             "",
}

// Answers that cannot be read safely are errors, never a guess.
func TestReadResponseRefusesMalformedAnswers(t *testing.T) {
	for name, raw := range malformedAnswers {
		for _, full := range []bool{true, false} {
			if resp, err := readResponse(bufio.NewReader(strings.NewReader(raw)), full); err == nil {
				t.Errorf("%s (full %v): read %d %v, want an error", name, full, resp.StatusCode, resp.Header)
			}
		}
	}
}

// A body the connection cuts short is an error, not a short body.
func TestReadResponseBodyCutShort(t *testing.T) {
	for name, raw := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
		"no trailer end": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
	} {
		resp, err := readResponse(bufio.NewReader(strings.NewReader(raw)), false)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err = %v, want %v", name, err, io.ErrUnexpectedEOF)
		}
	}
}

// An obs-folded value is joined with a space, as RFC 9112 asks of a client;
// one that continues a field the lean header does not keep is dropped with
// it.
func TestReadResponseFoldedValue(t *testing.T) {
	raw := "HTTP/1.1 429 Too Many Requests\r\nX-Folded: one\r\n  two\r\nRetry-After:\r\n\t5\r\nContent-Length: 0\r\n\r\n"
	for _, full := range []bool{true, false} {
		resp, err := readResponse(bufio.NewReader(strings.NewReader(raw)), full)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Retry-After"); got != "5" {
			t.Errorf("full %v: Retry-After = %q, want 5", full, got)
		}
		if want := map[bool]string{true: "one two", false: ""}[full]; resp.Header.Get("X-Folded") != want {
			t.Errorf("full %v: X-Folded = %q, want %q", full, resp.Header.Get("X-Folded"), want)
		}
	}
}

// endless serves head, then repeats fill for good, counting what it served.
type endless struct {
	head, fill []byte
	served     int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := e.fill
		if e.served < len(e.head) {
			src = e.head[e.served:]
		} else {
			src = src[(e.served-len(e.head))%len(src):]
		}
		c := copy(p[n:], src)
		n += c
		e.served += c
	}
	return n, nil
}

// The trailer of a chunked answer, which the bridge reads only to reach the
// answer's end, is bounded: one that never ends, as one endless line or as
// endless short lines, fails the body's read after 64 KiB instead of being
// read into memory for as long as the receiver sends it.
func TestChunkedTrailerIsBounded(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n"
	for name, fill := range map[string]string{
		"one endless line":    "a",
		"endless short lines": "X-Trailer: 1\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			src := &endless{head: []byte(head), fill: []byte(fill)}
			resp, err := readResponse(bufio.NewReaderSize(src, 4<<10), false)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, errTrailerTooLong) {
				t.Fatalf("reading the body: %v, want %v", err, errTrailerTooLong)
			}
			if string(body) != "z" {
				t.Errorf("body %q, want %q", body, "z")
			}
			if limit := len(head) + maxTrailer + 2*(4<<10); src.served > limit {
				t.Errorf("read %d bytes of the answer, want at most %d", src.served, limit)
			}
		})
	}
}
