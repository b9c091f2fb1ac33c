package kafka

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// advertisedAddr is a listener address as a broker's metadata gives it.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// advertisingListener accepts on its own address and gives advertised as
// its address, which kfake puts in its metadata: a broker whose
// advertised.listeners name another address than the one clients reach.
type advertisingListener struct {
	net.Listener
	advertised string
}

func (l advertisingListener) Addr() net.Addr { return advertisedAddr(l.advertised) }

// advertisingCluster starts a one-broker kfake cluster that advertises
// advertised and returns the address it really listens on.
func advertisingCluster(t *testing.T, advertised string) string {
	t.Helper()
	var bootstrap string
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
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
	return bootstrap
}

// Brokers that answer at the bootstrap address but advertise one this host
// cannot reach (Kafka in Docker advertising its container's name, or
// localhost) fail the connection at once, naming the advertised address and
// advertised.listeners. Before, the client connected (the bootstrap broker
// answers metadata), run went on, and every route failed to join its group
// over and over with a bare "dial tcp: lookup kafka ...: no such host".
func TestConnectAdvertisedUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	k := config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(6 * time.Second)}
	for _, advertised := range []string{"kafka.invalid:9092", "localhost:" + closedPort} {
		t.Run(advertised, func(t *testing.T) {
			bootstrap := advertisingCluster(t, advertised)
			sc, err := NewConfig(k)
			if err != nil {
				t.Fatal(err)
			}
			client, err := NewClient([]string{bootstrap}, k, sc)
			if err == nil {
				_ = client.Close()
				t.Fatal("connected to brokers whose advertised address cannot be reached")
			}
			for _, want := range []string{bootstrap, "advertise addresses this host cannot reach (" + advertised + ")", "advertised.listeners"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// An advertised address other than the bootstrap one that this host
// reaches is no reason to refuse: kafka.brokers names the broker by its
// host name, and it advertises its IP address.
func TestConnectAdvertisedOtherButReachable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	_, port, _ := net.SplitHostPort(c.ListenAddrs()[0])
	k := config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(6 * time.Second)}
	sc, err := NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient([]string{"localhost:" + port}, k, sc)
	if err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
}
