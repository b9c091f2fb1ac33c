package webhook

import (
	"bufio"
	"runtime"
	"strings"
	"testing"
)

// A field folded over many lines (obs-fold) is joined in one pass: the
// bytes read for it cost about as much memory again, not a copy of the
// value so far for every line. Joined line by line, the 1 MiB the header may
// hold made a receiver's one answer cost the bridge tens of gigabytes of
// garbage, and a core for the whole request timeout, where net/http (the
// https path) reads the same answer in milliseconds.
func TestReadResponseFoldedFieldCostsItsSize(t *testing.T) {
	const lines = 20000
	for _, tc := range []struct {
		name string
		full bool
		want string // the header field that holds the joined value; "" when it fails the framing
	}{
		{"Retry-After", false, "Retry-After"},
		{"X-Long", true, "X-Long"},
		{"Content-Length", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "HTTP/1.1 503 Service Unavailable\r\n" + tc.name + ": 1\r\n" + strings.Repeat(" 1\r\n", lines) + "Content-Length: 0\r\n\r\n"
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := readResponse(bufio.NewReaderSize(strings.NewReader(raw), 4<<10), tc.full)
			runtime.ReadMemStats(&after)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("read %d, want the folded Content-Length refused", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got, want := resp.Header.Get(tc.want), strings.Repeat("1 ", lines)+"1"; got != want {
					t.Errorf("%s holds %d bytes, want the %d of the joined value", tc.want, len(got), len(want))
				}
			}
			if allocated, limit := after.TotalAlloc-before.TotalAlloc, uint64(64*len(raw)); allocated > limit {
				t.Errorf("reading an answer of %d bytes allocated %d bytes, want at most %d", len(raw), allocated, limit)
			}
		})
	}
}

// An error about a malformed answer quotes at most the start of the field
// at fault: a receiver's Content-Length or Transfer-Encoding of a megabyte
// went whole into the error, and so into every log line and span event
// that carries it.
func TestMalformedAnswerErrorQuotesItsStart(t *testing.T) {
	long := strings.Repeat("9x", 100<<10)
	for _, field := range []string{"Content-Length", "Transfer-Encoding"} {
		raw := "HTTP/1.1 200 OK\r\n" + field + ": " + long + "\r\n\r\n"
		_, err := readResponse(bufio.NewReader(strings.NewReader(raw)), true)
		if err == nil {
			t.Fatalf("%s of %d bytes: read, want an error", field, len(long))
		}
		if msg := err.Error(); len(msg) > 200 || !strings.Contains(msg, field) || !strings.Contains(msg, "9x9x") {
			t.Errorf("%s of %d bytes: error of %d bytes %.120q, want the field named and its start quoted", field, len(long), len(msg), msg)
		}
	}
}
