package scenario

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Switching kafka.initial_offset from oldest to newest for a group that has
// committed offsets must not move it: the records produced while the bridge
// was stopped are delivered after the restart, on every partition, also on
// one that had received no record before (and so had no committed offset).
func TestInitialOffsetSwitchKeepsACommittedGroup(t *testing.T) {
	b := newBroker(t)
	const parts = 4
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, parts)
	rcv := newReceiver(t, nil)
	spec := routeSpec{Name: "r", Topic: topic, Group: group, URL: rcv.url(), Ordering: "partition"}
	path := b.config(t, spec)
	p := startBridge(t, path)

	// One record: one partition gets a committed offset, the others none.
	first := b.produce(t, topic, []rec{{Key: "first", Seq: 0}})
	waitFor(t, time.Minute, "the first record", func() bool { return rcv.uniqueAccepted() == 1 })
	waitFor(t, time.Minute, "its commit", func() bool {
		return b.Committed(t, group, topic, parts)[first[0].Partition] == first[0].Offset+1
	})
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	t.Logf("committed before the switch: %v", b.Committed(t, group, topic, parts))

	// Produced while the bridge is stopped, over every partition.
	during := keyed(200, 40)
	b.produce(t, topic, during)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "  session_timeout: 6s\n", "  session_timeout: 6s\n  initial_offset: newest\n", 1)
	if !strings.Contains(cfg, "initial_offset: newest") {
		t.Fatalf("the configuration has no kafka.session_timeout line to set initial_offset after:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startBridge(t, path)
	// Records after them on every partition: once these are delivered
	// (ordering: partition), so are those before them, unless skipped.
	after := make([]rec, len(during))
	for i, r := range keyed(200, 40) {
		r.Seq += 1000
		after[i] = r
	}
	b.produce(t, topic, after)
	want := append([]rec{{Key: "first", Seq: 0}}, during...)
	want = append(want, after...)
	seenAfter := func() int {
		n := 0
		for _, d := range rcv.accepted() {
			if d.Rec.Seq >= 1000 {
				n++
			}
		}
		return n
	}
	waitFor(t, time.Minute, "the records produced after the restart", func() bool { return seenAfter() >= len(after) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	seen := map[rec]bool{}
	for _, d := range rcv.accepted() {
		seen[d.Rec] = true
	}
	missing := 0
	for _, w := range want {
		if !seen[w] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of the %d records produced while the bridge was stopped were never delivered: "+
			"initial_offset: newest moved a group that had committed offsets", missing, len(during))
	}
}

// A reload that renames a route, and with it its default consumer group
// hookbridge.<name>, starts a new group at initial_offset: every retained
// record is delivered again (or, with newest, those the old group had not
// delivered are skipped). The bridge says so; a route added on a topic of
// its own, or renamed with its group kept, gets no such warning.
func TestReloadWarnsWhenARouteChangesItsGroup(t *testing.T) {
	b := newBroker(t)
	topic, other := topicName(t, "in"), topicName(t, "other")
	b.CreateTopic(t, topic, 2)
	b.CreateTopic(t, other, 2)
	rcv := newReceiver(t, nil)
	named := func(specs ...routeSpec) string {
		data, err := os.ReadFile(b.configRoutes(t, specs...))
		if err != nil {
			t.Fatal(err)
		}
		// The default group, hookbridge.<name>.
		return strings.ReplaceAll(string(data), "    group: \n", "")
	}
	path := writeConfig(t, named(routeSpec{Name: "orders", Topic: topic, URL: rcv.url()}))
	p := startBridge(t, path)
	recs := keyed(50, 5)
	b.produce(t, topic, recs)
	waitFor(t, time.Minute, "the records", func() bool { return rcv.uniqueAccepted() == len(recs) })

	reloadConfig(t, p, path, named(
		routeSpec{Name: "orders-v2", Topic: topic, URL: rcv.url()},
		routeSpec{Name: "added", Topic: other, URL: rcv.url()}))
	waitFor(t, 30*time.Second, "the reload", func() bool { return strings.Contains(p.Log(), "configuration reloaded") })
	// The renamed route's new group reads the topic again from its oldest record.
	waitFor(t, time.Minute, "the records delivered again", func() bool { return len(rcv.accepted()) >= 2*len(recs) })
	if code := p.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var warned []string
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "consumer group no route used before") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], `"group":"hookbridge.orders-v2"`) ||
		!strings.Contains(warned[0], `"old_group":"hookbridge.orders"`) {
		t.Fatalf("want one warning naming the renamed route's new and old groups, got %q", warned)
	}
}
