package webhook

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// refusingProxy is a proxy that answers every request, a forward request
// (http:// webhooks) or a CONNECT (https:// webhooks) alike, with 407 Proxy
// Authentication Required and a body that quotes the credential it got.
// It reports the Proxy-Authorization of each request.
func refusingProxy(t *testing.T) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	seen := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				auth := req.Header.Get("Proxy-Authorization")
				seen <- auth
				body := "credential refused: " + auth
				_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"egress\"\r\n"+
					"Content-Length: "+itoa(len(body))+"\r\nConnection: close\r\n\r\n"+body)
			}()
		}
	}()
	return "http://hookbridge:wrong-password@" + ln.Addr().String(), seen
}

// A proxy that refuses the bridge's proxy credentials (407) refuses the
// bridge, not the record: like a 401 or 403 from the receiver, the failure is
// retryable (the breaker pauses the route), for an http:// webhook, whose
// request the proxy answers itself, as for an https:// one, whose CONNECT it
// refuses. Before, the http:// case was a permanent "other 4xx": a rotated
// proxy password dead-lettered every record. The answer's body is not quoted.
func TestProxyAuthenticationRequiredIsNotPermanent(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		for _, batch := range []bool{false, true} {
			name := scheme
			if batch {
				name += " batch"
			}
			t.Run(name, func(t *testing.T) {
				proxy, seen := refusingProxy(t)
				tg := newTarget(t, scheme+"://receiver.example/hook", func(o *Options) {
					o.Config.Proxy.URL = proxy
					o.Config.Timeout = config.Duration(5 * time.Second)
					if batch {
						o.Config.Batch = config.Batch{MaxMessages: 1}
					}
				})
				_, err := deliver(t, t.Context(), tg, record())
				if err == nil {
					t.Fatal("delivered through a proxy that refused the bridge")
				}
				if k := target.KindOf(err); k != target.Retryable {
					t.Fatalf("KindOf(%v) = %s, want retryable", err, k)
				}
				if auth := <-seen; auth == "" {
					t.Error("the proxy got no Proxy-Authorization")
				}
				// A refused CONNECT says the proxy answered, not the receiver.
				if scheme == "https" && !strings.Contains(err.Error(), "refused the CONNECT: 407 Proxy Authentication Required") {
					t.Errorf("error %q does not say the proxy refused the CONNECT", err)
				}
				for _, secret := range []string{"wrong-password", "Basic ", "credential refused"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q quotes %q", err, secret)
					}
				}
			})
		}
	}
}
