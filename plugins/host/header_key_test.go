package host_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A record header's key is a string in the plugin protocol, and proto3
// strings must be UTF-8; a producer other than Java's may write any bytes.
// Such a record fails alone, as permanent, before it goes on the stream: gRPC
// refusing to marshal it would end the stream with every call on it, and the
// host would replace a healthy process and retry them all, again and again.
func TestHeaderKeyNotUTF8FailsOnlyItsRecord(t *testing.T) {
	p, _ := startOne(t, func(c *config.Plugin) { c.ConcurrencyPerInstance = 8 })
	pid := p.PIDs()[0]
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			want := fmt.Sprintf("value-%d", i)
			res, err := p.Deliver(t.Context(), delivery(int64(i), "sleep:300ms", []byte(want)))
			if err != nil {
				t.Errorf("call %d, in flight when the bad record came: %v", i, err)
				return
			}
			if got := replyPID(t, res); got != pid || string(res.Outputs[0].Value) != want {
				t.Errorf("call %d answered %q by pid %d, want %q by %d", i, res.Outputs[0].Value, got, want, pid)
			}
		})
	}
	waitFor(t, "the calls in flight", func() bool { return p.Stats().InFlight == 4 })
	d := delivery(9, "", []byte("v"))
	d.Record.Headers = []target.Header{{Key: "ok", Value: []byte("x")}, {Key: "bad\xffkey", Value: []byte("y")}}
	_, err := p.Deliver(t.Context(), d)
	if err == nil || target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), "header 1") {
		t.Errorf("the record with the bad header key: err = %v (kind %v), want a permanent error naming header 1", err, target.KindOf(err))
	}
	wg.Wait()
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 {
		t.Errorf("stats = %+v, want the one process kept", s)
	}
}
