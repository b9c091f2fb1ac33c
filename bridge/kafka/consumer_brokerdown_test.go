package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// downListener is a broker's listener whose connections can be broken, as
// between a bridge and brokers that went away. Refuse closes every
// connection and those accepted from then on at once, as a broker that is
// down does; hush makes every connection take the client's bytes and answer
// nothing, as a broker behind a network that drops packets, or hung, does.
// restore closes the connections made until then (the broker is back, with
// none of their state) and lets new ones work.
type downListener struct {
	net.Listener
	mu      sync.Mutex
	refused bool
	silent  bool
	conns   []*downConn
}

type downConn struct {
	net.Conn
	silent atomic.Bool
}

func (c *downConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.silent.Load() {
			return n, err
		}
		// swallowed: the broker never sees the request
	}
}

func (c *downConn) Write(p []byte) (int, error) {
	if c.silent.Load() {
		return len(p), nil // the answer is lost
	}
	return c.Conn.Write(p)
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.refused {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		dc := &downConn{Conn: c}
		dc.silent.Store(l.silent)
		l.conns = append(l.conns, dc)
		l.mu.Unlock()
		return dc, nil
	}
}

func (l *downListener) refuse() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused = true
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func (l *downListener) hush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.silent = true
	for _, c := range l.conns {
		c.silent.Store(true)
	}
}

func (l *downListener) restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused, l.silent = false, false
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// startBreakable starts a one-broker kfake cluster with topic of the given
// partitions behind a downListener; both end with the test.
func startBreakable(t *testing.T, topic string, partitions int32) (*kfake.Cluster, *downListener) {
	t.Helper()
	var ln *downListener
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			ln = &downListener{Listener: l}
			return ln, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, ln
}

// deliveryCounter is a target that accepts every record and counts the
// deliveries of each partition/offset.
type deliveryCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *deliveryCounter) Deliver(_ context.Context, d *target.Delivery) (*target.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[string]int)
	}
	r.seen[fmt.Sprintf("%d/%d", d.Record.Partition, d.Record.Offset)]++
	return nil, nil
}

// distinct returns how many records were delivered, each counted once.
func (r *deliveryCounter) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// brokenRig is a route's consumer of a topic on a breakable broker, logging
// to logs; stop ends it as SIGTERM does.
type brokenRig struct {
	c      *Consumer
	ln     *downListener
	addrs  []string
	topic  string
	tg     *deliveryCounter
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error
}

func newBrokenRig(t *testing.T, topic string, partitions int32, tune func(*Consumer)) *brokenRig {
	t.Helper()
	cluster, ln := startBreakable(t, topic, partitions)
	r := &brokenRig{ln: ln, addrs: cluster.ListenAddrs(), topic: topic, tg: &deliveryCounter{}, logs: &logBuffer{},
		done: make(chan error, 1)}
	r.c = NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: r.addrs, Sarama: groupConfig(t), Target: r.tg,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), ShutdownTimeout: 5 * time.Second})
	r.c.offsetsEvery = 100 * time.Millisecond
	tune(r.c)
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- r.c.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func (r *brokenRig) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for a second stop
		return err
	case <-time.After(2 * patience):
		return fmt.Errorf("route %s: Run did not return", r.c.opts.Route.Name)
	}
}

func (r *brokenRig) state() string {
	return fmt.Sprintf("%d records delivered, %d consumer errors; %s", r.tg.distinct(), r.c.nErrors.Load(), describe(r.c, r.topic))
}

// deliveredAndCommitted waits until n records were delivered and partition
// 0 of the rig's topic is committed at n, the route ready and its own check
// of the commits caught up with them.
func (r *brokenRig) deliveredAndCommitted(t *testing.T, n int) {
	t.Helper()
	admin := newAdmin(t, r.addrs)
	waitFor(t, fmt.Sprintf("%d records delivered and committed, the route ready", n), func() bool {
		return r.tg.distinct() == n && committed(t, admin, r.c.opts.Route.GroupID(), r.topic) == int64(n) && r.c.Ready() == nil &&
			!r.behind()
	}, r.state)
}

// behind reports whether the consumer found a partition's committed offset
// below its marks the last time it looked.
func (r *brokenRig) behind() bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	for _, p := range r.c.parts {
		if p.behindSince.Load() != 0 {
			return true
		}
	}
	return false
}

// While the broker is down, sarama reports an error for every partition at
// each of its retries, about one a second each. The route logs the first at
// once and counts the others into one line a window (errorsEvery, here
// longer than the test): before, each was a line of its own, hundreds a
// second for a route of many partitions, for as long as an outage lasted.
// Once the broker is back the route consumes again on its own and commits,
// and when it stops the last line counts every error not logged.
func TestConsumerLogsFewLinesWhileTheBrokerIsDown(t *testing.T) {
	const partitions = 24
	r := newBrokenRig(t, "down", partitions, func(c *Consumer) { c.errorsEvery = time.Hour })
	produceN(t, r.addrs, r.topic, 5)
	r.deliveredAndCommitted(t, 5)

	r.ln.refuse()
	waitFor(t, "sarama to report an error per partition three times over", func() bool {
		return r.c.nErrors.Load() >= 3*partitions
	}, r.state)
	if n := strings.Count(r.logs.String(), `msg="kafka consumer error"`); n != 1 {
		t.Fatalf("%d lines say kafka consumer error for %d errors, want 1:\n%s", n, r.c.nErrors.Load(), r.logs)
	}

	r.ln.restore()
	produceN(t, r.addrs, r.topic, 5)
	r.deliveredAndCommitted(t, 10)
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	lines := regexp.MustCompile(`msg="kafka consumer error".*`).FindAllString(r.logs.String(), -1)
	if len(lines) != 2 {
		t.Fatalf("%d lines say kafka consumer error, want 2 (the first error, then the others counted):\n%s", len(lines), r.logs)
	}
	m := regexp.MustCompile(` repeated=(\d+) `).FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("the last line does not say how many errors it stands for: %s", lines[1])
	}
	if got, want := m[1], strconv.FormatInt(r.c.nErrors.Load()-1, 10); got != want {
		t.Errorf("the last line stands for %s errors, want %s (every one but the first): %s", got, want, lines[1])
	}
}

// A broker that stops answering (it hangs, or the network drops its
// packets) makes the route not ready once its group's coordinator has not
// answered for silentAfter (here shortened): before, Ready stayed nil for
// minutes, until sarama's heartbeats had each waited out their read timeout
// and the session ended, while the route consumed and committed nothing.
// Once the broker answers again the route consumes on its own, commits and
// is ready.
func TestConsumerNotReadyWhileItsBrokerDoesNotAnswer(t *testing.T) {
	r := newBrokenRig(t, "silent", 1, func(c *Consumer) { c.silentAfter = 2 * time.Second })
	produceN(t, r.addrs, r.topic, 5)
	r.deliveredAndCommitted(t, 5)

	r.ln.hush()
	waitFor(t, "Ready to say that the coordinator does not answer", func() bool {
		err := r.c.Ready()
		return err != nil && strings.Contains(err.Error(), "the coordinator of group hookbridge.silent has not answered for")
	}, r.state)

	r.ln.restore()
	produceN(t, r.addrs, r.topic, 5)
	r.deliveredAndCommitted(t, 10)
}
