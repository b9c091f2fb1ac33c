package scenario

import (
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// silentListener is a broker's listener that can go silent: from then on,
// every connection, open or new, takes the client's bytes and answers
// nothing, as a broker behind a network that drops packets, or hung, does.
// speak makes the connections accepted afterwards work again.
type silentListener struct {
	net.Listener
	silent atomic.Bool
	mu     sync.Mutex
	conns  []*silentConn
}

type silentConn struct {
	net.Conn
	silent atomic.Bool
}

func (c *silentConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.silent.Load() {
			return n, err
		}
		// swallowed: the broker never sees the request
	}
}

func (c *silentConn) Write(p []byte) (int, error) {
	if c.silent.Load() {
		return len(p), nil // the answer is lost
	}
	return c.Conn.Write(p)
}

func (l *silentListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &silentConn{Conn: c}
	l.mu.Lock()
	defer l.mu.Unlock()
	sc.silent.Store(l.silent.Load())
	l.conns = append(l.conns, sc)
	return sc, nil
}

func (l *silentListener) hush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.silent.Store(true)
	for _, c := range l.conns {
		c.silent.Store(true)
	}
}

func (l *silentListener) speak() { l.silent.Store(false) }

// A SIGTERM while the brokers accept connections but answer nothing still
// ends the process: past shutdown_timeout plus 5 s the bridge gives up on
// the final commit, the group leave and the producer's close (sarama waits on
// them without a bound), says so and exits 1. Before, it waited for good
// (27 minutes and counting in the audit). Nothing is lost: once the brokers
// answer again, a new bridge delivers every record, in order per key.
func TestShutdownEndsWhenTheBrokersStopAnswering(t *testing.T) {
	if os.Getenv(testkit.EnvKafka) != "" {
		t.Skip("silences the in-process broker's connections; the real e2e broker is shared by every test (this scenario runs in go test ./...)")
	}
	var ln *silentListener
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		ln = &silentListener{Listener: l}
		return ln, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	b := &broker{&testkit.Broker{Addrs: cluster.ListenAddrs()}}
	topic, dlq, group := topicName(t, "in"), topicName(t, "dlq"), topicName(t, "g")
	b.CreateTopic(t, topic, 3)
	b.CreateTopic(t, dlq, 1) // so that the bridge has a producer to close
	rcv := newReceiver(t, func(d delivery, n int) int {
		time.Sleep(2 * time.Millisecond) // keeps deliveries in flight
		return 200
	})
	admin := freePort(t)
	path := b.config(t, admin, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()})
	raw := strings.Replace(mustRead(t, path), "shutdown_timeout: 10s", "shutdown_timeout: 2s", 1)
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBridge(t, path, admin)
	recs := keyed(600, 20)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "the first deliveries", func() bool { return rcv.uniqueAccepted() >= 100 })

	ln.hush()
	if code := p.Stop(); code != 1 {
		t.Fatalf("exit code %d, want 1 (the shutdown could not finish)\n%s", code, testkit.Tail(p.Log(), 20))
	}
	if !strings.Contains(p.Log(), "shutdown did not finish within shutdown_timeout") {
		t.Fatalf("no line says why the shutdown was cut short:\n%s", testkit.Tail(p.Log(), 20))
	}

	ln.speak()
	p2 := startBridge(t, path, admin)
	waitFor(t, time.Minute, "every record once the brokers answer", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d after the brokers answer again", code)
	}
	checkDelivered(t, rcv, recs)
	if n := len(b.readAll(t, dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
}
