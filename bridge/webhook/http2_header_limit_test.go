package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record whose key and headers make a request header larger than the
// receiver takes is refused for what it is: over HTTP/1.1 the receiver
// answers 431, permanent, and the record is dead-lettered. An HTTP/2
// receiver advertises its limit (SETTINGS_MAX_HEADER_LIST_SIZE) and
// net/http's client refuses such a request before sending it; that must be
// permanent too, not a retryable connection error that counts against the
// breaker and pauses the route behind one record.
func TestHeaderTooLargeForHTTP2IsPermanent(t *testing.T) {
	reqs := make(chan request, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- request{method: r.Method, header: r.Header.Clone()}
	}))
	srv.Config.MaxHeaderBytes = 8 << 10
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.TLS = config.WebhookTLS{InsecureSkipVerify: true} })

	// The first request makes the connection, which brings the receiver's
	// settings.
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatalf("Deliver of a small record: %v", err)
	}
	if got := next(t, reqs).header.Get(HeaderKafkaKey); got != "user-1" {
		t.Fatalf("the receiver got key %q, want user-1", got)
	}

	big := record()
	big.Offset = 43
	big.Key = []byte(strings.Repeat("k", 64<<10))
	_, err := deliver(t, t.Context(), tg, big)
	wantKind(t, err, target.Permanent, 0)

	small := record()
	small.Offset = 44
	small.Key = []byte("user-2")
	if _, err := deliver(t, t.Context(), tg, small); err != nil {
		t.Fatalf("Deliver after the refused record: %v", err)
	}
	if got := next(t, reqs).header.Get(HeaderKafkaKey); got != "user-2" {
		t.Errorf("the receiver got key %q, want user-2 (and never the large record)", got)
	}
}
