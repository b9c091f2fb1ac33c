package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

var bridgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookbridge-scenario")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bridgeBin = filepath.Join(dir, "hookbridge")
	build := exec.Command("go", "build", "-o", bridgeBin, "github.com/hookbridge/hookbridge/cmd/hookbridge")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hookbridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// waitFor polls cond until it holds, failing the test after limit. The limit
// only bounds a hang; no assertion depends on how long anything took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- broker ----------------------------------------------------------------

type broker struct {
	addrs []string
	real  bool
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	if addr := os.Getenv("HOOKBRIDGE_TEST_KAFKA"); addr != "" {
		return &broker{addrs: strings.Split(addr, ","), real: true}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &broker{addrs: c.ListenAddrs()}
}

var nameClean = regexp.MustCompile(`[^A-Za-z0-9]+`)

// topicName returns a name unique to this test run, so a real broker can be
// shared by every test.
func topicName(t *testing.T, suffix string) string {
	return fmt.Sprintf("%s-%s-%d", strings.ToLower(nameClean.ReplaceAllString(t.Name(), "-")), suffix, rand.IntN(1e6))
}

func (b *broker) admin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	a, err := sarama.NewClusterAdmin(b.addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b *broker) createTopic(t *testing.T, name string, partitions int32) {
	t.Helper()
	a := b.admin(t)
	defer a.Close()
	if err := a.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	waitFor(t, 30*time.Second, "topic "+name+" to appear", func() bool {
		md, err := a.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions)
	})
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
	p, err := sarama.NewAsyncProducer(b.addrs, cfg)
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

// committed returns the group's committed offset per partition of topic (-1
// when none).
func (b *broker) committed(t *testing.T, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	a := b.admin(t)
	defer a.Close()
	ps := make([]int32, partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32]int64)
	for p, blk := range resp.Blocks[topic] {
		out[p] = blk.Offset
	}
	return out
}

// readAll returns every record of topic.
func (b *broker) readAll(t *testing.T, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	client, err := sarama.NewClient(b.addrs, cfg)
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
	ID      string
	Rec     rec
	Attempt int
	Status  int
}

// receiver is a webhook endpoint that records every request. respond picks
// the status of each request (nil: 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	all     []delivery
	respond func(d delivery, n int) int
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

type bridgeProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	admin string
	log   *lockedBuffer
	done  chan struct{}
	code  int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// routeSpec is what a scenario varies in the config.
type routeSpec struct {
	Name, Topic, DLQ, Group, URL, Ordering string
	Concurrency, MaxAttempts               int
	Webhook                                string // extra YAML under target.webhook (8 spaces)
	Extra                                  string // extra YAML under the route (4 spaces)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (b *broker) config(t *testing.T, admin string, r routeSpec) string {
	t.Helper()
	return b.configRoutes(t, admin, r)
}

// configRoutes writes a config with one route per spec and returns its path.
func (b *broker) configRoutes(t *testing.T, admin string, specs ...routeSpec) string {
	t.Helper()
	brokers, _ := json.Marshal(b.addrs)
	cfg := fmt.Sprintf(`kafka:
  brokers: %s
  session_timeout: 6s
admin:
  listen: %s
log:
  level: info
shutdown_timeout: 10s
routes:
`, brokers, admin)
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
%s    retry: {max_attempts: %d, initial_backoff: 10ms, max_backoff: 200ms}
%s%s`, r.Name, r.Topic, r.Group, r.Ordering, r.Concurrency, r.URL, r.Webhook, r.MaxAttempts, dlq, r.Extra)
	}
	path := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBridge runs `hookbridge run -c cfgPath` and waits until /readyz is ok.
func startBridge(t *testing.T, cfgPath, admin string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{t: t, admin: admin, log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bridgeBin, "run", "-c", cfgPath)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("hookbridge log (%s):\n%s", cfgPath, tail(p.log.String(), 60))
		}
	})
	waitFor(t, 60*time.Second, "hookbridge to be ready", func() bool {
		select {
		case <-p.done:
			t.Fatalf("hookbridge exited with %d:\n%s", p.code, p.log.String())
		default:
		}
		return p.ready() == nil
	})
	return p
}

func (p *bridgeProc) ready() error {
	resp, err := http.Get("http://" + p.admin + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return nil
}

// stop sends SIGTERM and returns the exit code.
func (p *bridgeProc) stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait()
}

// kill sends SIGKILL (kill -9).
func (p *bridgeProc) kill() {
	_ = p.cmd.Process.Kill()
	p.wait()
}

func (p *bridgeProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("hookbridge did not exit:\n%s", tail(p.log.String(), 40))
	}
	return p.code
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

var _ = context.Background
