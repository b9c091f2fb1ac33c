package webhook

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// A load balancer in front of an https receiver drops a kept-alive
// connection while it is idle and resets it when the next request arrives
// on it: that request never reached the receiver. net/http sends such a
// replayable request again when its read fails first, but a large request
// (1 MiB here, a Kafka record at its default limit, or a batch) is still
// being written, and about half the time its broken write wins the race
// and the request failed: an attempt spent, a failure counted against the
// breaker, for a record the receiver never saw. Every record is now
// delivered, each handled once.
func TestHTTPSRequestOnAConnectionResetAsItWasReusedIsSentAgain(t *testing.T) {
	serverCA := newPKI(t, "server")
	cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"record", false}, {"batch", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
				MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu      sync.Mutex
				handled = map[string]int{} // by the request's webhook-id
				resets  atomic.Int32
				wg      sync.WaitGroup
			)
			t.Cleanup(func() {
				_ = ln.Close()
				wg.Wait()
			})
			wg.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Go(func() {
						defer c.Close()
						br := bufio.NewReader(c)
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						if _, err := io.Copy(io.Discard, req.Body); err != nil {
							return
						}
						mu.Lock()
						handled[req.Header.Get(HeaderWebhookID)]++
						mu.Unlock()
						if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
							return
						}
						// The first bytes of the next request meet a flow the
						// balancer dropped: a reset.
						raw := c.(*tls.Conn).NetConn().(*net.TCPConn)
						if _, err := raw.Read(make([]byte, 1)); err != nil {
							return
						}
						_ = raw.SetLinger(0)
						resets.Add(1)
					})
				}
			})

			tg := newTarget(t, "https://"+ln.Addr().String()+"/hook", func(o *Options) {
				o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile}
				if tc.batch {
					o.Config.Batch = config.Batch{MaxMessages: 1, MaxWait: config.Duration(time.Millisecond)}
				}
			})
			const records = 200
			failed := 0
			for i := range records {
				rec := record()
				rec.Offset = int64(i)
				rec.Value = make([]byte, 1<<20)
				if _, err := deliver(t, t.Context(), tg, rec); err != nil {
					if failed++; failed <= 3 {
						t.Errorf("record %d: %v", i, err)
					}
				}
			}
			if failed > 0 {
				t.Errorf("%d of %d records failed an attempt on a connection the balancer reset, though the receiver is up", failed, records)
			}
			if resets.Load() == 0 {
				t.Fatal("no connection was reset: the test tests nothing")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(handled) != records-failed {
				t.Errorf("the receiver handled %d requests, want %d", len(handled), records-failed)
			}
			for id, n := range handled {
				if n != 1 {
					t.Errorf("request %s handled %d times", id, n)
				}
			}
		})
	}
}
