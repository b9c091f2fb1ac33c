package kafka

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// CheckTopics (run at start and at each reload) refreshes the metadata of
// every topic of the cluster, which sarama fails when any partition of any
// topic has no leader. On a real three-node cluster with one node killed, a
// replication-factor-1 topic's partition there offline, `hookbridge run`
// exited at once ("kafka: metadata: ... no leader for this partition"), and
// a restart while the node was down could not come back: the whole bridge
// was held down by one partition, even one of a topic it does not use. The
// partition holds up only its own records; a topic that is missing still
// reads as missing.
func TestCheckTopicsLetsAnOfflinePartitionPass(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var offline atomic.Bool
	offline.Store(true)
	takeOffline(t, cluster, "orders.dlq", 1, &offline)
	_, client := newTestProducer(t, cluster.ListenAddrs())

	if err := CheckTopics(client, []string{"orders.dlq"}); err != nil {
		t.Errorf("CheckTopics with one partition offline: %v; want nil (the partition holds up only its own writes)", err)
	}
	err = CheckTopics(client, []string{"orders.dlq", "orders.replys"})
	if err == nil || !strings.Contains(err.Error(), "topic(s) [orders.replys] do not exist") {
		t.Errorf("CheckTopics = %v; want orders.replys named as missing", err)
	}
}
