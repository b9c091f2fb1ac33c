package webhook

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A receiver over HTTPS closes a kept-alive connection just as the next
// request goes out on it: the request gets no answer (EOF). net/http sends
// a POST once more on a new connection only when it is marked replayable;
// the target marks it (as the direct path sends such a request again), so
// the record is delivered instead of failing an attempt against the
// breaker. The mark is not sent.
func TestHTTPSRequestOnAConnectionClosedAsItWasReusedIsSentAgain(t *testing.T) {
	serverCA := newPKI(t, "server")
	cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var conns, answered atomic.Int32
	sawMark := make(chan string, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, ok := req.Header["Idempotency-Key"]; ok {
						sawMark <- req.Header.Get("Idempotency-Key")
					}
					if n == 1 && i == 1 {
						return // the second request on the first connection: closed, unanswered
					}
					answered.Add(1)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()

	tg := newTarget(t, "https://"+ln.Addr().String()+"/hook", func(o *Options) {
		o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile}
	})
	for i := range 2 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	if n, a := conns.Load(), answered.Load(); n != 2 || a != 2 {
		t.Errorf("%d connections, %d answers; want the second request sent again on a second connection", n, a)
	}
	select {
	case v := <-sawMark:
		t.Errorf("the receiver got an Idempotency-Key header (%q): the mark must not be sent", v)
	default:
	}
}
