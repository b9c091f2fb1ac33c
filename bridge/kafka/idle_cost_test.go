package kafka

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// requestCounts counts the requests a kfake cluster gets, by API and group.
type requestCounts struct {
	mu       sync.Mutex
	byKey    map[string]int
	byGroup  map[string]int // key/group, of the requests that name a group
	commits  []string       // "v<version> retention=<ms>" of each OffsetCommit
	counting bool
}

// watch makes cluster count its requests while counting is set.
func (r *requestCounts) watch(cluster *kfake.Cluster) {
	r.byKey, r.byGroup = map[string]int{}, map[string]int{}
	cluster.Control(func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		name := kmsg.NameForKey(kreq.Key())
		r.mu.Lock()
		defer r.mu.Unlock()
		switch req := kreq.(type) {
		case *kmsg.OffsetCommitRequest:
			r.commits = append(r.commits, fmt.Sprintf("v%d retention=%d", req.Version, req.RetentionTimeMillis))
			if r.counting {
				r.byGroup[name+"/"+req.Group]++
			}
		case *kmsg.HeartbeatRequest:
			if r.counting {
				r.byGroup[name+"/"+req.Group]++
			}
		}
		if r.counting {
			r.byKey[name]++
		}
		return nil, nil, false
	})
}

func (r *requestCounts) set(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counting = on
	if on {
		clear(r.byKey)
		clear(r.byGroup)
	}
}

func (r *requestCounts) key(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byKey[name]
}

func (r *requestCounts) group(name, group string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byGroup[name+"/"+group]
}

func (r *requestCounts) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("by key %v, by group %v", r.byKey, r.byGroup)
}

// Against a broker older than Kafka 2.1 a commit carries the retention time
// the broker keeps the offset for. sarama built the group's commits for
// kafka.version (3.0.0 by default), which has no such field, and the broker's
// negotiated version (v4) then carried 0 ms: the broker dropped every
// committed offset at its next cleanup, for good on an idle route. The
// client refuses such a broker with a clear error unless kafka.version is at
// most the broker's; then the commits ask for the broker's own retention
// (-1).
func TestNewClientRefusesCommitsThatAnOldBrokerExpiresAtOnce(t *testing.T) {
	const topic = "retention"
	cluster := startCappedCluster(t, kversion.V2_0_0(), topic, 1)
	reqs := &requestCounts{}
	reqs.watch(cluster)
	addrs := cluster.ListenAddrs()

	k := config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "retention-test", SessionTimeout: config.Duration(6 * time.Second)}
	sc, err := NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(addrs, k, sc)
	if err == nil {
		_ = client.Close()
		t.Fatalf("NewClient against a Kafka 2.0 broker with kafka.version %s: no error", k.Version)
	}
	if !strings.Contains(err.Error(), "set kafka.version to the brokers' version") {
		t.Errorf("error %q does not say to set kafka.version", err)
	}

	k.Version = "2.0.0"
	sc, err = NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	client, err = NewClient(addrs, k, sc)
	if err != nil {
		t.Fatalf("NewClient with kafka.version 2.0.0: %v", err)
	}
	_ = client.Close()
	tg := &valueRecorder{}
	route := testRoute(topic, topic)
	c := NewConsumer(ConsumerOptions{Route: route, Brokers: addrs, Sarama: sc, Target: tg,
		Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
	startRun(t, c, patience)
	admin := newAdmin(t, addrs)
	waitFor(t, "the route joined", func() bool { return c.Ready() == nil }, reqs.String)
	produce(t, addrs, topic, "k", "v")
	waitFor(t, "the record committed", func() bool { return committed(t, admin, route.GroupID(), topic) == 1 }, reqs.String)
	reqs.mu.Lock()
	defer reqs.mu.Unlock()
	for _, cm := range reqs.commits {
		if cm != "v4 retention=-1" {
			t.Errorf("offset commits %v, want each at v4 with the broker's retention (-1)", reqs.commits)
			break
		}
	}
}

// What idle routes cost the brokers. Over a number of heartbeat intervals in
// which no record flows, a route commits nothing (sarama commits marked
// offsets only, and a group with members keeps its offsets from Kafka 2.1
// on), and fetches, looks up offsets and metadata no more often than its
// configuration says; one record then costs its group one commit.
func TestIdleRoutesCostWhatTheirConfigurationSays(t *testing.T) {
	topics := []string{"idle-a", "idle-b", "idle-c"}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	reqs := &requestCounts{}
	reqs.watch(cluster)
	addrs := cluster.ListenAddrs()
	admin := newAdmin(t, addrs)

	var cs []*Consumer
	var sc *sarama.Config
	for _, topic := range topics {
		sc = groupConfig(t)
		c := NewConsumer(ConsumerOptions{Route: testRoute(topic, topic), Brokers: addrs, Sarama: sc, Target: &valueRecorder{},
			Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 5 * time.Second})
		startRun(t, c, patience)
		cs = append(cs, c)
	}
	// Joined, and each partition's start committed (checkStarts).
	waitFor(t, "every route joined with its start offsets committed", func() bool {
		for i, c := range cs {
			if c.Ready() != nil {
				return false
			}
			for p := range int32(3) {
				if committedOf(t, admin, c.opts.Route.GroupID(), topics[i], p) != 0 {
					return false
				}
			}
		}
		return true
	}, reqs.String)

	const beats = 8 // heartbeat intervals each route is watched for
	reqs.set(true)
	waitFor(t, fmt.Sprintf("%d heartbeats of every route", beats), func() bool {
		for _, c := range cs {
			if reqs.group("Heartbeat", c.opts.Route.GroupID()) < beats {
				return false
			}
		}
		return true
	}, reqs.String)
	reqs.set(false)
	if n := reqs.key("OffsetCommit"); n != 0 {
		t.Errorf("%d offset commits while nothing was marked, want 0 (%s)", n, reqs)
	}
	// The window spans about (heartbeats seen + 1) intervals of the route
	// that beat most; each route fetches once per MaxWaitTime from its one
	// broker, and looks its offsets, commits and topic IDs up every
	// offsetsEvery. The bound is ten times that, plus one each: it is
	// there to catch a request repeated in a loop (hundreds of times
	// more), not to time the intervals, which a loaded machine stretches.
	most := 0
	for _, c := range cs {
		most = max(most, reqs.group("Heartbeat", c.opts.Route.GroupID()))
	}
	window := time.Duration(most+1) * sc.Consumer.Group.Heartbeat.Interval
	routes := len(cs)
	for _, b := range []struct {
		key   string
		every time.Duration
	}{
		{"Fetch", sc.Consumer.MaxWaitTime},
		{"ListOffsets", offsetsEvery},
		{"OffsetFetch", offsetsEvery},
		{"Metadata", offsetsEvery},
	} {
		if limit := routes * (10*int(window/b.every) + 1); reqs.key(b.key) > limit {
			t.Errorf("%d %s requests of %d idle routes over %d heartbeats, want at most %d (%s)", reqs.key(b.key), b.key, routes, most, limit, reqs)
		}
	}

	// A trickle: one record costs its group its commit, and the others none.
	reqs.set(true)
	produce(t, addrs, topics[0], "k", "v")
	waitFor(t, "the record committed", func() bool { return committed(t, admin, cs[0].opts.Route.GroupID(), topics[0]) == 1 }, reqs.String)
	waitFor(t, "two more heartbeats of every route", func() bool {
		for _, c := range cs {
			if reqs.group("Heartbeat", c.opts.Route.GroupID()) < 2 {
				return false
			}
		}
		return true
	}, reqs.String)
	reqs.set(false)
	if n := reqs.group("OffsetCommit", cs[0].opts.Route.GroupID()); n != 1 {
		t.Errorf("%d offset commits of the route that got one record, want 1 (%s)", n, reqs)
	}
	if n := reqs.key("OffsetCommit"); n != 1 {
		t.Errorf("%d offset commits in all, want 1 (%s)", n, reqs)
	}
}
