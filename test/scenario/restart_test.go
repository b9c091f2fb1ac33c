package scenario

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// The broker restarts mid-stream (an in-process broker that keeps its data
// on disk is stopped and started again on the same port): the bridge
// reconnects on its own, every record is delivered, first deliveries keep
// per-key order, and every partition ends committed to its end. Only the
// in-process broker can be restarted by a test; the real one is shared.
func TestBrokerRestartMidStream(t *testing.T) {
	if os.Getenv(testkit.EnvKafka) != "" {
		t.Skip("restarts the in-process broker; the real e2e broker is shared by every test (this scenario runs in go test ./...)")
	}
	dir := t.TempDir()
	// The first start picks a free port itself; the restart binds that port
	// again, and tries again while another process holds it for a moment.
	port := 0
	start := func() *kfake.Cluster {
		var c *kfake.Cluster
		var err error
		waitFor(t, 30*time.Second, fmt.Sprintf("the broker to listen on port %d", port), func() bool {
			c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SyncWrites())
			if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatal(err)
			}
			return err == nil
		})
		return c
	}
	c := start()
	b := &broker{&testkit.Broker{Addrs: c.ListenAddrs()}}
	_, portText, _ := net.SplitHostPort(c.ListenAddrs()[0])
	port, _ = strconv.Atoi(portText)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 6)
	rcv := newReceiver(t, func(d delivery, n int) int { time.Sleep(2 * time.Millisecond); return 200 })
	p := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))

	recs := keyed(6000, 60)
	produced := b.produce(t, topic, recs)
	waitFor(t, time.Minute, "some deliveries", func() bool { return rcv.uniqueAccepted() >= 1500 })
	c.Close()
	down := rcv.uniqueAccepted()
	c = start()
	t.Cleanup(c.Close)
	waitFor(t, 3*time.Minute, "every record after the broker restart", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	dup := checkDelivered(t, rcv, recs)
	t.Logf("broker restarted after %d of %d delivered: every record delivered, %d duplicates", down, len(recs), dup)
	assertCommittedToEnd(t, b, group, topic, produced)
}
