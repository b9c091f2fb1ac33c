// Package testkit holds the few helpers the black-box test packages under
// test/ share: a Kafka broker (franz-go's kfake in-process, or the real one
// HOOKBRIDGE_TEST_KAFKA names), producing records, writing a config, and
// running the hookbridge binary. It is imported by tests only.
package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
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

// EnvKafka names the real broker of the e2e tier (comma-separated
// host:port); unset, tests use an in-process kfake broker.
const EnvKafka = "HOOKBRIDGE_TEST_KAFKA"

// BuildBridge builds the hookbridge binary into dir and returns its path.
// Call it from TestMain.
func BuildBridge(dir string) (string, error) {
	bin := filepath.Join(dir, "hookbridge")
	build := exec.Command("go", "build", "-o", bin, "github.com/hookbridge/hookbridge/cmd/hookbridge")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building hookbridge: %w", err)
	}
	return bin, nil
}

// E2ESkipf skips a test whose services are not configured, except in the
// end-to-end tier (HOOKBRIDGE_E2E=1, set by test/e2e.sh), where a missing
// service is a failure: that tier must never pass by skipping.
func E2ESkipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("HOOKBRIDGE_E2E") == "1" {
		t.Fatalf("HOOKBRIDGE_E2E=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}

// WaitFor polls cond until it holds, failing the test after limit. The limit
// only bounds a hang; no assertion depends on how long anything took.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback host:port that was free a moment ago. Another
// process may take it before the caller binds it: give a bridge AnyPort
// instead.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// AnyPort is an admin.listen address on which the bridge binds a free port
// of its own choosing; Bridge.Admin is the address it bound. A port picked
// by the test and handed to the bridge may be taken by another process
// (another test package's listener) before the bridge binds it.
const AnyPort = "127.0.0.1:0"

// ---- broker ----------------------------------------------------------------

// Broker is the Kafka cluster of a test.
type Broker struct {
	Addrs []string
	// Real is true for the broker named by HOOKBRIDGE_TEST_KAFKA.
	Real bool
}

// NewBroker returns the real broker when HOOKBRIDGE_TEST_KAFKA is set, else
// starts a kfake cluster that lives as long as the test.
func NewBroker(t testing.TB) *Broker {
	t.Helper()
	if addr := os.Getenv(EnvKafka); addr != "" {
		return &Broker{Addrs: strings.Split(addr, ","), Real: true}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Broker{Addrs: c.ListenAddrs()}
}

var nameClean = regexp.MustCompile(`[^A-Za-z0-9]+`)

// TopicName returns a name unique to this test run, so that a real broker
// can be shared by every test.
func TopicName(t testing.TB, suffix string) string {
	return fmt.Sprintf("%s-%s-%d", strings.ToLower(nameClean.ReplaceAllString(t.Name(), "-")), suffix, rand.IntN(1e6))
}

func (b *Broker) saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	return cfg
}

// Committed returns a group's committed offset per partition of topic (-1
// when none).
func (b *Broker) Committed(t testing.TB, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	a, err := sarama.NewClusterAdmin(b.Addrs, b.saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ps := make([]int32, partitions)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := a.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	out := make(map[int32]int64)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		// kfake's answer for a group that never committed; Kafka's is -1
		// for each partition.
		for _, p := range ps {
			out[p] = -1
		}
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for p, blk := range resp.Blocks[topic] {
		out[p] = blk.Offset
	}
	return out
}

// CreateTopic creates a topic and waits until every partition has a leader.
func (b *Broker) CreateTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	a, err := sarama.NewClusterAdmin(b.Addrs, b.saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	WaitFor(t, 30*time.Second, "topic "+name+" to appear", func() bool {
		md, err := a.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == int(partitions)
	})
}

// Message is a record to produce. A nil Key is a null key; a nil Value a
// null value.
type Message struct {
	Key       []byte
	Value     []byte
	Headers   []sarama.RecordHeader
	Timestamp time.Time
}

// Produced is a Message with the coordinates the broker gave it.
type Produced struct {
	Message
	Topic     string
	Partition int32
	Offset    int64
}

// ID is the record's webhook-id, "<topic>-<partition>-<offset>".
func (p Produced) ID() string { return fmt.Sprintf("%s-%d-%d", p.Topic, p.Partition, p.Offset) }

// Produce writes msgs to topic in order (keys pick partitions with the
// default partitioner; a null key goes round robin) with acks=all, and
// returns each with its partition and offset, in the order of msgs.
func (b *Broker) Produce(t testing.TB, topic string, msgs []Message) []Produced {
	t.Helper()
	cfg := b.saramaConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Flush.Messages = 500
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1 // keep per-partition order across retries
	p, err := sarama.NewAsyncProducer(b.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Produced, len(msgs))
	var wg sync.WaitGroup
	var perr error
	wg.Go(func() {
		for range msgs {
			select {
			case m := <-p.Successes():
				i := m.Metadata.(int)
				out[i] = Produced{Message: msgs[i], Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
			case e := <-p.Errors():
				perr = e
			}
		}
	})
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{Topic: topic, Headers: m.Headers, Timestamp: m.Timestamp, Metadata: i}
		if m.Key != nil {
			pm.Key = sarama.ByteEncoder(m.Key)
		}
		if m.Value != nil {
			pm.Value = sarama.ByteEncoder(m.Value)
		}
		p.Input() <- pm
	}
	wg.Wait()
	if err := p.Close(); err != nil || perr != nil {
		t.Fatalf("produce: %v %v", err, perr)
	}
	return out
}

// Config writes a hookbridge config with the broker, the admin endpoint on
// AnyPort and routes (YAML list items, indented by two spaces, under
// "routes:"), and returns its path.
func (b *Broker) Config(t testing.TB, routes string) string {
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
%s`, brokers, AnyPort, routes)
	path := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---- bridge process --------------------------------------------------------

// Bridge is a running `hookbridge run` process.
type Bridge struct {
	t     testing.TB
	cmd   *exec.Cmd
	log   *LockedBuffer
	done  chan struct{}
	code  int
	mu    sync.Mutex
	admin string // the admin address it bound; "" until it logged it
}

// LockedBuffer is a bytes.Buffer safe for concurrent writes, for a
// subprocess's output.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartBridge runs `bin run -c cfgPath`, whose admin.listen is AnyPort, and
// waits until /readyz on the address the bridge logs that it bound is ok.
// The process is killed at the end of the test if it still runs, and its log
// is printed when the test failed.
func StartBridge(t testing.TB, bin, cfgPath string) *Bridge {
	t.Helper()
	p := LaunchBridge(t, bin, cfgPath)
	WaitFor(t, 60*time.Second, "hookbridge to be ready", func() bool {
		select {
		case <-p.done:
			t.Fatalf("hookbridge exited with %d:\n%s", p.code, p.log.String())
		default:
		}
		return p.Ready() == nil
	})
	return p
}

// LaunchBridge runs `bin run -c cfgPath` like StartBridge, without waiting
// for anything.
func LaunchBridge(t testing.TB, bin, cfgPath string) *Bridge {
	t.Helper()
	p := &Bridge{t: t, log: &LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run", "-c", cfgPath)
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
		checkLogKeys(t, p.log.String())
		if t.Failed() {
			t.Logf("hookbridge log (%s):\n%s", cfgPath, Tail(p.log.String(), 60))
		}
	})
	return p
}

// checkLogKeys fails t for every line of a bridge's JSON log that names a
// key twice: a log store that refuses such objects (Elasticsearch does)
// would drop the line.
func checkLogKeys(t testing.TB, log string) {
	t.Helper()
	for line := range strings.Lines(log) {
		if !strings.HasPrefix(line, "{") {
			continue // not a log line of the bridge's (a panic's trace, say)
		}
		if dups := duplicateKeys(line); len(dups) > 0 {
			t.Errorf("hookbridge logged %v more than once in: %s", dups, strings.TrimSpace(line))
		}
	}
}

// duplicateKeys returns the keys that the JSON object line names more than
// once at its top level; nil for a line that is not a JSON object.
func duplicateKeys(line string) []string {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool)
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dups
		}
		key, _ := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return dups
		}
	}
	return dups
}

// Ready returns nil when /readyz answers 200.
func (p *Bridge) Ready() error {
	admin := p.Admin()
	if admin == "" {
		return fmt.Errorf("the admin address is not logged yet")
	}
	resp, err := http.Get("http://" + admin + "/readyz")
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

// Stop sends SIGTERM and returns the exit code.
func (p *Bridge) Stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait()
}

// Wait waits for the process to end (after a signal sent with Signal) and
// returns its exit code.
func (p *Bridge) Wait() int {
	p.t.Helper()
	return p.wait()
}

// Kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *Bridge) Kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	p.wait()
}

// adminLogged finds the address the bridge bound for its admin endpoint in
// its JSON log ("connecting to Kafka", the line after the bind).
var adminLogged = regexp.MustCompile(`"admin":"([^"]+)"`)

// Admin is the address the bridge bound for its admin endpoint (its config
// gives it AnyPort); "" until it logged that (StartBridge returns after it
// did).
func (p *Bridge) Admin() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == "" {
		if m := adminLogged.FindStringSubmatch(p.log.String()); m != nil {
			p.admin = m[1]
		}
	}
	return p.admin
}

// Signal sends sig to the process (SIGHUP, say).
func (p *Bridge) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the process id of the bridge.
func (p *Bridge) Pid() int { return p.cmd.Process.Pid }

// Log returns what the process wrote so far.
func (p *Bridge) Log() string { return p.log.String() }

func (p *Bridge) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("hookbridge did not exit:\n%s", Tail(p.log.String(), 40))
	}
	return p.code
}

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// MetricSum scrapes the /metrics of the bridge whose admin endpoint is admin
// and sums the samples of the metric name; NaN when /metrics does not answer.
func MetricSum(admin, name string) float64 { return MetricValue(admin, name, "") }

// Metrics returns what /metrics of the bridge whose admin endpoint is admin
// answers; "" when it does not answer.
func Metrics(admin string) string {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// MetricValue sums the samples of the metric name whose line contains label
// (a label pair such as route="b"; "" for all); NaN when /metrics does not
// answer.
func MetricValue(admin, name, label string) float64 {
	body := Metrics(admin)
	if body == "" {
		return math.NaN()
	}
	sum := 0.0
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}
