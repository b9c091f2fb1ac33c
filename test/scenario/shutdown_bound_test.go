package scenario

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// silenceable is a scenario on an in-process broker whose connections can
// be silenced: a route with a dead-letter topic (so that the bridge has a
// producer to close), shutdown_timeout 2s, a bridge delivering 600 keyed
// records to rcv, and at least 100 of them delivered.
type silenceable struct {
	b         *broker
	ln        *silentListener
	rcv       *receiver
	p         *testkit.Bridge
	path, dlq string
	raw       string
	recs      []rec
}

func newSilenceable(t *testing.T) *silenceable {
	if os.Getenv(testkit.EnvKafka) != "" {
		t.Skip("silences the in-process broker's connections; the real e2e broker is shared by every test (this scenario runs in go test ./...)")
	}
	s := &silenceable{}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		s.ln = &silentListener{Listener: l}
		return s.ln, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	s.b = &broker{&testkit.Broker{Addrs: cluster.ListenAddrs()}}
	topic, group := topicName(t, "in"), topicName(t, "g")
	s.dlq = topicName(t, "dlq")
	s.b.CreateTopic(t, topic, 3)
	s.b.CreateTopic(t, s.dlq, 1)
	s.rcv = newReceiver(t, func(d delivery, n int) int {
		time.Sleep(2 * time.Millisecond) // keeps deliveries in flight
		return 200
	})
	s.path = s.b.config(t, routeSpec{Topic: topic, DLQ: s.dlq, Group: group, URL: s.rcv.url()})
	s.raw = strings.Replace(mustRead(t, s.path), "shutdown_timeout: 10s", "shutdown_timeout: 2s", 1)
	if err := os.WriteFile(s.path, []byte(s.raw), 0o600); err != nil {
		t.Fatal(err)
	}
	s.p = startBridge(t, s.path)
	s.recs = keyed(600, 20)
	s.b.produce(t, topic, s.recs)
	waitFor(t, time.Minute, "the first deliveries", func() bool { return s.rcv.uniqueAccepted() >= 100 })
	return s
}

// stop sends SIGTERM and checks that the bridge exits 1 with a line that
// has want in it.
func (s *silenceable) stop(t *testing.T, want string) {
	t.Helper()
	if code := s.p.Stop(); code != 1 {
		t.Fatalf("exit code %d, want 1 (the shutdown could not finish)\n%s", code, testkit.Tail(s.p.Log(), 20))
	}
	if !strings.Contains(s.p.Log(), want) {
		t.Fatalf("no line says %q:\n%s", want, testkit.Tail(s.p.Log(), 20))
	}
}

// recover lets the broker answer again and checks that a new bridge on the
// original file delivers every record, in order per key, and dead-letters
// nothing.
func (s *silenceable) recover(t *testing.T) {
	t.Helper()
	s.ln.speak()
	if err := os.WriteFile(s.path, []byte(s.raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBridge(t, s.path)
	waitFor(t, time.Minute, "every record once the brokers answer", func() bool { return s.rcv.uniqueAccepted() >= len(s.recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d after the brokers answer again", code)
	}
	checkDelivered(t, s.rcv, s.recs)
	if n := len(s.b.readAll(t, s.dlq)); n != 0 {
		t.Fatalf("%d records dead-lettered, want 0", n)
	}
}

// A SIGTERM while the brokers accept connections but answer nothing still
// ends the process: past shutdown_timeout plus 5 s the bridge gives up on
// the final commit, the group leave and the producer's close (sarama waits on
// them without a bound), says so and exits 1. Before, it waited for good
// (27 minutes and counting in the audit). Nothing is lost: once the brokers
// answer again, a new bridge delivers every record, in order per key.
func TestShutdownEndsWhenTheBrokersStopAnswering(t *testing.T) {
	s := newSilenceable(t)
	s.ln.hush()
	s.stop(t, "shutdown did not finish within shutdown_timeout")
	s.recover(t)
}

// The same with a SIGHUP reload under way when SIGTERM comes: the reload
// waits on the silent brokers and holds the bridge's loop, so the bridge's
// own bound never starts; the process's last resort ends it
// shutdown_timeout + 15 s after the signal.
func TestShutdownEndsDuringAReloadTheBrokersDoNotAnswer(t *testing.T) {
	s := newSilenceable(t)
	s.ln.hush()
	changed := strings.Replace(s.raw, "concurrency: 32", "concurrency: 16", 1)
	if changed == s.raw {
		t.Fatalf("the route has no concurrency: 32 to change:\n%s", s.raw)
	}
	if err := os.WriteFile(s.path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = s.p.Signal(syscall.SIGHUP)
	waitFor(t, 30*time.Second, "the reload to start", func() bool { return strings.Contains(s.p.Log(), "applying a new configuration") })
	s.stop(t, "shutdown is stuck")
	s.recover(t)
}

// A second SIGTERM during the drain ends the process at once, as the
// signal's default does (an operator pressing Ctrl-C again), rather than
// after shutdown_timeout. What it did not commit is delivered again by the
// next bridge.
func TestSecondSignalEndsTheShutdownAtOnce(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	// A receiver that does not answer: the drain waits for it.
	var arrived atomic.Int32
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body) // then the server notices the bridge's end, which ends ctx
		arrived.Add(1)
		<-req.Context().Done()
	}))
	t.Cleanup(silent.Close)
	path := b.config(t, routeSpec{Topic: topic, Group: group, URL: silent.URL + "/hook"})
	// The drain would last 2 minutes (the request's timeout and
	// shutdown_timeout): longer than the harness waits for an exit.
	raw := strings.Replace(mustRead(t, path), "shutdown_timeout: 10s", "shutdown_timeout: 2m", 1)
	raw = strings.Replace(raw, "timeout: 5s", "timeout: 2m", 1)
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBridge(t, path)
	recs := keyed(20, 2)
	b.produce(t, topic, recs)
	waitFor(t, 30*time.Second, "a delivery in flight", func() bool { return arrived.Load() > 0 })
	_ = p.Signal(syscall.SIGTERM)
	waitFor(t, 30*time.Second, "the drain to start", func() bool { return strings.Contains(p.Log(), "shutting down") })
	_ = p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code == 0 {
		t.Fatalf("exit code 0: the second signal should end the process at once")
	}
	if strings.Contains(p.Log(), "hookbridge stopped") {
		t.Fatalf("the drain ran to its end:\n%s", testkit.Tail(p.Log(), 10))
	}

	rcv := newReceiver(t, nil)
	p2 := startBridge(t, b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))
	waitFor(t, time.Minute, "every record from the next bridge", func() bool { return rcv.uniqueAccepted() >= len(recs) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	checkDelivered(t, rcv, recs)
}
