package scenario

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// hostAddr is a listener address as a broker's metadata gives it.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// advertisingListener accepts on its own address and gives advertised as
// its address, which kfake puts in its metadata.
type advertisingListener struct {
	net.Listener
	advertised string
}

func (l advertisingListener) Addr() net.Addr { return hostAddr(l.advertised) }

// The most common first-day mistake: the bootstrap address answers, but
// the brokers advertise an address the bridge cannot reach (Kafka in Docker
// advertising kafka:9092). `run` exits 1 with an error that names the
// advertised address and advertised.listeners, and does not fill the log
// meanwhile. Before, it ran on not ready, each route logging "consume
// failed; rejoining" with a bare "lookup kafka ...: no such host".
func TestRunRefusesUnreachableAdvertisedBrokers(t *testing.T) {
	if os.Getenv(testkit.EnvKafka) != "" {
		t.Skip("runs on an in-process broker of its own that advertises another address, not on the e2e broker (this scenario runs in go test ./...)")
	}
	const advertised = "kafka.invalid:9092"
	var bootstrap string
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			bootstrap = l.Addr().String()
			return advertisingListener{l, advertised}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := &broker{&testkit.Broker{Addrs: []string{bootstrap}}}
	cfg := b.config(t, routeSpec{Topic: "in", Group: "g", URL: "http://127.0.0.1:9/hook"})
	p := testkit.LaunchBridge(t, bridgeBin, cfg)
	if code := p.Wait(); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	log := p.Log()
	for _, want := range []string{bootstrap, "(" + advertised + ")", "advertised.listeners"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "\n"); n > 10 {
		t.Errorf("%d log lines before the exit, want a few:\n%s", n, testkit.Tail(log, 20))
	}
}
