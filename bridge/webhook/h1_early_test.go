package webhook

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A receiver that answers a large request at once (413 from its
// Content-Length) and then reads no more of it, without closing, has
// answered: the record is refused (permanent), as net/http's client reports
// it, not timed out while the bridge waits to write a body nobody reads.
func TestEarlyAnswerWhileTheReceiverStopsReading(t *testing.T) {
	for _, tc := range clientPaths {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!"))
				<-release // neither reads nor closes until the test ends
			})
			t.Cleanup(func() { close(release) })
			tg := newTarget(t, srv.url(), func(o *Options) {
				o.Config.Timeout = config.Duration(3 * time.Second) // a hang guard
				if tc.change != nil {
					tc.change(o)
				}
			})
			rec := record()
			rec.Value = make([]byte, 32<<20)
			_, err := deliver(t, t.Context(), tg, rec)
			wantKind(t, err, target.Permanent, http.StatusRequestEntityTooLarge)
		})
	}
}

// In batch mode such an answer is a refusal as a whole: the records go again
// one by one, and each, small enough alone, is delivered.
func TestBatchEarlyRefusalWhileTheReceiverStopsReading(t *testing.T) {
	const limit = 12 << 20
	release := make(chan struct{})
	srv := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.ContentLength > limit {
				_, _ = c.Write([]byte("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
				<-release // neither reads nor closes until the test ends
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			s.reqs.Add(1)
			if _, err := io.WriteString(c, ok("")); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { close(release) })
	tg := newTarget(t, srv.url(), func(o *Options) {
		o.Config.Timeout = config.Duration(3 * time.Second) // a hang guard
		o.Config.Batch = config.Batch{MaxMessages: 2, MaxBytes: 64 << 20, MaxWait: config.Duration(time.Second)}
	})
	recs := []*target.Record{
		{Topic: "orders", Partition: 0, Offset: 1, Value: make([]byte, 8<<20)},
		{Topic: "orders", Partition: 1, Offset: 1, Value: make([]byte, 8<<20)},
	}
	for i, err := range deliverAll(t, tg, recs) {
		if err != nil {
			t.Errorf("record %d: %v, want delivered alone after the batch was refused", i, err)
		}
	}
	if n := srv.reqs.Load(); n != 2 {
		t.Errorf("the receiver accepted %d requests, want the 2 records one by one", n)
	}
}
