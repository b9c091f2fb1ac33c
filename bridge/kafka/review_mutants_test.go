package kafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// A leader elected a moment ago is most often one record behind its
// predecessor: asked whether a record lies at the one offset below the end,
// it shows nothing, its high watermark just short of that end. That is no
// answer, as with a leader further behind; taken as "nothing there", the
// empty-tail check would mark past the record, and commit past it.
func TestRecordBeforeTrustsNoLeaderOneRecordBehind(t *testing.T) {
	const topic = "one-behind"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addrs := cluster.ListenAddrs()
	produceN(t, addrs, topic, 6)
	sc, err := NewConfig(config.Kafka{Version: config.DefaultKafkaVersion, ClientID: "test", SessionTimeout: config.Duration(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(addrs, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })

	var lagging atomic.Bool
	var checks atomic.Int32
	answerFromLaggingLeader(cluster, topic, 5, &lagging, &checks)
	if found, err := RecordBefore(client, topic, 0, 5, 6); err != nil || !found {
		t.Fatalf("the leader holding record 5: RecordBefore(5, 6) = %v, %v; want true, nil", found, err)
	}
	lagging.Store(true)
	if found, err := RecordBefore(client, topic, 0, 5, 6); !errors.Is(err, errPastVisibleEnd) {
		t.Fatalf("a leader whose high watermark is 5: RecordBefore(5, 6) = %v, %v; want the error that it cannot tell", found, err)
	}
}

// A call whose context ends while its records wait for their topic's room
// wrote none of them, and the error must name each: an answer without
// error would let the caller take a dead letter for written and commit
// past its record. (Produce's own select on the context hides most of this,
// but not when sarama's answer and the context's end race.)
func TestRecordsGivenNoRoomAreEachNamedUnwritten(t *testing.T) {
	const full, other = "full", "other"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, full, other))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	p, _ := newTestProducer(t, cluster.ListenAddrs())
	tr := p.enterRoom(full)
	if err := tr.sem.Acquire(t.Context(), int64(p.roomSize)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.sem.Release(int64(p.roomSize))
		p.leaveRoom(full, tr)
	})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	msgs := []*sarama.ProducerMessage{
		{Topic: full, Value: sarama.StringEncoder("a")},
		{Topic: other, Value: sarama.StringEncoder("b")},
		{Topic: full, Value: sarama.StringEncoder("c")},
	}
	pes, ok := errors.AsType[sarama.ProducerErrors](p.sendInRoom(ctx, msgs))
	if !ok {
		t.Fatalf("records given no room before their context ended: no sarama.ProducerErrors")
	}
	named := make(map[*sarama.ProducerMessage]error)
	for _, pe := range pes {
		named[pe.Msg] = pe.Err
	}
	for _, m := range msgs {
		if m.Topic == full && !errors.Is(named[m], context.Canceled) {
			t.Errorf("record %v of %s, given no room: error %v, want context.Canceled", m.Value, full, named[m])
		}
	}
}

// Close waits for the sends in flight, but not for the records that still
// wait for their topic's room: those would each wait in turn for sarama's
// answer to the records ahead of them (a leaderless topic: its whole retry
// budget per chunk), and a shutdown would wait for all of them. A record
// that gets its room once Close was called is not sent, and its call says
// the producer is closed.
func TestCloseSendsNoRecordThatWaitedForRoom(t *testing.T) {
	const full = "full"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, full))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	p, client := newTestProducer(t, cluster.ListenAddrs())
	tr := p.enterRoom(full)
	if err := tr.sem.Acquire(t.Context(), int64(p.roomSize)); err != nil {
		t.Fatal(err)
	}
	users := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return tr.users
	}
	state := func() string { return fmt.Sprintf("%d calls use the room, closed %v", users(), p.isClosed()) }

	produced := make(chan error, 1)
	go func() { produced <- p.Produce(t.Context(), []target.Output{{Topic: full, Value: []byte("late")}}) }()
	waitFor(t, "the record to wait for room", func() bool { return users() == 2 }, state)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	waitFor(t, "Close to begin", p.isClosed, state)

	tr.sem.Release(int64(p.roomSize))
	p.leaveRoom(full, tr)
	if err := <-produced; !errors.Is(err, errClosed) {
		t.Fatalf("Produce that waited for room while the producer closed = %v, want the producer closed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if end, err := client.GetOffset(full, 0, sarama.OffsetNewest); err != nil || end != 0 {
		t.Fatalf("%s ends at %d (%v), want nothing written", full, end, err)
	}
}

// A reload that points the grant at another token endpoint, or at another
// client secret file, gets a provider of its own: one shared with the grant
// before would go on asking the old endpoint, with the old file's secret.
func TestOAuthBearerProviderFollowsTheEndpointAndSecretFile(t *testing.T) {
	idp := func() string {
		srv, _ := tokenEndpoint(t, 3600)
		return srv.URL
	}
	dir := t.TempDir()
	secretFile := func(name string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	provider := func(o config.OAuth2) *tokenProvider { t.Helper(); return configuredProvider(t, o) }
	grant := config.OAuth2{TokenURL: idp(), ClientID: "hookbridge-endpoint", ClientSecretFile: secretFile("a")}
	first := provider(grant)
	for name, change := range map[string]func(*config.OAuth2){
		"token url":          func(o *config.OAuth2) { o.TokenURL = idp() },
		"client secret file": func(o *config.OAuth2) { o.ClientSecretFile = secretFile("b") },
	} {
		other := grant
		change(&other)
		if provider(other) == first {
			t.Errorf("a grant with another %s shares the first grant's provider", name)
		}
	}
}
