package plugins

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"gopkg.in/yaml.v3"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// The real servers these tests write to; without them the tests skip.
const (
	envRedis    = "HOOKBRIDGE_TEST_REDIS"    // host:port
	envPostgres = "HOOKBRIDGE_TEST_POSTGRES" // postgres://... URL
)

// Executables built by TestMain, only when a server is named.
var bridgeBin, redisBin, postgresBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv(envRedis) == "" && os.Getenv(envPostgres) == "" {
		return m.Run() // every test skips; building would be wasted
	}
	dir, err := os.MkdirTemp("", "hookbridge-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if bridgeBin, err = testkit.BuildBridge(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	redisBin = filepath.Join(dir, "hookbridge-redis")
	postgresBin = filepath.Join(dir, "hookbridge-postgres")
	for out, pkg := range map[string]string{redisBin: "github.com/hookbridge/hookbridge/plugins/redis", postgresBin: "github.com/hookbridge/hookbridge/plugins/postgres"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}

// need returns the server env names. Without one it skips the test, except
// in the end-to-end tier (HOOKBRIDGE_E2E=1, set by test/e2e.sh), where a
// missing service is a failure: that tier must never pass by skipping.
func need(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		msg := env + ` is not set: no server to test the plugin against (eval "$(bash test/services/start.sh)" starts Redis and PostgreSQL; make e2e does)`
		if os.Getenv("HOOKBRIDGE_E2E") == "1" {
			t.Fatal("HOOKBRIDGE_E2E=1 but " + msg)
		}
		t.Skip(msg)
	}
	return v
}

// rec is a test record's value: its key and its sequence within the key.
type rec struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// written is one record as the sink holds it.
type written struct {
	Partition int32
	Offset    int64
	Rec       rec
}

// sink is where a plugin writes, as the test sees it.
type sink interface {
	// written returns the records written so far, in the order they were
	// written.
	written(t *testing.T) []written
	// block makes writes wait until release is called.
	block(t *testing.T) (release func())
	// blocked reports whether at least one write is waiting.
	blocked(t *testing.T) bool
}

// bridgeReadier is a sink with work to do once the first bridge is ready
// (its plugin started) and before any record is produced.
type bridgeReadier interface {
	bridgeReady(t *testing.T)
}

// scenario is a kill -9 run: a bridge routes a topic to a plugin.
type scenario struct {
	plugin string // executable
	// prepare returns the plugin's env and its sink for the topic of the
	// run (a name unique to it).
	prepare func(t *testing.T, topic string) (env map[string]string, s sink)
	n       int // records
	keys    int // distinct keys
}

// result is what a scenario run leaves for the checks.
type result struct {
	produced []testkit.Produced
	// redelivered counts the records written before the restart whose
	// offsets were not committed: the restarted bridge delivered them
	// again, and the plugin had to make those deliveries no-ops.
	redelivered int
}

// run routes a new topic to the plugin through a hookbridge process and
// kills it with SIGKILL while writes are in flight:
//
//  1. the first half of the records is produced and written;
//  2. the sink is blocked, the second half produced, and once a write waits
//     on the sink the bridge is killed (kill -9), with records in flight
//     and offsets uncommitted;
//  3. the sink is released (an orphaned plugin process may now finish the
//     writes it had), the bridge restarted, and the run ends when the
//     group has committed every record and the bridge stopped (SIGTERM,
//     exit 0). No process of the plugin may outlive the run.
func (s scenario) run(t *testing.T) result {
	t.Helper()
	b := testkit.NewBroker(t)
	topic, group := testkit.TopicName(t, "in"), testkit.TopicName(t, "g")
	const partitions = 4
	b.CreateTopic(t, topic, partitions)
	env, sink := s.prepare(t, topic)
	cfg := s.config(t, b, env, topic, group)
	t.Cleanup(func() { waitForPluginsToExit(t, s.plugin) })

	msgs := make([]testkit.Message, s.n)
	seq := make([]int, s.keys)
	for i := range msgs {
		k := i % s.keys
		v, _ := json.Marshal(rec{Key: "k" + strconv.Itoa(k), Seq: seq[k]})
		seq[k]++
		msgs[i] = testkit.Message{Key: []byte("k" + strconv.Itoa(k)), Value: v,
			Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}
	}
	half := s.n / 2

	p := testkit.StartBridge(t, bridgeBin, cfg)
	if r, ok := sink.(bridgeReadier); ok {
		r.bridgeReady(t)
	}
	produced := b.Produce(t, topic, msgs[:half])
	testkit.WaitFor(t, 2*time.Minute, "the first half to be written", func() bool { return len(sink.written(t)) >= half })

	release := sink.block(t)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	produced = append(produced, b.Produce(t, topic, msgs[half:])...)
	testkit.WaitFor(t, time.Minute, "a write to wait on the blocked sink", func() bool { return sink.blocked(t) })
	p.Kill()
	release()
	released = true

	// What the restarted bridge will deliver again: records written whose
	// offsets the group had not committed.
	committed := b.Committed(t, group, topic, partitions)
	redelivered := 0
	for _, w := range sink.written(t) {
		if w.Offset >= committed[w.Partition] {
			redelivered++
		}
	}

	p2 := testkit.StartBridge(t, bridgeBin, cfg)
	end := map[int32]int64{}
	for _, pr := range produced {
		end[pr.Partition] = max(end[pr.Partition], pr.Offset+1)
	}
	testkit.WaitFor(t, 3*time.Minute, "every record to be committed", func() bool {
		got := b.Committed(t, group, topic, partitions)
		for part, want := range end {
			if got[part] != want {
				return false
			}
		}
		return true
	})
	if code := p2.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d after SIGTERM", code)
	}
	return result{produced: produced, redelivered: redelivered}
}

// config writes the bridge's configuration: one plugin, one route.
func (s scenario) config(t *testing.T, b *testkit.Broker, env map[string]string, topic, group string) string {
	t.Helper()
	doc := map[string]any{
		"kafka":            map[string]any{"brokers": b.Addrs, "session_timeout": "6s"},
		"admin":            map[string]any{"listen": testkit.AnyPort},
		"log":              map[string]any{"level": "info"},
		"shutdown_timeout": "10s",
		"plugins": map[string]any{
			"sink": map[string]any{
				"command":                  []string{s.plugin},
				"env":                      env,
				"instances":                map[string]any{"min": 1, "max": 2},
				"concurrency_per_instance": 32,
				"timeout":                  "30s",
			},
		},
		"routes": []any{map[string]any{
			"name":        "sink",
			"topics":      []string{topic},
			"group":       group,
			"ordering":    "key",
			"concurrency": 64,
			"target":      map[string]any{"plugin": "sink"},
			"retry":       map[string]any{"max_attempts": 50, "initial_backoff": "20ms", "max_backoff": "500ms"},
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hookbridge.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkExactlyOnce asserts that the sink holds every produced record once
// and that each key's records were written in the order they were produced.
func checkExactlyOnce(t *testing.T, got []written, produced []testkit.Produced) {
	t.Helper()
	type coord struct {
		p int32
		o int64
	}
	want := map[coord]rec{}
	for _, pr := range produced {
		var r rec
		if err := json.Unmarshal(pr.Value, &r); err != nil {
			t.Fatal(err)
		}
		want[coord{pr.Partition, pr.Offset}] = r
	}
	seen := map[coord]int{}
	next := map[string]int{}
	var problems []string
	for _, w := range got {
		c := coord{w.Partition, w.Offset}
		seen[c]++
		r, ok := want[c]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("partition %d offset %d was written but not produced", c.p, c.o))
		case r != w.Rec:
			problems = append(problems, fmt.Sprintf("partition %d offset %d holds %+v, produced %+v", c.p, c.o, w.Rec, r))
		case seen[c] > 1:
			problems = append(problems, fmt.Sprintf("partition %d offset %d (%s/%d) written %d times", c.p, c.o, r.Key, r.Seq, seen[c]))
		case r.Seq != next[r.Key]:
			problems = append(problems, fmt.Sprintf("key %s: seq %d written when %d was next (order broken)", r.Key, r.Seq, next[r.Key]))
		default:
			next[r.Key]++
		}
	}
	for c, r := range want {
		if seen[c] == 0 {
			problems = append(problems, fmt.Sprintf("partition %d offset %d (%s/%d) was never written", c.p, c.o, r.Key, r.Seq))
		}
	}
	if len(got) != len(produced) {
		problems = append(problems, fmt.Sprintf("%d records written, %d produced", len(got), len(produced)))
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		t.Fatalf("not exactly once:\n  %s", strings.Join(problems, "\n  "))
	}
}

// pluginPIDs returns the processes running the executable bin: plugin
// processes this test's bridges started (bin is in the test's own
// directory).
func pluginPIDs(bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.TrimSuffix(exe, " (deleted)") == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitForPluginsToExit asserts that no plugin process outlives the test:
// the ones the killed bridge left behind notice that their parent is gone
// and stop. Leftovers are killed (by pid) so that they do not outlive a
// failed test either.
func waitForPluginsToExit(t *testing.T, bin string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		return // no /proc: nothing to check
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && len(pluginPIDs(bin)) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if left := pluginPIDs(bin); len(left) > 0 {
		for _, pid := range left {
			if proc, err := os.FindProcess(pid); err == nil {
				_ = proc.Kill()
			}
		}
		t.Errorf("plugin processes %v outlived their bridge (killed now)", left)
	}
}
