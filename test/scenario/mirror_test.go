package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// The failover docs/operations.md describes ("Disaster recovery with
// MirrorMaker 2"), on two kfake clusters, with franz-go clients doing what
// MM2 does under DefaultReplicationPolicy: records of orders copied to
// primary.orders on the DR cluster (same partition, other offsets: the
// primary's retention had removed its first records), offset syncs every few
// records, and the group's committed offsets translated conservatively and
// written into the same group on DR as a non-member without a leader epoch
// (one partition not translated). The bridge on DR resumes at the translated
// offsets, delivers what the primary had not, and again exactly the records
// between each sync point and the primary's commit (all of the untranslated
// partition): under other webhook-ids, the same ce-id. The primary's dead
// letters replay on DR under their original webhook-ids. Failing back, the
// primary's group resumes where it stopped, and the records produced on DR
// come back as dr.orders at their translated offsets.
func TestMirrorMakerFailoverAndFailback(t *testing.T) {
	if os.Getenv(testkit.EnvKafka) != "" {
		t.Skip("runs on two in-process brokers of its own, not on the e2e broker (this scenario runs in go test ./...)")
	}
	const parts = 3
	primary := mirrorCluster(t, kfake.SeedTopics(parts, "orders", "dr.orders"), kfake.SeedTopics(1, "orders.dlq"))
	dr := mirrorCluster(t, kfake.SeedTopics(parts, "primary.orders", "orders"), kfake.SeedTopics(1, "primary.orders.dlq", "orders.dlq"))
	rcv := newMirrorReceiver(t)
	route := func(topics, dlq string) string {
		return fmt.Sprintf(`  - name: orders-billing
    topics: [%s]
    target: {webhook: {url: %q, timeout: 5s}}
    retry: {max_attempts: 6, initial_backoff: 10ms, max_backoff: 100ms}
    dead_letter: {topic: %s}
`, topics, rcv.srv.URL+"/hook", dlq)
	}
	const group = "hookbridge.orders-billing"

	// On the primary: 60 records, four of them refused (dead-lettered), all
	// handled and committed; then 30 more the bridge never gets to.
	first := mirrorRecords(0, 60, "p")
	before := primary.Produce(t, "orders", first)
	p1 := startBridge(t, primary.Config(t, route("orders", "orders.dlq")))
	waitFor(t, 60*time.Second, "the primary's 56 deliveries", func() bool { return len(rcv.ids("orders-")) == 56 })
	waitFor(t, 60*time.Second, "4 dead letters on the primary", func() bool { return len(primary.readAll(t, "orders.dlq")) == 4 })
	if code := p1.Stop(); code != 0 {
		t.Fatalf("hookbridge on the primary exited with %d", code)
	}
	primaryCommit := primary.Committed(t, group, "orders", parts)
	// Retention removes the first 4 records of each partition: MM2, started
	// then, writes each record 4 offsets lower on DR.
	mirrorDeleteRecords(t, primary, "orders", parts, 4)
	notDelivered := primary.Produce(t, "orders", mirrorRecords(60, 30, "p"))

	// The disaster. MM2 had copied everything, and translated the group's
	// offsets of partitions 0 and 1.
	syncs := mirrorCopy(t, primary, dr, "orders", "primary.orders", parts)
	mirrorCopy(t, primary, dr, "orders.dlq", "primary.orders.dlq", 1)
	translated := map[int32]int64{}
	for p := range int32(2) {
		translated[p] = translate(syncs[p], primaryCommit[p])
	}
	mirrorAdminCommit(t, dr, group, "primary.orders", translated)

	// Producers fail over first: 10 records on DR's own orders.
	local := dr.Produce(t, "orders", mirrorRecords(90, 10, "d"))

	drCfg := dr.Config(t, route("primary.orders, orders", "orders.dlq"))
	if out, err := exec.Command(bridgeBin, "validate", "-c", drCfg).CombinedOutput(); err != nil || !strings.HasSuffix(string(out), ": ok (1 route(s))\n") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("validate of the DR configuration: %v\n%s", err, out)
	}
	rcv.mark()
	d1 := startBridge(t, drCfg)

	// What DR delivers: every record not delivered on the primary, and again
	// those at or past the DR offset it resumed at (the oldest one on an
	// untranslated partition).
	want := map[string]bool{}
	for _, m := range notDelivered {
		want[mirrorSeq(m)] = true
	}
	for _, m := range local {
		want[mirrorSeq(m)] = true
	}
	again := 0
	for _, m := range before {
		from, ok := translated[m.Partition]
		if !ok {
			from = 0
		}
		if m.Offset >= 4 && m.Offset-4 >= from && !mirrorPoison(m) {
			want[mirrorSeq(m)] = true
			again++
		}
	}
	if again == 0 || again >= 56 {
		t.Fatalf("%d records to deliver again: the translation should make some, not all", again)
	}
	waitFor(t, 60*time.Second, "DR's deliveries", func() bool { return len(rcv.bodiesSinceMark()) >= len(want) })
	waitFor(t, 30*time.Second, "DR's commits at the partitions' ends", func() bool {
		for _, topic := range []string{"primary.orders", "orders"} {
			got := dr.Committed(t, group, topic, parts)
			for p := range int32(parts) {
				if got[p] != mirrorEnd(t, dr, topic, p) {
					return false
				}
			}
		}
		return true
	})
	if code := d1.Stop(); code != 0 {
		t.Fatalf("hookbridge on DR exited with %d", code)
	}
	got := rcv.bodiesSinceMark()
	if !maps.Equal(got, want) {
		t.Errorf("DR delivered %d records, want %d: %v", len(got), len(want), mapDiff(got, want))
	}
	// Each one delivered again comes under another webhook-id, with the ce-id
	// its producer set.
	for _, d := range rcv.all() {
		if !strings.HasPrefix(d.id, "primary.orders-") {
			continue
		}
		prev := rcv.byBody(d.body, "orders-")
		if prev != nil && (prev.id == d.id || prev.ceID != d.ceID) {
			t.Errorf("record %s: on the primary %s ce-id %s, on DR %s ce-id %s", d.body, prev.id, prev.ceID, d.id, d.ceID)
		}
	}

	// Replay on DR of the primary's dead letters, the receiver fixed.
	rcv.acceptAll()
	rcv.mark()
	replayCfg := dr.Config(t, route("primary.orders, orders", "primary.orders.dlq"))
	if out, err := exec.Command(bridgeBin, "dlq", "replay", "-c", replayCfg, "--route", "orders-billing").CombinedOutput(); err != nil {
		t.Fatalf("dlq replay on DR: %v\n%s", err, out)
	}
	var wantIDs []string
	for _, m := range before {
		if mirrorPoison(m) {
			wantIDs = append(wantIDs, m.ID())
		}
	}
	slices.Sort(wantIDs)
	var replayed []string
	for _, d := range rcv.sinceMark() {
		replayed = append(replayed, d.id)
	}
	slices.Sort(replayed)
	if !slices.Equal(replayed, wantIDs) {
		t.Errorf("replay on DR delivered %v, want the primary's ids %v", replayed, wantIDs)
	}

	// Failing back: DR's own records reach the primary as dr.orders, with
	// the DR group's offsets translated; the primary's group of orders
	// resumes where it committed.
	drSyncs := mirrorCopy(t, dr, primary, "orders", "dr.orders", parts)
	back := map[int32]int64{}
	drCommit := dr.Committed(t, group, "orders", parts)
	for p := range int32(parts) {
		back[p] = translate(drSyncs[p], drCommit[p])
	}
	mirrorAdminCommit(t, primary, group, "dr.orders", back)
	rcv.mark()
	p2 := startBridge(t, primary.Config(t, route("orders, dr.orders", "orders.dlq")))
	wantBack := map[string]bool{}
	for _, m := range notDelivered {
		wantBack[mirrorSeq(m)] = true
	}
	for _, m := range local {
		if m.Offset >= back[m.Partition] {
			wantBack[mirrorSeq(m)] = true
		}
	}
	waitFor(t, 60*time.Second, "the failback's deliveries", func() bool { return len(rcv.bodiesSinceMark()) >= len(wantBack) })
	if code := p2.Stop(); code != 0 {
		t.Fatalf("hookbridge on the primary, failed back, exited with %d", code)
	}
	if got := rcv.bodiesSinceMark(); !maps.Equal(got, wantBack) {
		t.Errorf("failback delivered %d records, want %d: %v", len(got), len(wantBack), mapDiff(got, wantBack))
	}
	t.Logf("failover delivered %d of the primary's records again; failback %d", again, len(wantBack))
}

func mirrorCluster(t *testing.T, opts ...kfake.Opt) *broker {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &broker{&testkit.Broker{Addrs: c.ListenAddrs()}}
}

// mirrorRecords are n records from seq on, over 6 keys, each with a ce_id
// header its producer set; every record of seq%15 == 7 below 60 is refused
// by the primary's receiver.
func mirrorRecords(seq, n int, prefix string) []testkit.Message {
	out := make([]testkit.Message, n)
	for i := range out {
		s := seq + i
		tag := ""
		if s < 60 && s%15 == 7 {
			tag = "poison"
		}
		v, _ := json.Marshal(rec{Key: fmt.Sprintf("k%d", s%6), Seq: s, Tag: tag})
		out[i] = testkit.Message{Key: fmt.Appendf(nil, "k%d", s%6), Value: v, Headers: []sarama.RecordHeader{
			{Key: []byte("content-type"), Value: []byte("application/json")},
			{Key: []byte("ce_id"), Value: fmt.Appendf(nil, "%s-order-%d", prefix, s)}}}
	}
	return out
}

func mirrorSeq(m testkit.Produced) string { return string(m.Value) }

func mirrorPoison(m testkit.Produced) bool { return strings.Contains(string(m.Value), "poison") }

func mirrorEnd(t *testing.T, b *broker, topic string, p int32) int64 {
	t.Helper()
	cl, err := sarama.NewClient(b.Addrs, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return end
}

func mirrorDeleteRecords(t *testing.T, b *broker, topic string, parts int32, before int64) {
	t.Helper()
	a := b.admin(t)
	defer a.Close()
	offs := map[int32]int64{}
	for p := range parts {
		offs[p] = before
	}
	if err := a.DeleteRecords(topic, offs); err != nil {
		t.Fatal(err)
	}
}

// offsetSync is one of MM2's: the record at upstream offset up was written
// at down.
type offsetSync struct{ up, down int64 }

// mirrorCopy copies every record of from's topic to to's topic dst, partition
// for partition, keeping key, value, headers and timestamp, as MM2 does, and
// returns an offset sync of every fourth record of each partition (and of
// its first and last).
func mirrorCopy(t *testing.T, from, to *broker, topic, dst string, parts int32) map[int32][]offsetSync {
	t.Helper()
	src, err := kgo.NewClient(kgo.SeedBrokers(from.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := kgo.NewClient(kgo.SeedBrokers(to.Addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	syncs := map[int32][]offsetSync{}
	for _, m := range from.readAll(t, topic) {
		r := &kgo.Record{Topic: dst, Partition: m.Partition, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(h.Key), Value: h.Value})
		}
		res := out.ProduceSync(t.Context(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		s := syncs[m.Partition]
		if len(s) == 0 || (m.Offset-s[0].up)%4 == 0 {
			syncs[m.Partition] = append(s, offsetSync{m.Offset, res[0].Record.Offset})
		}
	}
	return syncs
}

// translate is MM2's conservative translation (Kafka 3.5 on) of the
// committed offset off: the downstream offset of the last sync at or below
// it, plus one when the sync is below it.
func translate(syncs []offsetSync, off int64) int64 {
	var best *offsetSync
	for i := range syncs {
		if syncs[i].up <= off {
			best = &syncs[i]
		}
	}
	if best == nil {
		return 0
	}
	if best.up == off {
		return best.down
	}
	return best.down + 1
}

// mirrorAdminCommit commits offs for group as MM2's checkpoint connector
// does (an AdminClient's alterConsumerGroupOffsets): no member, no
// generation, no leader epoch, no metadata.
func mirrorAdminCommit(t *testing.T, b *broker, group, topic string, offs map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, off := range offs {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, off, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("commit of %s/%d: %v", topic, p.Partition, err)
		}
	}
}

type mirrorDelivery struct{ id, ceID, body string }

// mirrorReceiver accepts every record but those tagged poison (422) until
// acceptAll, and remembers each accepted one.
type mirrorReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []mirrorDelivery
	from     int
	accepted bool
}

func newMirrorReceiver(t *testing.T) *mirrorReceiver {
	r := &mirrorReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.accepted && strings.Contains(string(body), "poison") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		r.got = append(r.got, mirrorDelivery{req.Header.Get("webhook-id"), req.Header.Get("ce-id"), string(body)})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *mirrorReceiver) acceptAll() { r.mu.Lock(); r.accepted = true; r.mu.Unlock() }
func (r *mirrorReceiver) mark()      { r.mu.Lock(); r.from = len(r.got); r.mu.Unlock() }

func (r *mirrorReceiver) all() []mirrorDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *mirrorReceiver) sinceMark() []mirrorDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[r.from:])
}

// bodiesSinceMark is the set of records delivered since mark.
func (r *mirrorReceiver) bodiesSinceMark() map[string]bool {
	out := map[string]bool{}
	for _, d := range r.sinceMark() {
		out[d.body] = true
	}
	return out
}

// ids is the set of webhook-ids with prefix accepted.
func (r *mirrorReceiver) ids(prefix string) map[string]bool {
	out := map[string]bool{}
	for _, d := range r.all() {
		if strings.HasPrefix(d.id, prefix) {
			out[d.id] = true
		}
	}
	return out
}

// byBody is the first delivery of body under a webhook-id with prefix.
func (r *mirrorReceiver) byBody(body, prefix string) *mirrorDelivery {
	for _, d := range r.all() {
		if d.body == body && strings.HasPrefix(d.id, prefix) {
			return &d
		}
	}
	return nil
}

func mapDiff(got, want map[string]bool) string {
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	return fmt.Sprintf("not expected %v; missing %v", extra, missing)
}
