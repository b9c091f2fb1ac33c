package webhook

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// switchProtocols answers 101 Switching Protocols to the first request and
// then keeps the connection open and silent until the test ends.
const switchProtocols = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"

// A receiver that answers 101 Switching Protocols and then says nothing is
// a retryable failure at once on every path: net/http hands such an answer's
// connection over as its body, which neither the request's timeout nor its
// context bounds, so reading it waited for good and stalled the partition.
func TestSwitchingProtocolsIsARetryableFailure(t *testing.T) {
	hold := make(chan struct{})
	answer := func(s *rawServer, c net.Conn, br *bufio.Reader) {
		if req, _ := s.readRequest(br); req == nil {
			return
		}
		_, _ = io.WriteString(c, switchProtocols)
		<-hold
	}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString(switchProtocols)
		_ = brw.Flush()
		<-hold
	}))
	t.Cleanup(tlsSrv.Close)
	direct := newRawServer(t, answer)
	proxy := newRawServer(t, answer)
	t.Cleanup(func() { close(hold) }) // first, so that the servers can stop

	for _, tc := range []struct {
		name   string
		url    string
		change func(*Options)
	}{
		{"the bridge's HTTP/1.1 client", "http://" + direct.ln.Addr().String() + "/hook", nil},
		{"the bridge's HTTP/1.1 client, as a round tripper", "http://" + direct.ln.Addr().String() + "/hook", roundTripper},
		{"net/http, https", tlsSrv.URL + "/hook", func(o *Options) { o.Config.TLS = config.WebhookTLS{InsecureSkipVerify: true} }},
		{"net/http, through a proxy", "http://receiver.example/hook", func(o *Options) {
			o.Config.Proxy.URL = "http://" + proxy.ln.Addr().String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.url, func(o *Options) {
				// Far longer than the test waits: the failure must not
				// come from the timeout.
				o.Config.Timeout = config.Duration(time.Hour)
				if tc.change != nil {
					tc.change(o)
				}
			})
			_, err := deliver(t, t.Context(), tg, record())
			if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "unexpected 101 Switching Protocols") {
				t.Errorf("err = %v (kind %v), want a retryable failure naming the 101 answer", err, target.KindOf(err))
			}
			// The answer's status, as a 5xx's, on every path (a dead
			// letter's hookbridge-error-status, the span's status code).
			if st := target.StatusOf(err); st != http.StatusSwitchingProtocols {
				t.Errorf("StatusOf = %d, want 101", st)
			}
		})
	}
}
