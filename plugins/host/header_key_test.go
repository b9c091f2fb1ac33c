package host_test

import (
	"strings"
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
	check := callsInFlight(t, p, pid, "the bad record came")
	d := delivery(9, "", []byte("v"))
	d.Record.Headers = []target.Header{{Key: "ok", Value: []byte("x")}, {Key: "bad\xffkey", Value: []byte("y")}}
	_, err := p.Deliver(t.Context(), d)
	if err == nil || target.KindOf(err) != target.Permanent || !strings.Contains(err.Error(), "header 1") {
		t.Errorf("the record with the bad header key: err = %v (kind %v), want a permanent error naming header 1", err, target.KindOf(err))
	}
	check()
	if s := p.Stats(); s.Restarts != 0 || s.Started != 1 {
		t.Errorf("stats = %+v, want the one process kept", s)
	}
}
