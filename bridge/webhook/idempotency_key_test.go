package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// An Idempotency-Key the route's headers configure reaches an https
// receiver as it reaches a plain-HTTP one. The mark that lets net/http send
// a request again (an Idempotency-Key entry without a value) replaced it,
// so over https the header was left out: a receiver that requires it
// answered 400, and every record was dead-lettered. A configured value
// marks the request replayable by itself.
func TestHTTPSKeepsAConfiguredIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h2    bool
		batch bool
	}{
		{"http/1.1", false, false},
		{"h2", true, false},
		{"http/1.1 batch", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverCA := newPKI(t, "server")
			cert, _, _ := serverCA.issue(t, "receiver", true, nil, net.IPv4(127, 0, 0, 1))
			got := make(chan []string, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case got <- r.Header.Values("Idempotency-Key"):
				default:
				}
			}))
			srv.EnableHTTP2 = tc.h2
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			srv.StartTLS()
			t.Cleanup(srv.Close)

			tg := newTarget(t, srv.URL+"/hook", func(o *Options) {
				o.Config.TLS = config.WebhookTLS{CAFile: serverCA.caFile}
				o.Config.Headers = map[string]string{"Idempotency-Key": "route-orders"}
				if tc.batch {
					o.Config.Batch = config.Batch{MaxMessages: 1, MaxWait: config.Duration(time.Millisecond)}
				}
			})
			if _, err := deliver(t, t.Context(), tg, record()); err != nil {
				t.Fatalf("delivery: %v", err)
			}
			select {
			case vs := <-got:
				if len(vs) != 1 || vs[0] != "route-orders" {
					t.Errorf("the receiver got Idempotency-Key %q, want the configured [route-orders]", vs)
				}
			default:
				t.Fatal("the receiver got no request")
			}
		})
	}
}
