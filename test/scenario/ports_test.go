package scenario

import (
	"net"
	"testing"
	"time"
)

// A port picked by the test (a listener closed, its number handed to the
// bridge) can be taken by another process before the bridge binds it; the
// bridge then exits and the test fails for nothing. Given port 0 the bridge
// binds a free port itself, and the harness learns which from its log:
// here the port a test would have picked is held by someone else, and the
// bridge still starts, answers on the address it bound and delivers.
func TestBridgeBindsAPortOfItsOwn(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	rcv := newReceiver(t, nil)
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))
	if got := p.Admin(); got == anyPort || got == taken.Addr().String() {
		t.Fatalf("admin address %q, want the one the bridge bound", got)
	}
	recs := keyed(10, 2)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "every record at /metrics", func() bool {
		return metricSum(t, p.Admin(), "hookbridge_records_delivered_total") >= float64(len(recs))
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
}
