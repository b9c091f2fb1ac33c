package host

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

// A handler's error message goes into every log line about the record's
// failure ("dead-lettered", "circuit breaker open"), its span and its dead
// letter. The Go SDK cuts it at 16 KiB, but a plugin written without it (in
// Python, say) that quotes the record or a downstream answer in its error
// sends up to max_message_bytes (4 MiB): each of those lines was that long.
// The bridge now keeps its start, and says how much it cut.
func TestHandlerErrorMessageIsBounded(t *testing.T) {
	long := "downstream refused: " + strings.Repeat("é", 2<<20)
	for _, kind := range []handlerpb.ErrorKind{handlerpb.ErrorKind_ERROR_KIND_RETRYABLE, handlerpb.ErrorKind_ERROR_KIND_PERMANENT} {
		err := errorFromProto("enrich", &handlerpb.Error{Kind: kind, Message: long})
		msg := err.Error()
		if len(msg) > maxHandlerError+100 {
			t.Fatalf("kind %v: error message of %d bytes; want at most about %d", kind, len(msg), maxHandlerError)
		}
		if !strings.HasPrefix(msg, "plugin enrich: downstream refused: éé") || !strings.Contains(msg, "more bytes)") {
			t.Errorf("kind %v: %.80q...%q: want the message's start and how much was cut", kind, msg, msg[max(0, len(msg)-40):])
		}
		if !utf8.ValidString(msg) {
			t.Errorf("kind %v: cut inside a character", kind)
		}
		if want := map[handlerpb.ErrorKind]target.Kind{handlerpb.ErrorKind_ERROR_KIND_RETRYABLE: target.Retryable,
			handlerpb.ErrorKind_ERROR_KIND_PERMANENT: target.Permanent}[kind]; target.KindOf(err) != want {
			t.Errorf("kind %v: got %v", kind, target.KindOf(err))
		}
	}
	// A message within the bound is kept whole.
	if err := errorFromProto("enrich", &handlerpb.Error{Message: strings.Repeat("x", maxHandlerError)}); err.Error() != "plugin enrich: "+strings.Repeat("x", maxHandlerError) {
		t.Errorf("a message of %d bytes was changed", maxHandlerError)
	}
}
