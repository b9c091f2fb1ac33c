package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/test/internal/testkit"

	"github.com/IBM/sarama"
)

var bridgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookbridge-scenario")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bridgeBin, err = testkit.BuildBridge(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The suite's small helpers are testkit's.
var (
	waitFor   = testkit.WaitFor
	topicName = testkit.TopicName
)

// anyPort is the admin address of every bridge: it binds a free port itself
// and the test asks the bridge (Admin) which.
const anyPort = testkit.AnyPort

// ---- broker ----------------------------------------------------------------

// broker is testkit's broker with what the scenarios need on top:
// deleting topics, producing sequenced records, reading committed offsets
// and whole topics.
type broker struct{ *testkit.Broker }

func newBroker(t *testing.T) *broker { return &broker{testkit.NewBroker(t)} }

func (b *broker) admin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	a, err := sarama.NewClusterAdmin(b.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b *broker) deleteTopic(t *testing.T, name string) {
	t.Helper()
	a := b.admin(t)
	defer a.Close()
	if err := a.DeleteTopic(name); err != nil {
		t.Fatalf("delete topic %s: %v", name, err)
	}
}

// rec is a test record: its value names its key and its sequence within the key.
type rec struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
	Tag string `json:"tag,omitempty"`
}

// produce writes recs to topic in order (keyed, so each key's records share a
// partition) and returns the partition and offset of each.
type sarampm = sarama.ProducerMessage

func (b *broker) produce(t *testing.T, topic string, recs []rec) []sarampm {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Flush.Messages = 500
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1 // keep per-partition order across retries
	p, err := sarama.NewAsyncProducer(b.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sarama.ProducerMessage, 0, len(recs))
	var wg sync.WaitGroup
	var perr error
	wg.Go(func() {
		for range recs {
			select {
			case m := <-p.Successes():
				out = append(out, *m)
			case e := <-p.Errors():
				perr = e
			}
		}
	})
	for _, r := range recs {
		v, _ := json.Marshal(r)
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.Key), Value: sarama.ByteEncoder(v),
			Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}
	}
	wg.Wait()
	if err := p.Close(); err != nil || perr != nil {
		t.Fatalf("produce: %v %v", err, perr)
	}
	return out
}

// readAll returns every record of topic.
func (b *broker) readAll(t *testing.T, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	client, err := sarama.NewClient(b.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			msgs = append(msgs, m)
			if m.Offset+1 >= hwm {
				break
			}
		}
		pc.Close()
	}
	return msgs
}

// keyed makes n records over keys keys: key k<i%keys>, sequence per key.
func keyed(n, keys int) []rec {
	seq := make([]int, keys)
	out := make([]rec, n)
	for i := range out {
		k := i % keys
		out[i] = rec{Key: "k" + strconv.Itoa(k), Seq: seq[k]}
		seq[k]++
	}
	return out
}

// ---- receiver --------------------------------------------------------------

type delivery struct {
	ID          string
	Rec         rec
	Attempt     int
	Status      int
	Traceparent string
}

// receiver is a webhook endpoint that records every request. respond picks
// the status of each request (nil: 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	all     []delivery
	respond func(d delivery, n int) int
}

// holdingReceiver is a receiver that answers 200 to every request once
// unblock is called, and holds each until then; arrived gets a value when a
// request comes.
func holdingReceiver(t *testing.T) (rcv *receiver, arrived <-chan struct{}, unblock func()) {
	t.Helper()
	came, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	rcv = newReceiver(t, func(d delivery, n int) int {
		select {
		case came <- struct{}{}:
		default:
		}
		<-release
		return 200
	})
	t.Cleanup(unblock) // before the receiver's own cleanup, which waits for its handlers
	return rcv, came, unblock
}

func newReceiver(t *testing.T, respond func(d delivery, n int) int) *receiver {
	t.Helper()
	r := &receiver{respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var d delivery
	d.ID = req.Header.Get("webhook-id")
	d.Attempt, _ = strconv.Atoi(req.Header.Get("hookbridge-attempt"))
	d.Traceparent = req.Header.Get("traceparent")
	_ = json.Unmarshal(body, &d.Rec)
	r.mu.Lock()
	n := len(r.all)
	d.Status = 200
	if r.respond != nil {
		d.Status = r.respond(d, n)
	}
	r.all = append(r.all, d)
	r.mu.Unlock()
	w.WriteHeader(d.Status)
}

// accepted returns the 2xx deliveries in arrival order.
func (r *receiver) accepted() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.all {
		if d.Status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func (r *receiver) requests() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.all...)
}

func (r *receiver) uniqueAccepted() int {
	seen := map[string]bool{}
	for _, d := range r.accepted() {
		seen[d.ID] = true
	}
	return len(seen)
}

// checkDelivered asserts that exactly the records in want were accepted (each
// at least once), that the first acceptances of each key's records came in the
// order they were produced, and returns how many acceptances were duplicates.
func checkDelivered(t *testing.T, r *receiver, want []rec) (duplicates int) {
	t.Helper()
	order := map[string][]int{} // key -> sequences in produce order
	wanted := map[rec]bool{}
	for _, w := range want {
		order[w.Key] = append(order[w.Key], w.Seq)
		w.Tag = ""
		wanted[w] = true
	}
	seen := map[rec]bool{}
	next := map[string]int{}
	for _, d := range r.accepted() {
		id := rec{Key: d.Rec.Key, Seq: d.Rec.Seq}
		if !wanted[id] {
			t.Fatalf("record %s/%d was delivered but not expected", id.Key, id.Seq)
		}
		if seen[id] {
			duplicates++
			continue
		}
		seen[id] = true
		if exp := order[id.Key][next[id.Key]]; id.Seq != exp {
			t.Fatalf("key %s: first delivery of seq %d came when %d was expected (order broken)", id.Key, id.Seq, exp)
		}
		next[id.Key]++
	}
	if len(seen) != len(wanted) {
		for w := range wanted {
			if !seen[w] {
				t.Fatalf("record %s/%d was never delivered (%d of %d delivered)", w.Key, w.Seq, len(seen), len(wanted))
			}
		}
	}
	return duplicates
}

// ---- bridge process --------------------------------------------------------

// routeSpec is what a scenario varies in the config.
type routeSpec struct {
	Name, Topic, DLQ, Group, URL, Ordering string
	Concurrency, MaxAttempts               int
	MaxAge                                 string // retry.max_age, "" for none
	Webhook                                string // extra YAML under target.webhook (8 spaces)
	Extra                                  string // extra YAML under the route (4 spaces)
}

func (b *broker) config(t *testing.T, r routeSpec) string {
	t.Helper()
	return b.configRoutes(t, r)
}

// configRoutes writes a config with one route per spec and returns its path.
func (b *broker) configRoutes(t *testing.T, specs ...routeSpec) string {
	t.Helper()
	brokers, _ := json.Marshal(b.Addrs)
	cfg := fmt.Sprintf(`kafka:
  brokers: %s
  session_timeout: 6s
admin:
  listen: %s
log:
  level: info
shutdown_timeout: 10s
routes:
`, brokers, anyPort)
	for i, r := range specs {
		if r.Name == "" {
			r.Name = "scenario"
			if i > 0 {
				r.Name += strconv.Itoa(i)
			}
		}
		if r.Ordering == "" {
			r.Ordering = "key"
		}
		if r.Concurrency == 0 {
			r.Concurrency = 32
		}
		if r.MaxAttempts == 0 {
			r.MaxAttempts = 5
		}
		maxAge := ""
		if r.MaxAge != "" {
			maxAge = ", max_age: " + r.MaxAge
		}
		dlq := ""
		if r.DLQ != "" {
			dlq = "    dead_letter: {topic: " + r.DLQ + "}\n"
		}
		cfg += fmt.Sprintf(`  - name: %s
    topics: [%s]
    group: %s
    ordering: %s
    concurrency: %d
    target:
      webhook:
        url: %s
        timeout: 5s
%s    retry: {max_attempts: %d, initial_backoff: 10ms, max_backoff: 200ms%s}
%s%s`, r.Name, r.Topic, r.Group, r.Ordering, r.Concurrency, r.URL, r.Webhook, r.MaxAttempts, maxAge, dlq, r.Extra)
	}
	return writeConfig(t, cfg)
}

// writeConfig writes cfg to a file of the test's own and returns its path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBridge runs `hookbridge run -c cfgPath` and waits until /readyz is ok.
func startBridge(t *testing.T, cfgPath string) *testkit.Bridge {
	t.Helper()
	return testkit.StartBridge(t, bridgeBin, cfgPath)
}

// metricSum scrapes /metrics and sums the samples of one metric; NaN when
// the bridge does not answer.
func metricSum(_ *testing.T, admin, name string) float64 { return testkit.MetricSum(admin, name) }
