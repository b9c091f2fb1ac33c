package kafka

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// allowACL grants the user of kfake.User op on the topic name.
func allowACL(name string, op kmsg.ACLOperation) kfake.ACL {
	return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral,
		Operation: op, Allow: true}
}

// aclClient connects to cluster as user bridge (SASL PLAIN), speaking
// kafka.version version.
func aclClient(t *testing.T, cluster *kfake.Cluster, version string) sarama.Client {
	t.Helper()
	k := config.Kafka{Version: version, ClientID: "acl-test", SessionTimeout: config.Duration(10 * time.Second),
		SASL: config.SASL{Mechanism: config.SASLPlain, Username: "bridge", Password: "secret", AllowInsecure: true}}
	sc, err := NewConfig(k)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(cluster.ListenAddrs(), k, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// A dead-letter or reply topic that the ACLs let the bridge's principal
// describe (or read) but not write passed CheckTopics: run started, /readyz
// said ready, and the route's first failed record stopped its partition on
// "not authorized to access this topic", days later perhaps. CheckTopics
// asks the broker what the principal may do with each topic and names the
// topics it may not write, and the grant; a topic it may write passes. A
// broker that does not say (Metadata before v8, here kafka.version 2.0.0)
// leaves it to the first write, as before.
func TestCheckTopicsNamesATopicItMayNotWrite(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.dlq", "orders.replies", "audit.dlq"),
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", "bridge", "secret",
			allowACL("orders.dlq", kmsg.ACLOperationWrite),
			allowACL("orders.replies", kmsg.ACLOperationDescribe),
			allowACL("audit.dlq", kmsg.ACLOperationRead)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	client := aclClient(t, cluster, config.DefaultKafkaVersion)

	err = CheckTopics(client, []string{"orders.dlq", "orders.replies", "audit.dlq"})
	if err == nil {
		t.Fatal("CheckTopics = nil; the principal may not write orders.replies nor audit.dlq")
	}
	msg := err.Error()
	if !strings.Contains(msg, "[orders.replies audit.dlq]") || !strings.Contains(msg, "WRITE") ||
		strings.Contains(msg, "orders.dlq") || !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("CheckTopics: %v; want orders.replies and audit.dlq named, with the WRITE they lack, and orders.dlq not", err)
	}
	if err := CheckTopics(client, []string{"orders.dlq"}); err != nil {
		t.Errorf("CheckTopics of a topic the principal may write: %v", err)
	}
	if err := CheckTopics(aclClient(t, cluster, "2.0.0"), []string{"orders.dlq", "orders.replies"}); err != nil {
		t.Errorf("CheckTopics against metadata that reports no permissions: %v, want nil", err)
	}
}

// A write the broker refuses for the principal's ACLs while the bridge runs
// (WRITE revoked after the start, or a broker that does not report
// permissions at the start) holds the record's partition; its error, which
// the stuck line and /readyz show, names the grant, and stays retryable (the
// route resumes once it is granted).
func TestProduceRefusedByTheACLsNamesTheGrant(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders.dlq"),
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", "bridge", "secret", allowACL("orders.dlq", kmsg.ACLOperationDescribe)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	p, err := NewProducer(aclClient(t, cluster, config.DefaultKafkaVersion))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	err = p.Produce(t.Context(), []target.Output{{Topic: "orders.dlq", Value: []byte("dead letter")}})
	if err == nil {
		t.Fatal("Produce = nil; the principal may not write orders.dlq")
	}
	if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) || !strings.Contains(err.Error(), "WRITE on orders.dlq") ||
		target.KindOf(err) != target.Retryable {
		t.Errorf("Produce: %v (kind %v); want the authorization error, naming WRITE on orders.dlq, retryable", err, target.KindOf(err))
	}
}
