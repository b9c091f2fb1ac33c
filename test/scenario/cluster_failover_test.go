package scenario

// Against a real three-node Kafka cluster (test/kafka/cluster.sh), records
// flow while the leader of a partition the bridge reads is killed (-9), then
// the group's coordinator, then a partition's leader is restarted: every record
// is delivered or dead-lettered, nothing is committed past what was not, and
// the route is ready again by itself. test/e2e.sh runs it in a step of its
// own; by hand:
//
//	test/kafka/cluster.sh start
//	HOOKBRIDGE_TEST_KAFKA_CLUSTER=127.0.0.1:39092,127.0.0.1:39192,127.0.0.1:39292 \
//	  go test -p 1 -count=1 -run TestClusterFailover -v ./test/scenario/
//	test/kafka/cluster.sh stop

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

const envCluster = "HOOKBRIDGE_TEST_KAFKA_CLUSTER"

type cluster struct {
	t     *testing.T
	addrs []string
}

func (c *cluster) ctl(args ...string) {
	c.t.Helper()
	out, err := exec.Command("../kafka/cluster.sh", args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("cluster.sh %v: %v\n%s", args, err, out)
	}
	c.t.Logf("cluster.sh %v: %s", args, strings.TrimSpace(string(out)))
}

func (c *cluster) config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Metadata.Retry.Max = 20
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	return cfg
}

// inSync reports whether every partition of topics has its three replicas in
// sync and a leader.
func (c *cluster) inSync(topics ...string) bool {
	a, err := sarama.NewClusterAdmin(c.addrs, c.config())
	if err != nil {
		return false
	}
	defer a.Close()
	md, err := a.DescribeTopics(topics)
	if err != nil {
		return false
	}
	for _, tm := range md {
		if tm.Err != sarama.ErrNoError {
			return false
		}
		for _, p := range tm.Partitions {
			if p.Err != sarama.ErrNoError || len(p.Isr) != 3 || p.Leader < 0 {
				return false
			}
		}
	}
	return len(md) == len(topics)
}

// leaderOf returns the node leading partition of topic, or the group's
// coordinator when topic is "".
func (c *cluster) nodeOf(topic string, partition int32, group string) int32 {
	c.t.Helper()
	client, err := sarama.NewClient(c.addrs, c.config())
	if err != nil {
		c.t.Fatal(err)
	}
	defer client.Close()
	var b *sarama.Broker
	if topic != "" {
		b, err = client.Leader(topic, partition)
	} else {
		b, err = client.Coordinator(group)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return b.ID()
}

func (c *cluster) createTopic(name string) {
	c.t.Helper()
	a, err := sarama.NewClusterAdmin(c.addrs, c.config())
	if err != nil {
		c.t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3}, false); err != nil {
		c.t.Fatal(err)
	}
	testkit.WaitFor(c.t, 60*time.Second, "topic "+name+" in sync", func() bool { return c.inSync(name) })
	// Each node learns of the topic from the metadata log on its own: a
	// bridge asking a node that has not yet would be told it does not exist.
	testkit.WaitFor(c.t, 60*time.Second, "every node to know topic "+name, func() bool { return c.everyNodeKnows(name) })
}

// everyNodeKnows reports whether each node's own metadata lists topic with
// its three partitions.
func (c *cluster) everyNodeKnows(topic string) bool {
	for _, addr := range c.addrs {
		b := sarama.NewBroker(addr)
		if err := b.Open(c.config()); err != nil {
			return false
		}
		md, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1, Topics: []string{topic}})
		_ = b.Close()
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Err != sarama.ErrNoError || len(md.Topics[0].Partitions) != 3 {
			return false
		}
	}
	return true
}

func TestClusterFailover(t *testing.T) {
	bootstrap := os.Getenv(envCluster)
	if bootstrap == "" {
		testkit.E2ESkipf(t, envCluster+" is not set (a three-node cluster from test/kafka/cluster.sh)")
	}
	cl := &cluster{t: t, addrs: strings.Split(bootstrap, ",")}
	b := &broker{&testkit.Broker{Addrs: cl.addrs, Real: true}}
	topic, dlq := topicName(t, "in"), topicName(t, "dlq")
	cl.createTopic(topic)
	cl.createTopic(dlq)
	group := "failover-" + topic

	rcv := newReceiver(t, func(d delivery, _ int) int {
		if d.Rec.Tag == "bad" {
			return 422
		}
		return 200
	})
	bridge := startBridge(t, b.config(t, routeSpec{Topic: topic, DLQ: dlq, Group: group, URL: rcv.url()}))

	// The producer writes records until stop, retrying through elections.
	pcfg := cl.config()
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	pcfg.Producer.Retry.Max = 120
	pcfg.Producer.Retry.Backoff = 250 * time.Millisecond
	pcfg.Net.MaxOpenRequests = 1
	prod, err := sarama.NewSyncProducer(cl.addrs, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var mu sync.Mutex
	var produced []rec
	bad := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		seq := make([]int, 12)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var batch []*sarama.ProducerMessage
			var recs []rec
			for i := range 20 {
				k := (n*20 + i) % 12
				r := rec{Key: "k" + strconv.Itoa(k), Seq: seq[k]}
				seq[k]++
				if (n*20+i)%37 == 0 {
					r.Tag = "bad"
				}
				v, _ := json.Marshal(r)
				batch = append(batch, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.Key), Value: sarama.ByteEncoder(v)})
				recs = append(recs, r)
			}
			if err := prod.SendMessages(batch); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			for _, r := range recs {
				produced = append(produced, r)
				if r.Tag == "bad" {
					bad[r.Key+"/"+strconv.Itoa(r.Seq)] = true
				}
			}
			mu.Unlock()
		}
	})
	progress := func(what string) {
		t.Helper()
		from := rcv.uniqueAccepted()
		start := time.Now()
		waitFor(t, 120*time.Second, "deliveries to go on after "+what, func() bool { return rcv.uniqueAccepted() >= from+200 })
		t.Logf("%s: 200 more records delivered within %s", what, time.Since(start).Round(100*time.Millisecond))
	}
	healed := func(what string) {
		t.Helper()
		start := time.Now()
		waitFor(t, 120*time.Second, "replicas in sync after "+what, func() bool { return cl.inSync(topic, dlq, "__consumer_offsets") })
		t.Logf("%s: replicas in sync after %s", what, time.Since(start).Round(100*time.Millisecond))
	}
	progress("start")

	leader := cl.nodeOf(topic, 0, "")
	cl.ctl("kill", strconv.Itoa(int(leader)))
	progress("kill -9 of partition 0's leader")
	cl.ctl("up", strconv.Itoa(int(leader)))
	healed("the leader back")

	coord := cl.nodeOf("", 0, group)
	cl.ctl("kill", strconv.Itoa(int(coord)))
	progress("kill -9 of the group coordinator")
	cl.ctl("up", strconv.Itoa(int(coord)))
	healed("the coordinator back")

	// A rolling upgrade's step: the node leading partition 0 stopped
	// (SIGTERM: it hands its leaderships over) and started again.
	leader = cl.nodeOf(topic, 0, "")
	cl.ctl("restart", strconv.Itoa(int(leader)))
	healed("restart of node " + strconv.Itoa(int(leader)))
	progress("a node's restart")
	close(stop)
	wg.Wait()

	mu.Lock()
	var good []rec
	for _, r := range produced {
		if r.Tag != "bad" {
			good = append(good, r)
		}
	}
	mu.Unlock()
	waitFor(t, 120*time.Second, "every record delivered", func() bool { return rcv.uniqueAccepted() >= len(good) })
	waitFor(t, 60*time.Second, "the route ready", func() bool { return bridge.Ready() == nil })
	dups := checkDelivered(t, rcv, good)
	t.Logf("%d records produced, %d delivered, %d duplicate deliveries, %d dead-lettered", len(produced), len(good), dups, len(bad))

	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool {
		client, err := sarama.NewClient(cl.addrs, cl.config())
		if err != nil {
			return false
		}
		defer client.Close()
		committed := b.Committed(t, group, topic, 3)
		for p := range int32(3) {
			hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil || committed[p] != hwm {
				return false
			}
		}
		return true
	})
	got := map[string]int{}
	for _, m := range b.readAll(t, dlq) {
		var r rec
		_ = json.Unmarshal(m.Value, &r)
		got[r.Key+"/"+strconv.Itoa(r.Seq)]++
	}
	dlqDups := 0
	for id := range bad {
		if got[id] == 0 {
			t.Errorf("dead letter of %s missing", id)
		}
		dlqDups += max(got[id]-1, 0)
	}
	if len(got) != len(bad) {
		t.Errorf("dead-letter topic holds %d distinct records, want %d", len(got), len(bad))
	}
	t.Logf("dead-letter duplicates: %d", dlqDups)
	if code := bridge.Stop(); code != 0 {
		t.Errorf("hookbridge exited with %d", code)
	}
}
