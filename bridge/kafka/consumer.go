package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/internal/detach"
	"github.com/hookbridge/hookbridge/bridge/internal/logevery"
	"github.com/hookbridge/hookbridge/bridge/internal/monoclock"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// ConsumerOptions configure one route's consumer.
type ConsumerOptions struct {
	Route   config.Route
	Brokers []string
	// Sarama is this consumer's own configuration (balance strategies are
	// stateful and must not be shared between groups).
	Sarama *sarama.Config
	// Target is the route's whole dispatch chain. A nil error from it is a
	// terminal outcome; anything else leaves the record unacknowledged.
	Target          target.Target
	Metrics         *telemetry.Route
	Logger          *slog.Logger
	ShutdownTimeout time.Duration
}

// Pause reasons of a partition. A partition fetches only when it has none.
const (
	pauseBackpressure = "backpressure"
	pauseStuck        = "stuck"
	pauseHeld         = "held" // see maxHeld
)

type topicPartition struct {
	topic     string
	partition int32
}

// Consumer runs one route: a consumer group whose claims feed ordering lanes.
type Consumer struct {
	opts   ConsumerOptions
	newest bool // initial_offset newest: see startAtNewest
	log    *slog.Logger
	claims *claimLog // "claims changed" lines
	budget *budget
	ready  chan laneTask // runnable lanes, taken by the workers
	// workersDone is closed when Run stops its workers, after every claim
	// returned: a task still on its way to ready then is a dropped one.
	workersDone chan struct{}
	// workers are the route's delivery workers: concurrency of them, and
	// spare more, one for each record stuck, up to maxSpare (see
	// fitWorkersLocked); a worker that takes a token from retire stops.
	workers  sync.WaitGroup
	retire   chan struct{} // capacity maxSpare
	spare    int           // under mu
	maxSpare int

	// Set by Run.
	group   sarama.ConsumerGroup
	client  sarama.Client   // the group's own; also asks the coordinator for committed offsets
	stop    <-chan struct{} // closed when shutdown starts
	hardCtx context.Context // ends shutdown_timeout after shutdown starts

	mu           sync.Mutex
	parts        map[topicPartition]*partition
	reasons      map[topicPartition]map[string]bool
	routeReasons map[string]bool                   // pause every partition (open breaker, disabled)
	paused       map[topicPartition]bool           // what sarama was told
	stuck        map[topicPartition]map[int64]bool // offsets of the records that cannot move on, and whether each holds room in the budget
	lastMarks    map[topicPartition]int64          // the marks of the session's ended claims, for commitMarks
	commitErr    error                             // what the last session's commitMarks left uncommitted

	// The latest offset of every partition owned is looked up every
	// offsetsEvery, and soon after a claim starts (offsetsNow).
	offsetsEvery time.Duration
	commitsStale time.Duration // see checkCommits
	errorsEvery  time.Duration // see logErrors
	silentAfter  time.Duration // see silentAfter
	silentLogged bool          // noteAnswer's, watchCoordinator's own
	noIDsLogged  bool          // checkRecreated's own
	epochsLogged bool          // clearEpochs' own
	nErrors      atomic.Int64  // errors sarama reported, for tests
	offsetsNow   chan struct{} // capacity 1

	joined     atomic.Bool
	joinErr    atomic.Pointer[error] // why the last try to join failed; nil once joined
	answered   atomic.Int64          // when the group's coordinator last answered (a monoclock reading): a join, or watchCoordinator's request
	unanswered atomic.Pointer[error] // why watchCoordinator's last request got no answer; nil once one did
	disabled   atomic.Pointer[error]
}

// NewConsumer builds a consumer; it starts nothing until Run.
func NewConsumer(opts ConsumerOptions) *Consumer {
	r := opts.Route
	conc := max(r.Concurrency, 1)
	maxRecords := int64(max(4*conc, 256))
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// A member that drains for longer than the group's rebalance timeout
	// is expelled while it still delivers, and the partition's next owner
	// starts on the same records alongside it: the rebalance timeout
	// covers the drain, with a margin for the final commit.
	if sc := opts.Sarama; sc != nil && sc.Consumer.Group.Rebalance.Timeout < opts.ShutdownTimeout+rebalanceMargin {
		sc.Consumer.Group.Rebalance.Timeout = opts.ShutdownTimeout + rebalanceMargin
	}
	// Every route has a client of its own: with sarama's default each
	// would fetch the metadata of every topic of the cluster at its start
	// and every minute, and hold it. On a cluster that many teams share,
	// 200 routes held 200 copies of it (2,000 topics of 12 partitions:
	// 883 MB of live heap). connect fetches its topics' itself.
	if sc := opts.Sarama; sc != nil {
		sc.Metadata.Full = false
	}
	// sarama starts a claim whose committed offset the broker no longer
	// has (retention deleted the records after it while the group was
	// away) at Offsets.Initial, as it starts one with no committed offset.
	// From newest it would skip every record still retained: the consumer
	// has sarama start both at the oldest, and itself starts the claims
	// with no committed offset at the newest (startAtNewest).
	newest := false
	if sc := opts.Sarama; sc != nil && sc.Consumer.Offsets.Initial == sarama.OffsetNewest {
		newest = true
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	log = log.With("route", r.Name, "group", r.GroupID())
	maxSpare := int(maxRecords)/2 - conc
	c := &Consumer{
		newest: newest,
		opts:   opts,
		log:    log,
		claims: newClaimLog(log),
		budget: newBudget(maxRecords, int64(r.MaxInFlightBytes), int64(2*conc)),
		// Each runnable lane holds at least one record of the budget, and
		// the tasks that ended claims dropped are taken out (purgeReady),
		// so the queue seldom fills.
		ready:   make(chan laneTask, maxRecords+1),
		parts:   make(map[topicPartition]*partition),
		reasons: make(map[topicPartition]map[string]bool),
		paused:  make(map[topicPartition]bool),
		stuck:   make(map[topicPartition]map[int64]bool),

		lastMarks: make(map[topicPartition]int64),

		retire:   make(chan struct{}, maxSpare),
		maxSpare: maxSpare,

		routeReasons: make(map[string]bool),
		offsetsEvery: offsetsEvery,
		commitsStale: commitsStale,
		errorsEvery:  errorsEvery,
		silentAfter:  silentAfter,
		offsetsNow:   make(chan struct{}, 1),
	}
	// A broker that throttles the route's fetches or group requests (a
	// client quota) slows the route down and says nothing else.
	if sc := opts.Sarama; sc != nil {
		ReportThrottles(sc, log, func(d time.Duration) {
			if m := c.opts.Metrics; m != nil {
				m.KafkaThrottled(d)
			}
		})
	}
	return c
}

// rebalanceMargin is what the group's rebalance timeout gives a draining
// member beyond its shutdown timeout.
const rebalanceMargin = 15 * time.Second

// offsetsEvery is how often a consumer looks up the latest offsets of the
// partitions it owns: with one request per broker, however many partitions.
const offsetsEvery = 5 * time.Second

// unknownOffset stands for an offset not looked up yet.
const unknownOffset = -1

// Run joins the group and consumes until ctx ends, then drains: fetching
// stops, records already being delivered finish (for at most the shutdown
// timeout), marked offsets are committed and the group is left. Records
// fetched but not started stay uncommitted and are redelivered after restart.
// Run returns after every goroutine it started has exited.
func (c *Consumer) Run(ctx context.Context) error {
	client, group := c.connect(ctx)
	if group == nil {
		return nil // stopped before it could connect: nothing was consumed
	}
	c.group = group
	c.client = client
	c.stop = ctx.Done()
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	c.hardCtx = hardCtx

	var wg sync.WaitGroup
	wg.Go(func() { c.logErrors(group.Errors()) })
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-hardCtx.Done():
			return
		}
		t := time.NewTimer(c.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			if recs, _ := c.budget.held(); recs > 0 {
				c.log.Warn("shutdown timeout reached; abandoning records still in flight", "timeout", c.opts.ShutdownTimeout, "records", recs)
			} else {
				// What held the shutdown is the final commit, or the
				// session's end, which waits for the coordinator.
				c.log.Warn("shutdown timeout reached with no record in flight: the coordinator has not taken the final commit "+
					"or ended the session (are the brokers reachable?); giving up on it", "timeout", c.opts.ShutdownTimeout)
			}
			hardCancel()
		case <-hardCtx.Done():
		}
	})
	offsetsDone := make(chan struct{})
	wg.Go(func() { c.watchOffsets(client, offsetsDone) })
	wg.Go(func() { c.watchCoordinator(client, offsetsDone) })

	workersDone := make(chan struct{})
	c.workersDone = workersDone
	for range max(c.opts.Route.Concurrency, 1) {
		c.workers.Go(func() { c.work(workersDone) })
	}
	handler := &groupHandler{c: c}
	wait := time.Duration(0) // before the next try to join after a failed one
	epochsClear := false     // see clearEpochs
	for ctx.Err() == nil {
		if !epochsClear {
			epochsClear = c.clearEpochs(client)
		}
		err := group.Consume(ctx, c.opts.Route.Topics, handler)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			break
		}
		wait = rejoinWait(wait, err)
		if err != nil {
			c.joined.Store(false)
			if errors.Is(err, sarama.ErrInconsistentGroupProtocol) {
				strategy := "?"
				if ss := c.opts.Sarama.Consumer.Group.Rebalance.GroupStrategies; len(ss) > 0 {
					strategy = ss[0].Name()
				}
				err = fmt.Errorf("%w: the group's other members use another partition assignment than this one's kafka.balance, %s "+
					"(or are no consumers of the same kind); all members of a group must use the same: stop the other members "+
					"(an application whose group this route takes over; replicas with another kafka.balance: stop every replica, "+
					"then start them with one setting), and this route joins by itself", err, strategy)
				c.log.Error("cannot join the group; retrying", "error", err)
			} else if errors.Is(err, sarama.ErrFencedInstancedId) {
				err = c.fenced(err)
				c.log.Error("cannot join the group; retrying", "error", err)
			} else {
				c.log.Warn("consume failed; rejoining", "error", err)
			}
			c.joinErr.Store(&err)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			c.findCoordinator(ctx, client)
		}
	}
	c.joined.Store(false)
	// Every claim has returned, so no lane is queued or running.
	close(workersDone)
	c.workers.Wait()
	if err := group.Close(); err != nil {
		// The coordinator refused the leave (the group's other members
		// then take this member's partitions after its session timeout,
		// not at once), or sarama handed back a consumer error still
		// queued. Neither says anything of what was delivered and
		// committed, which commitErr below does.
		c.log.Warn("leaving the consumer group", "error", err)
	} else if !epochsClear {
		// The route shared the group (the app's assignor) or joined it
		// while a member was in it: the epoch it commits with stayed.
		// Left last, it takes it out now, so that the app rolled back
		// resumes at the route's commits.
		c.clearEpochs(client)
	}
	// Closing the client ends a lookup of offsets in flight at once.
	close(offsetsDone)
	if cerr := client.Close(); cerr != nil {
		c.log.Warn("closing the kafka client", "error", cerr)
	}
	hardCancel()
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.commitErr != nil {
		return fmt.Errorf("kafka: route %s: final commit: %w", c.opts.Route.Name, c.commitErr)
	}
	return nil
}

// findCoordinator asks the brokers again which of them coordinates the
// group, before the next try to join after a failed one. sarama's join,
// when it cannot reach the coordinator it has cached (its broker died:
// kill -9, a lost host), closes the connection but keeps that broker as the
// coordinator, and asks again only when a broker answers NOT_COORDINATOR:
// every later join dialled the dead broker, and the route consumed nothing
// until the client's next metadata refresh dropped it (up to a minute, see
// NewConfig), though the cluster had moved the group to a live broker
// seconds after the death. A failed lookup (no broker answers) is left to
// the next join, which fails and comes back here.
func (c *Consumer) findCoordinator(ctx context.Context, client sarama.Client) {
	if ctx.Err() != nil {
		return
	}
	group := c.opts.Route.GroupID()
	_, _ = detach.Call(ctx, func() (struct{}, error) {
		return struct{}{}, client.RefreshCoordinator(group)
	}, func(struct{}) {})
}

// logErrors logs the errors sarama reports on errs until it is closed. While
// the brokers are away sarama reports an error for every partition of the
// route at each of its retries, about one a second each: a route of 500
// partitions would log 500 lines a second for as long as an outage lasts.
// So the first error after a quiet spell is logged at once, and those that
// follow within errorsEvery are counted and logged as one line at its end:
// the last of them, and how many there were (repeated). An error that makes
// a partition unreadable is noteUnreadable's.
func (c *Consumer) logErrors(errs <-chan error) {
	lines := logevery.Throttle{Every: c.errorsEvery}
	defer lines.Close()
	for err := range errs {
		c.nErrors.Add(1)
		if c.noteUnreadable(err) {
			continue
		}
		level := slog.LevelWarn
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			err, level = c.fenced(err), slog.LevelError
		}
		lines.Note(func(repeated int, within time.Duration) {
			if repeated == 0 {
				c.log.Log(context.Background(), level, "kafka consumer error", "error", err)
				return
			}
			c.log.Log(context.Background(), level, "kafka consumer error", "error", err, "repeated", repeated, "within", within.String())
		})
	}
}

// fenced explains FENCED_INSTANCE_ID: another member joined the group with
// this replica's kafka.group_instance_id, and the coordinator took the id
// from this one: its session ends at its next heartbeat, and it cannot
// join again while the other holds the id.
func (c *Consumer) fenced(err error) error {
	return fmt.Errorf("%w: another member of group %s joined with this replica's kafka.group_instance_id %q, and took it over; "+
		"every replica needs an id of its own (a StatefulSet pod's name)", err, c.opts.Route.GroupID(), c.opts.Sarama.Consumer.Group.InstanceId)
}

// errorsEvery is the least time between two "kafka consumer error" lines of
// a route (see logErrors).
const errorsEvery = 10 * time.Second

// rejoinWait is how long Run waits before it tries to join the group again
// after a try that ended with err, when the one before waited last: 1 s
// after the first failure, twice as long after each next one up to
// rejoinMax, and nothing after a session that ended normally (a
// rebalance). A route that cannot join (a topic that does not exist yet,
// members with another kafka.balance) then neither fills the log with a
// warning every second nor asks the brokers that often, and one that can
// join again does within rejoinMax.
func rejoinWait(last time.Duration, err error) time.Duration {
	if err == nil {
		return 0
	}
	if last <= 0 {
		return time.Second
	}
	return min(2*last, rejoinMax)
}

// rejoinMax bounds the wait between two failed tries to join a group.
const rejoinMax = 10 * time.Second

// clearEpochs takes the leader epochs out of the group's committed offsets
// of the route's topics, before the route joins. sarama commits every
// offset with the leader epoch it found committed when its claim started,
// and never one of its own: the epoch another client committed (the app
// whose group the route took over: the Java client, librdkafka, franz-go)
// went on with every commit of the bridge, for good. Rolled back to such a
// client after the partition's leader changed, it took the old epoch for a
// log truncation at that epoch's end and read again from there: every
// record the bridge had delivered since. Without an epoch a client resumes
// at the offset itself. The coordinator takes such a commit, the same
// offset and metadata, only while the group has no member (the app
// stopped); then no member commits meanwhile. It reports whether the
// offsets carry no epoch any more; if not, the next join asks again, and
// so does Run once the route left the group.
func (c *Consumer) clearEpochs(client sarama.Client) bool {
	sc := c.opts.Sarama
	if !sc.Version.IsAtLeast(sarama.V2_1_0_0) {
		return true // no epoch is committed or fetched below Kafka 2.1
	}
	group := c.opts.Route.GroupID()
	byTopic := make(map[string][]int32)
	for _, topic := range c.opts.Route.Topics {
		if ps, err := client.Partitions(topic); err == nil {
			byTopic[topic] = ps
		}
	}
	if len(byTopic) == 0 {
		return false // no topic known yet: asked at the next join
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return false
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(sc.Version, group, byTopic))
	if err != nil || resp.Err != sarama.ErrNoError {
		return false
	}
	req := sarama.NewOffsetCommitRequest(sc, group)
	var epochs []string
	for topic, parts := range byTopic {
		for _, p := range parts {
			if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 && b.LeaderEpoch >= 0 {
				req.AddBlockWithLeaderEpoch(topic, p, b.Offset, -1, 0, b.Metadata)
				epochs = append(epochs, fmt.Sprintf("%s/%d", topic, p))
			}
		}
	}
	if len(epochs) == 0 {
		return true
	}
	slices.Sort(epochs)
	cresp, err := coord.CommitOffset(req)
	if err == nil {
		for _, errs := range cresp.Errors {
			for _, kerr := range errs {
				if kerr != sarama.ErrNoError {
					err = kerr
				}
			}
		}
	}
	if err != nil {
		if !c.epochsLogged {
			c.epochsLogged = true
			c.log.Warn("the group's committed offsets carry another client's leader epoch, which the bridge's commits keep; "+
				"taking it out failed (the coordinator allows it only while the group has no member); tried again at each join "+
				"and when the route leaves the group",
				"partitions", epochs, "error", err)
		}
		return false
	}
	c.log.Info("took another client's leader epoch out of the group's committed offsets (offsets unchanged)", "partitions", epochs)
	return true
}

// noteUnreadable marks the partition of err, a consumer error, as
// unreadable when its fetch failed for the size of what the broker holds
// there: a compressed batch that inflates past sarama's
// MaxDecompressedBatchSize, or a response past its MaxResponseSize; or
// because the broker refuses the client's principal access to the topic
// (TOPIC_AUTHORIZATION_FAILED: the ACLs grant it no READ on it). sarama
// fetches it again and again and fails each time; nothing past it is read or
// committed, and Ready reports the partition until a record of it is read
// again, or, for a refusal, until a fetch of checkRefused's is answered. It
// reports whether err was such an error (logged at error level, once per
// partition while it lasts).
func (c *Consumer) noteUnreadable(err error) bool {
	ce, ok := errors.AsType[*sarama.ConsumerError](err)
	if !ok || !tooLargeToRead(ce.Err) && !readRefused(ce.Err) {
		return false
	}
	c.mu.Lock()
	p := c.parts[topicPartition{ce.Topic, ce.Partition}]
	c.mu.Unlock()
	if p == nil {
		c.log.Warn("kafka consumer error", "error", err)
		return true
	}
	e := ce.Err
	if p.unreadable.Swap(&e) == nil {
		if readRefused(e) {
			c.log.Error("partition cannot be read: the broker refuses this client's principal READ on the topic (an ACL); "+
				"nothing of it is read or committed until it is granted",
				"topic", ce.Topic, "partition", ce.Partition, "error", ce.Err)
		} else {
			c.log.Error("partition cannot be read: what the broker holds at its position is too large; nothing past it is read or committed",
				"topic", ce.Topic, "partition", ce.Partition, "error", ce.Err)
		}
	}
	return true
}

// NotAuthorized reports whether err is the broker refusing a request for
// the client's principal: an ACL grants it no access to the topic, group or
// cluster. Asking again changes nothing until an operator grants it.
func NotAuthorized(err error) bool {
	return errors.Is(err, sarama.ErrTopicAuthorizationFailed) || errors.Is(err, sarama.ErrGroupAuthorizationFailed) ||
		errors.Is(err, sarama.ErrClusterAuthorizationFailed)
}

// readRefused reports whether a partition's fetch failed because the
// broker refuses the principal READ on its topic. A refusal of the group
// (GROUP_AUTHORIZATION_FAILED, on a commit) is not the partition's: it ends
// the session, and Ready reports the group not joined.
func readRefused(err error) bool { return errors.Is(err, sarama.ErrTopicAuthorizationFailed) }

// checkRefused fetches, for each of parts that the broker refused to read
// (see noteUnreadable), from the partition's latest offset; once the broker
// answers, the refusal is over and the partition is readable again. The
// claim loop cannot tell: a partition that holds nothing new gives it no
// record to read.
func (c *Consumer) checkRefused(client sarama.Client, parts []*partition) {
	for _, p := range parts {
		e := p.unreadable.Load()
		if e == nil || !readRefused(*e) {
			continue
		}
		from := max(p.latest.Load(), 0)
		// A fetch at the latest offset finds nothing past it: the answer
		// that says so is the broker's consent.
		if _, err := RecordBefore(client, p.tp.topic, p.tp.partition, from, from+1); err != nil && !errors.Is(err, errPastVisibleEnd) {
			continue // asked again on the next round
		}
		if p.unreadable.CompareAndSwap(e, nil) {
			c.log.Info("partition can be read again", "topic", p.tp.topic, "partition", p.tp.partition)
		}
	}
}

// checkRecreated asks for the IDs of the topics of parts, keeps the first
// one each claim sees, and ends the claims whose topic has another ID since:
// the topic was deleted and created again under its name. sarama reads such
// a partition on at the offset it had reached in the old topic, and when the
// new one holds that many records by then it reads them from there, with no
// error: the new topic's first records would never be delivered, and the
// group's offset would be committed past them. Brokers older than Kafka 2.8,
// or a kafka.version below 2.8.0, give topics no ID (metadata before v10);
// nothing is checked then, and a warning says so once.
func (c *Consumer) checkRecreated(client sarama.Client, parts []*partition) {
	if len(parts) == 0 {
		return
	}
	var topics []string
	for _, p := range parts {
		topics = append(topics, p.tp.topic)
	}
	slices.Sort(topics)
	b, err := client.Leader(parts[0].tp.topic, parts[0].tp.partition)
	if err != nil {
		return // asked again on the next round
	}
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(client.Config().Version, slices.Compact(topics)))
	if err != nil {
		return
	}
	if resp.Version < minTopicIDMetadata {
		if !c.noIDsLogged {
			c.noIDsLogged = true
			c.log.Warn("the brokers give topics no ID (Kafka 2.8 or later, with kafka.version at least 2.8.0): "+
				"a topic deleted and created again while the route consumes it is not noticed, and the new topic's first records may be skipped",
				"kafka_version", client.Config().Version.String(), "metadata_version", resp.Version)
		}
		return
	}
	ids := make(map[string]sarama.Uuid)
	for _, t := range resp.Topics {
		if errors.Is(t.Err, sarama.ErrNoError) && t.Uuid != (sarama.Uuid{}) {
			ids[t.Name] = t.Uuid
		}
	}
	for _, p := range parts {
		id, ok := ids[p.tp.topic]
		if !ok || p.topicID.CompareAndSwap(nil, &id) || *p.topicID.Load() == id {
			continue
		}
		p.recreatedOnce.Do(func() {
			c.log.Error("the topic was deleted and created again while the route consumed it: the records read already are delivered, "+
				"then the partition is read again from the oldest record of the new topic",
				"topic", p.tp.topic, "partition", p.tp.partition)
			close(p.recreated)
		})
	}
}

// minTopicIDMetadata is the first metadata version that gives topic IDs.
const minTopicIDMetadata = 10

// tooLargeToRead reports whether a fetch failed for the size of what it
// would read: a batch that decompresses past sarama's bound, or a response
// past MaxResponseSize.
func tooLargeToRead(err error) bool {
	if errors.Is(err, sarama.ErrDecompressedBatchTooLarge) {
		return true
	}
	pde, ok := errors.AsType[sarama.PacketDecodingError](err)
	return ok && strings.Contains(pde.Info, "too large")
}

// SetMetrics sets the route's instruments; call before Run.
func (c *Consumer) SetMetrics(m *telemetry.Route) { c.opts.Metrics = m }

// connect makes the group's own client (which the group does not close; it
// also looks up the partitions' offsets for Stats) and the consumer group.
// When the brokers cannot be reached (a reload or a start during a broker
// restart) it logs why, reports it through Ready, and tries again, waiting
// twice as long each time up to connectRetryMax, until ctx ends: then it
// returns nils. sarama's connection attempt cannot be canceled; one that
// ends after ctx is closed in the background.
func (c *Consumer) connect(ctx context.Context) (sarama.Client, sarama.ConsumerGroup) {
	type conn struct {
		client sarama.Client
		group  sarama.ConsumerGroup
	}
	wait := time.Second
	for {
		r, err := detach.Call(ctx, func() (r conn, err error) {
			if r.client, err = sarama.NewClient(c.opts.Brokers, c.opts.Sarama); err != nil {
				return r, err
			}
			// The client asks for no metadata itself (see NewConsumer):
			// this is the request that tells whether the brokers answer.
			// A topic that does not exist yet, or that the broker refuses,
			// is no reason to stay away from the group (Run logs and
			// reports it).
			if err = r.client.RefreshMetadata(c.opts.Route.Topics...); err != nil && !topicLevel(err) {
				_ = r.client.Close()
				return r, err
			}
			coord, err := sarama.NewClient(c.opts.Brokers, c.opts.Sarama)
			if err != nil {
				_ = r.client.Close()
				return r, err
			}
			r.client = &groupClient{Client: r.client, coord: coord}
			c.sizeFetches(r.client)
			c.checkStatic(r.client)
			if r.group, err = sarama.NewConsumerGroupFromClient(c.opts.Route.GroupID(), r.client); err != nil {
				_ = r.client.Close()
			}
			return r, err
		}, func(r conn) {
			_ = r.group.Close()
			_ = r.client.Close()
		})
		if err == nil {
			return r.client, r.group
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		joinErr := fmt.Errorf("kafka: route %s: join group %s: %w", c.opts.Route.Name, c.opts.Route.GroupID(), err)
		c.joinErr.Store(&joinErr)
		c.log.Warn("cannot connect to the brokers; retrying", "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
		wait = min(2*wait, connectRetryMax)
	}
}

// groupClient is a client that reaches the group's coordinator over
// connections of its own, coord's, as Java consumers do. sarama sends one
// request at a time on a connection, and before the next one waits out the
// throttle time the broker's last answer asked for (a client quota,
// KIP-219), holding the connection: with the coordinator also a
// partition's leader (always, with one broker), heartbeats and commits
// waited behind fetches throttled for seconds each, the broker expelled the
// member after session_timeout, and under a consumer quota the route
// rebalanced again and again, delivering next to nothing. Join, sync,
// heartbeat, commit and leave go through Coordinator.
type groupClient struct {
	sarama.Client
	coord sarama.Client
}

func (g *groupClient) Coordinator(group string) (*sarama.Broker, error) {
	return g.coord.Coordinator(group)
}

func (g *groupClient) RefreshCoordinator(group string) error {
	return g.coord.RefreshCoordinator(group)
}

func (g *groupClient) Close() error {
	return errors.Join(g.Client.Close(), g.coord.Close())
}

// RefreshMetadata refreshes the metadata of topics, and lets pass the error
// of partitions that have no leader (LEADER_NOT_AVAILABLE: the broker that
// led one is down, and no replica in sync took over). sarama keeps what the
// brokers said of every partition, then fails the whole refresh, and its
// consumer group refreshes before every join: a route on a topic of 256
// partitions with one of them offline did not join its group at all, and
// the other 255 were not consumed until the partition had a leader again.
// Joined, sarama gives a claim whose partition has no leader to the route
// once it has one (it looks again at each metadata refresh), and the
// partition's records wait for that, uncommitted.
func (g *groupClient) RefreshMetadata(topics ...string) error {
	err := g.Client.RefreshMetadata(topics...)
	if err == nil || !onlyLeaderless(err) {
		return err
	}
	for _, topic := range topics {
		// A topic the brokers listed no partitions of (one still being
		// created) is not known: that stays an error.
		if ps, perr := g.Client.Partitions(topic); perr != nil || len(ps) == 0 {
			return err
		}
	}
	return nil
}

// onlyLeaderless reports whether err, from a metadata refresh, says only
// that partitions have no leader: sarama joins one error per topic.
func onlyLeaderless(err error) bool {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		errs := multi.Unwrap()
		for _, e := range errs {
			if !onlyLeaderless(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	return errors.Is(err, sarama.ErrLeaderNotAvailable)
}

// topicLevel reports whether err, from a metadata request, is about some of
// the topics asked for rather than the brokers: those a client's first
// metadata request lets pass (sarama.NewClient with Metadata.Full), and a
// topic that does not exist.
func topicLevel(err error) bool {
	for _, kerr := range []error{sarama.ErrUnknownTopicOrPartition, sarama.ErrInvalidTopic, sarama.ErrLeaderNotAvailable,
		sarama.ErrReplicaNotAvailable, sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed} {
		if errors.Is(err, kerr) {
			return true
		}
	}
	return false
}

// connectRetryMax caps the wait between two tries of connect.
const connectRetryMax = 30 * time.Second

// sizeFetches bounds what sarama fetches for one partition at a time
// (Consumer.Fetch.Default, 1 MiB) to the route's max_in_flight_bytes divided
// by the partitions of its topics, never below minPartitionFetch. A claim
// pauses its partition once it holds its share of the read-ahead, but what
// was fetched by then is in memory already: at 1 MiB a partition, a route
// owning 500 partitions with a backlog held about 500 MiB, whatever its
// max_in_flight_bytes, far past a pod's memory limit. A record batch larger
// than the fetch size is still read: sarama asks again with a size that
// fits it. It runs before the group exists, while no partition consumer reads
// the configuration, and the count is the partitions at that moment (a member
// that owns fewer fetches less of the budget, never more).
func (c *Consumer) sizeFetches(client sarama.Client) {
	sc := c.opts.Sarama
	partitions := 0
	for _, topic := range c.opts.Route.Topics {
		ps, err := client.Partitions(topic)
		if err == nil {
			partitions += len(ps)
		}
	}
	budget := int64(c.opts.Route.MaxInFlightBytes)
	if partitions == 0 || budget <= 0 {
		return
	}
	size := max(budget/int64(partitions), minPartitionFetch)
	if size < int64(sc.Consumer.Fetch.Default) {
		sc.Consumer.Fetch.Default = int32(size)
	}
}

// checkStatic asks the group's coordinator which JoinGroup versions it
// takes when the route is to join as a static member (kafka.group_instance_id).
// sarama sends the highest version both sides take, and one older than v5
// (KIP-345, Kafka 2.3) carries no instance id: the coordinator counts the
// replica a dynamic member, while sarama, which believes it static, does
// not leave the group at shutdown. Every restart then left the replica's
// partitions with a member that was gone, their records waiting for
// session_timeout before the group moved them. Against such a coordinator
// the replica joins as the dynamic member it is, and says so once. It runs
// before the group exists; a coordinator that cannot be asked leaves the
// setting as it is.
func (c *Consumer) checkStatic(client sarama.Client) {
	sc := c.opts.Sarama
	if sc.Consumer.Group.InstanceId == "" {
		return
	}
	coord, err := client.Coordinator(c.opts.Route.GroupID())
	if err != nil {
		return
	}
	resp, err := coord.ApiVersions(&sarama.ApiVersionsRequest{})
	if err != nil || sarama.KError(resp.ErrorCode) != sarama.ErrNoError {
		return
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == apiKeyJoinGroup && k.MaxVersion < minStaticJoinGroup {
			c.log.Warn("the group's coordinator does not support static membership (KIP-345, Kafka 2.3 or later): "+
				"kafka.group_instance_id is not in effect; this replica joins as a dynamic member and leaves the group when it stops",
				"group_instance_id", sc.Consumer.Group.InstanceId, "broker", coord.Addr(), "join_group_max_version", k.MaxVersion)
			sc.Consumer.Group.InstanceId = ""
			return
		}
	}
}

// apiKeyJoinGroup is the Kafka API key of JoinGroup; minStaticJoinGroup is
// its first version that carries a group instance id.
const (
	apiKeyJoinGroup    = 11
	minStaticJoinGroup = 5
)

// minPartitionFetch is the least sizeFetches lets a partition's fetch be: a
// route with a small max_in_flight_bytes over many partitions would
// otherwise fetch a few records per request.
const minPartitionFetch = 32 << 10

// Ready returns nil when the route has joined its group, the group's
// coordinator answers, and nothing is stuck or disabled, else the reason.
func (c *Consumer) Ready() error {
	if err := c.Disabled(); err != nil {
		return fmt.Errorf("route %s disabled: %w", c.opts.Route.Name, err)
	}
	if !c.joined.Load() {
		if err := c.joinErr.Load(); err != nil {
			return fmt.Errorf("route %s has not joined group %s: %w", c.opts.Route.Name, c.opts.Route.GroupID(), *err)
		}
		return fmt.Errorf("route %s has not joined group %s", c.opts.Route.Name, c.opts.Route.GroupID())
	}
	if silent := monoclock.Since(c.answered.Load()); silent >= c.silentAfter {
		why := "a request to it waits for its answer"
		if err := c.unanswered.Load(); err != nil {
			why = (*err).Error()
		}
		return fmt.Errorf("route %s: the coordinator of group %s has not answered for %s: %s",
			c.opts.Route.Name, c.opts.Route.GroupID(), silent.Truncate(time.Second), why)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var stuck []string
	for tp, offsets := range c.stuck {
		for off := range offsets {
			stuck = append(stuck, fmt.Sprintf("%s/%d at offset %d", tp.topic, tp.partition, off))
		}
	}
	if len(stuck) > 0 {
		slices.Sort(stuck)
		// Stuck has three causes (a dead-letter write or a reply write that
		// keeps failing, a failed record on a route without a dead-letter
		// topic); its log line names the record's.
		return fmt.Errorf("route %s: stuck behind records that cannot reach a terminal outcome (the log says why): %s",
			c.opts.Route.Name, strings.Join(stuck, ", "))
	}
	var unreadable []string
	for tp, p := range c.parts {
		if e := p.unreadable.Load(); e != nil {
			unreadable = append(unreadable, fmt.Sprintf("%s/%d (%v)", tp.topic, tp.partition, *e))
		}
	}
	if len(unreadable) > 0 {
		slices.Sort(unreadable)
		return fmt.Errorf("route %s: partitions that cannot be read, nothing past their position is read or committed: %s",
			c.opts.Route.Name, strings.Join(unreadable, ", "))
	}
	var behind []string
	for tp, p := range c.parts {
		if since := p.behindSince.Load(); since != 0 && monoclock.Since(since) >= c.commitsStale {
			behind = append(behind, fmt.Sprintf("%s/%d", tp.topic, tp.partition))
		}
	}
	if len(behind) > 0 {
		slices.Sort(behind)
		return fmt.Errorf("route %s: offsets not committed for %s (the broker refuses or does not answer commits): %s",
			c.opts.Route.Name, c.commitsStale, strings.Join(behind, ", "))
	}
	return nil
}

// Disable stops the route until it is started again (a restart, or a
// reload, which starts a disabled route anew): every partition pauses, lanes
// start nothing new, and Ready reports err. Nothing is dead-lettered.
func (c *Consumer) Disable(err error) {
	if !c.disabled.CompareAndSwap(nil, &err) {
		return
	}
	c.log.Error("route disabled; its partitions are paused until a restart or reload", "error", err)
	c.PauseAll("disabled", true)
}

// Disabled returns the error that disabled the route, or nil.
func (c *Consumer) Disabled() error {
	if p := c.disabled.Load(); p != nil {
		return *p
	}
	return nil
}

// PauseAll pauses (on) or resumes (off) fetching of every partition the route
// owns now or later, for reason. Records already fetched are held, in order.
// A partition fetches again once no reason, route-wide or its own, is left.
func (c *Consumer) PauseAll(reason string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.routeReasons[reason] = true
	} else {
		delete(c.routeReasons, reason)
	}
	for tp := range c.parts {
		c.applyPauseLocked(tp)
	}
}

// Stuck marks rec's partition as unable to commit past rec: it pauses and
// Ready turns false until every record marked Stuck in it is Unstuck. A
// record already marked stays so, and is logged once.
// ctx is the record's (its trace ids go in the log line).
func (c *Consumer) Stuck(ctx context.Context, rec *target.Record, err error) {
	logStuck := func() {
		c.log.ErrorContext(ctx, "record cannot reach a terminal outcome; its partition will not commit past it",
			"record", rec.ID(), "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "error", err)
	}
	tp := topicPartition{rec.Topic, rec.Partition}
	c.mu.Lock()
	p, owned := c.parts[tp]
	c.mu.Unlock()
	if !owned {
		logStuck()
		return // the claim is over; the next owner redelivers rec
	}
	// A record that gave its room back while it was queued behind another
	// stuck record holds none: counting it as a stuck holder would let the
	// budget take it for room that is held, and admit past its bounds.
	held := p.holdsNow(rec)
	c.mu.Lock()
	if c.parts[tp] != p {
		c.mu.Unlock()
		return
	}
	if c.stuck[tp] == nil {
		c.stuck[tp] = make(map[int64]bool)
	}
	_, was := c.stuck[tp][rec.Offset]
	newly := !was
	if newly {
		c.stuck[tp][rec.Offset] = held
		if held {
			c.budget.stick()
		}
		c.fitWorkersLocked()
	}
	c.setReasonLocked(tp, pauseStuck, true)
	c.mu.Unlock()
	if newly {
		logStuck()
		p.stickLane(rec, true)
	}
}

// Unstuck clears Stuck for rec.
func (c *Consumer) Unstuck(ctx context.Context, rec *target.Record) {
	c.log.InfoContext(ctx, "stuck record moved on", "record", rec.ID(), "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	tp := topicPartition{rec.Topic, rec.Partition}
	c.mu.Lock()
	p, owned := c.parts[tp]
	counted, was := c.stuck[tp][rec.Offset]
	if was {
		delete(c.stuck[tp], rec.Offset)
		if counted {
			c.budget.unstick()
		}
	}
	if len(c.stuck[tp]) == 0 {
		delete(c.stuck, tp)
		c.setReasonLocked(tp, pauseStuck, false)
	}
	c.fitWorkersLocked()
	c.mu.Unlock()
	if was && owned {
		p.stickLane(rec, false)
	}
}

// fitWorkersLocked keeps one worker more than the route's concurrency for
// each record stuck, up to maxSpare. A stuck record holds the worker that
// delivers it for as long as it is stuck (a parked record on a route
// without a dead-letter topic, for good): with concurrency 1, one record
// parked on one partition stopped every other partition of the route, and
// with more, as many records stuck on one partition as workers did. A spare
// worker a record no longer needs stops after its delivery, or at once when
// idle. Stuck records stay fewer than the workers, who are at most half of
// the budget's records (see budget.fitsLocked).
func (c *Consumer) fitWorkersLocked() {
	want := 0
	for _, offs := range c.stuck {
		want += len(offs)
	}
	want = min(want, c.maxSpare)
	for ; c.spare < want; c.spare++ {
		select {
		case <-c.retire: // a worker told to stop stays instead
		default:
			c.workers.Go(func() { c.work(c.workersDone) })
		}
	}
	for ; c.spare > want; c.spare-- {
		c.retire <- struct{}{} // never blocks: the workers told to stop are at most maxSpare
	}
}

// Stats snapshots the route for the metrics gauges. It reads only what the
// consumer already holds (it runs on every scrape): a partition's latest
// offset is the newer of its claim's high watermark, which moves with fetch
// responses, and the one watchOffsets last looked up, which also moves while
// the partition is paused and fetches nothing.
func (c *Consumer) Stats() telemetry.RouteStats {
	recs, byts := c.budget.held()
	st := telemetry.RouteStats{InFlightRecords: recs, InFlightBytes: byts}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, p := range c.parts {
		_, _, oldest := p.tr.state()
		ps := telemetry.PartitionStats{Topic: tp.topic, Partition: tp.partition,
			Lag: p.lag(), Paused: c.paused[tp], Stuck: len(c.stuck[tp]) > 0 || p.unreadable.Load() != nil}
		if !oldest.IsZero() {
			ps.OldestAge = now.Sub(oldest)
		}
		st.Partitions = append(st.Partitions, ps)
	}
	return st
}

// watchOffsets looks up the latest offset of every partition the consumer
// owns, every offsetsEvery and soon after a claim starts, until done is
// closed; and, once, the oldest offset of a claim that started there.
func (c *Consumer) watchOffsets(client sarama.Client, done <-chan struct{}) {
	every(c.offsetsEvery, c.offsetsNow, done, func() { c.lookUpOffsets(client) })
}

// owned returns the partitions the consumer owns now.
func (c *Consumer) owned() []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.parts))
}

// every calls fn every period, and at once whenever now delivers (a nil now
// never does), until done is closed.
func every(period time.Duration, now, done <-chan struct{}, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		case <-now:
		}
		fn()
	}
}

// lookUpOffsets resolves the start of claims that started from the oldest
// offset, then looks up the latest offset of every partition the consumer
// owns, and stores both in the partitions; then asks whether the broker
// still refuses the partitions it refused to read (checkRefused), and
// whether a topic was deleted and created again (checkRecreated). What fails
// is tried again on the next round, after a metadata refresh.
func (c *Consumer) lookUpOffsets(client sarama.Client) {
	parts := c.owned()

	var unresolved []*partition
	for _, p := range parts {
		if p.start.Load() == unknownOffset {
			unresolved = append(unresolved, p)
		}
	}
	stale := c.listOffsets(client, unresolved, sarama.OffsetOldest, func(p *partition, off int64) {
		p.start.CompareAndSwap(unknownOffset, off)
	})
	stale = append(stale, c.listOffsets(client, parts, sarama.OffsetNewest, func(p *partition, off int64) {
		p.latest.Store(off)
	})...)
	c.checkStarts(client, parts)
	c.checkEmptyTails(client, parts)
	c.checkRefused(client, parts)
	c.checkRecreated(client, parts)
	if len(stale) > 0 {
		slices.Sort(stale)
		stale = slices.Compact(stale)
		if err := client.RefreshMetadata(stale...); err != nil {
			c.log.Debug("refreshing metadata", "topics", stale, "error", err)
		}
	}
}

// checkStarts asks the group's coordinator for the committed offsets of the
// claims of parts that sarama started at the oldest record, once each. sarama
// starts a claim there, and says nothing, when the group has no committed
// offset for the partition, but also when the broker no longer has the one it
// has (see NewConsumer): retention or kafka-delete-records removed the records
// after it while the group was away, and they are skipped; or it lies past the
// partition's end (the partition lost records, or the offset was set past
// it), and the partition is read again. Both are logged. In the second, sarama
// keeps the committed offset as the partition's mark and takes no mark below
// it: nothing was committed until the partition grew past it, and a restart
// before then resumed at that offset, past records not delivered yet. The
// mark goes back to where the claim started, then on to the claim's own.
func (c *Consumer) checkStarts(client sarama.Client, parts []*partition) {
	var check []*partition
	var tps []topicPartition
	for _, p := range parts {
		if p.checkStart.Load() && p.start.Load() >= 0 && p.latest.Load() >= 0 {
			check = append(check, p)
			tps = append(tps, p.tp)
		}
	}
	if len(check) == 0 {
		return
	}
	committed, err := c.committedOffsets(client, tps)
	if err != nil {
		return // asked again on the next round
	}
	for _, p := range check {
		off, ok := committed[p.tp]
		if !ok || !p.checkStart.CompareAndSwap(true, false) {
			continue
		}
		start, latest := p.start.Load(), p.latest.Load()
		marked, _ := p.tr.position()
		switch {
		case off < 0:
			// None committed: the group commits where the claim started,
			// unless the claim marked a record already. A partition that
			// gets no record would otherwise keep none, and a later switch
			// to initial_offset: newest, or an expiry of the group's
			// offsets, would start it past records produced meanwhile;
			// lag tools show it as unknown too.
			c.mu.Lock()
			if mark, _ := p.tr.position(); c.parts[p.tp] == p && mark < 0 {
				p.sess.MarkOffset(p.tp.topic, p.tp.partition, start, "")
			}
			c.mu.Unlock()
		case off < start: // the claim's own commits are at start or above
			c.log.Warn("records were deleted by the broker before the group read them (retention or kafka-delete-records "+
				"moved the partition's log start past the group's committed offset); they are skipped: the partition is read "+
				"from its oldest record",
				"topic", p.tp.topic, "partition", p.tp.partition, "from_offset", off, "to_offset", start-1)
		case off > start && off > marked:
			// Above all the claim marked, so not its own commit; and one
			// sarama found in range would have been the claim's start. The
			// partition may have grown past it since the claim began.
			c.log.Warn("the group's committed offset is past the partition's end (the partition lost records, or the offset "+
				"was set past its end); the partition is read again from its oldest record",
				"topic", p.tp.topic, "partition", p.tp.partition, "committed", off, "latest", latest, "from_offset", start)
			c.mu.Lock()
			if c.parts[p.tp] == p {
				p.sess.ResetOffset(p.tp.topic, p.tp.partition, start, "")
				if mark, _ := p.tr.position(); mark > start {
					p.sess.MarkOffset(p.tp.topic, p.tp.partition, mark, "")
				}
			}
			c.mu.Unlock()
		}
	}
}

// watchCoordinator asks the group's coordinator for the committed offsets of
// the partitions the consumer owns every offsetsEvery while it is joined,
// until done is closed: checkCommits compares them with what was marked,
// and notes whether the coordinator answered. It runs apart from
// watchOffsets, whose requests to the partitions' leaders may wait for a
// broker that does not answer.
func (c *Consumer) watchCoordinator(client sarama.Client, done <-chan struct{}) {
	every(c.offsetsEvery, nil, done, func() {
		if !c.joined.Load() {
			return // Ready says why; a join that succeeds is an answer
		}
		c.checkCommits(client, c.owned())
	})
}

// silentAfter is how long the group's coordinator may leave the consumer's
// requests unanswered before Ready reports it. Against a broker that hangs,
// or a network that drops its packets, every request waits for sarama's
// read timeout (Net.ReadTimeout, 30 s) and a heartbeat is tried six times
// before sarama ends the session: for minutes the route read as joined while
// it consumed and committed nothing, and the broker had expelled it from the
// group after the session timeout. It is longer than the read timeout plus
// watchCoordinator's period: sarama sends one request at a time to a broker,
// so a request that gets its answer, if late (a join that waits for a member
// slow to come back), may hold the next one up for that long.
const silentAfter = 45 * time.Second

// commitsStale is how long the group's committed offset of a partition may
// stay below what the consumer had marked (sarama commits marks every
// second) before Ready reports that commits are failing.
const commitsStale = 30 * time.Second

// checkCommits asks the group's coordinator for the committed offsets of
// parts, and notes the partitions whose committed offset has not reached
// what was marked at the previous check: their commits are failing (the
// broker refuses them, or the coordinator is gone), which sarama only logs,
// and a restart would redeliver everything since. Ready reports a partition
// once that lasted commitsStale. Whether the coordinator answered at all goes
// to noteAnswer.
func (c *Consumer) checkCommits(client sarama.Client, parts []*partition) {
	tps := make([]topicPartition, len(parts))
	for i, p := range parts {
		tps[i] = p.tp
	}
	if len(tps) == 0 && len(c.opts.Route.Topics) > 0 {
		// A member that owns no partition asks too: the answer tells that
		// the coordinator answers.
		tps = []topicPartition{{c.opts.Route.Topics[0], 0}}
	}
	committed, err := c.committedOffsets(client, tps)
	c.noteAnswer(err)
	if err != nil {
		return
	}
	now := monoclock.Now()
	for _, p := range parts {
		off, ok := committed[p.tp]
		marked, _ := p.tr.position()
		if !ok {
			continue
		}
		switch before, since := p.markedBefore, p.behindSince.Load(); {
		case before < 0 || off >= before:
			if since != 0 {
				c.log.Info("offsets are committed again", "topic", p.tp.topic, "partition", p.tp.partition, "committed", off)
			}
			p.behindSince.Store(0)
		case since == 0:
			p.behindSince.Store(now)
		case time.Duration(now-since) >= c.commitsStale && time.Duration(now-since)-c.offsetsEvery < c.commitsStale:
			c.log.Error("offsets are not being committed: a restart would redeliver every record since the committed offset",
				"topic", p.tp.topic, "partition", p.tp.partition, "committed", off, "marked", before)
		}
		p.markedBefore = marked
	}
}

// noteAnswer notes how watchCoordinator's request to the group's
// coordinator ended: err is nil when it answered. It logs once when the
// coordinator has not answered for silentAfter, and once when it answers
// again after that.
func (c *Consumer) noteAnswer(err error) {
	if err == nil {
		c.unanswered.Store(nil)
		c.answered.Store(monoclock.Now())
		if c.silentLogged {
			c.silentLogged = false
			c.log.Info("the group's coordinator answers again")
		}
		return
	}
	c.unanswered.Store(&err)
	if silent := monoclock.Since(c.answered.Load()); silent >= c.silentAfter && !c.silentLogged {
		c.silentLogged = true
		c.log.Error("the group's coordinator does not answer: the route consumes and commits nothing until it does",
			"for", silent.Truncate(time.Second).String(), "error", err)
	}
}

// committedOffsets asks the group's coordinator for the committed offsets
// of tps; a partition the answer has no offset for is left out.
func (c *Consumer) committedOffsets(client sarama.Client, tps []topicPartition) (map[topicPartition]int64, error) {
	return c.fetchCommitted(client, tps, false)
}

// fetchCommitted is committedOffsets; when strict, an answer that has an
// error for the group or for one of tps (a coordinator still loading its
// offsets, say), whose offset is then not known, is an error too.
func (c *Consumer) fetchCommitted(client sarama.Client, tps []topicPartition, strict bool) (map[topicPartition]int64, error) {
	return fetchCommitted(client, c.opts.Sarama.Version, c.opts.Route.GroupID(), tps, strict)
}

func fetchCommitted(client sarama.Client, version sarama.KafkaVersion, group string, tps []topicPartition, strict bool) (map[topicPartition]int64, error) {
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, err
	}
	byTopic := make(map[string][]int32)
	for _, tp := range tps {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(version, group, byTopic))
	if err != nil {
		_ = client.RefreshCoordinator(group)
		return nil, err
	}
	var answered error
	if resp.Err != sarama.ErrNoError {
		answered = fmt.Errorf("group %s: %w", group, resp.Err)
	}
	out := make(map[topicPartition]int64, len(tps))
	for _, tp := range tps {
		b := resp.GetBlock(tp.topic, tp.partition)
		switch {
		case b == nil:
			if answered == nil {
				answered = fmt.Errorf("%s/%d: no answer", tp.topic, tp.partition)
			}
		case b.Err != sarama.ErrNoError:
			if answered == nil {
				answered = fmt.Errorf("%s/%d: %w", tp.topic, tp.partition, b.Err)
			}
		default:
			out[tp] = b.Offset
		}
	}
	if strict && answered != nil {
		return nil, answered
	}
	return out, nil
}

// commitVerified is how long the end of a session (a rebalance, or
// shutdown, within what is left of shutdown_timeout) goes on committing the
// marks of its claims until the coordinator has them: sarama gives up after
// four quick tries, and a coordinator that moves at that moment would leave
// the next owner, or the restarted bridge, to redeliver what was delivered.
const commitVerified = 10 * time.Second

// commitMarks commits the marks the session's claims left in lastMarks and
// checks with the coordinator that they are committed, committing again with
// backoff until they are, commitVerified passes or the shutdown timeout
// does. It returns what stayed below its mark.
func (c *Consumer) commitMarks(sess sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	marks := c.lastMarks
	c.lastMarks = make(map[topicPartition]int64)
	c.mu.Unlock()
	return c.commitAndCheck(sess, marks)
}

// commitAndCheck commits the session's marks and checks with the
// coordinator that those of marks are committed, committing again with
// backoff until they are, commitVerified passes or the shutdown timeout
// does. It returns what stayed below its mark.
func (c *Consumer) commitAndCheck(sess sarama.ConsumerGroupSession, marks map[topicPartition]int64) error {
	if c.client == nil {
		sess.Commit()
		return nil
	}
	return commitChecked(c.hardCtx, sess, c.client, c.opts.Sarama.Version, c.opts.Route.GroupID(), marks)
}

// Committed asks group's coordinator for the offsets it committed for the
// partitions parts of topic: partition -> next offset, -1 or absent for a
// partition it committed none for. An answer with an error for the group
// or one of the partitions is an error, but for a group that does not
// exist (kfake says so of a group that never committed): it committed
// nothing.
func Committed(client sarama.Client, version sarama.KafkaVersion, group, topic string, parts []int32) (map[int32]int64, error) {
	tps := make([]topicPartition, len(parts))
	for i, p := range parts {
		tps[i] = topicPartition{topic: topic, partition: p}
	}
	committed, err := fetchCommitted(client, version, group, tps, true)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(committed))
	for tp, off := range committed {
		out[tp.partition] = off
	}
	return out, nil
}

// CommitChecked commits the session's marks and checks with the group's
// coordinator that the offsets of marks (partition -> next offset, of
// topic) are committed, committing again with backoff until they are,
// commitVerified (10 s) passes or ctx ends. It returns what stayed below its
// mark: sarama's Commit reports nothing, and gives up after a few quick
// tries.
func CommitChecked(ctx context.Context, sess sarama.ConsumerGroupSession, client sarama.Client, version sarama.KafkaVersion,
	group, topic string, marks map[int32]int64) error {
	tpm := make(map[topicPartition]int64, len(marks))
	for p, off := range marks {
		tpm[topicPartition{topic: topic, partition: p}] = off
	}
	return commitChecked(ctx, sess, client, version, group, tpm)
}

func commitChecked(ctx context.Context, sess sarama.ConsumerGroupSession, client sarama.Client, version sarama.KafkaVersion,
	group string, marks map[topicPartition]int64) error {
	sess.Commit()
	if len(marks) == 0 {
		return nil
	}
	tps := slices.Collect(maps.Keys(marks))
	deadline := time.Now().Add(commitVerified)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		committed, err := fetchCommitted(client, version, group, tps, false)
		var behind []string
		if err == nil {
			for tp, mark := range marks {
				if off, ok := committed[tp]; !ok || off < mark {
					behind = append(behind, fmt.Sprintf("%s/%d (committed %d, marked %d)", tp.topic, tp.partition, off, mark))
				}
			}
			if len(behind) == 0 {
				return nil
			}
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			slices.Sort(behind)
			if err != nil {
				return fmt.Errorf("could not check the committed offsets: %w", err)
			}
			return fmt.Errorf("offsets not committed: %s", strings.Join(behind, ", "))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		sess.Commit()
	}
}

// emptyTail bounds the offsets between a partition's next offset to commit
// and its latest that checkEmptyTails asks about while the partition is
// paused or holds records it read: a transaction leaves one control record
// after its last record, and a consumer that has everything else waits for
// no more. A partition that fetches and holds nothing is asked about
// whatever the distance: an aborted transaction leaves all its records.
const emptyTail = 8

// checkEmptyTails finds the partitions that hold nothing (none pending),
// whose latest offset is a few past their next offset to commit (or, with
// nothing marked yet, past where the claim started), and asks their leaders
// whether a record lies in between (only a few past, see emptyTail, unless
// the partition fetches and holds nothing). When none does (the offsets hold a
// transaction's markers, or an aborted transaction's records), the
// partition's lag counts from its last stable offset, and the tracker marks
// the offsets up to it as done, so that the group's committed offset
// reaches the end too, as a Java read_committed consumer's does. Otherwise
// the lag would read 1 for good after a transaction, here and in every tool
// that reads it from the committed offset (KEDA): an alert that never
// clears and a replica that never scales to zero. (Past the last stable
// offset lie the records of a transaction still open: they are not marked,
// and they count as lag until it ends.)
func (c *Consumer) checkEmptyTails(client sarama.Client, parts []*partition) {
	for _, p := range parts {
		marked, first := p.tr.position()
		if marked < 0 {
			marked = p.start.Load() // nothing marked yet: from where the claim started
		}
		latest := p.latest.Load()
		if first >= 0 || marked < 0 || latest <= marked || p.emptyTo.Load() >= latest {
			continue
		}
		if latest-marked > emptyTail && (p.nHeld.Load() > 0 || c.isPaused(p.tp)) {
			continue
		}
		found, err := RecordBefore(client, p.tp.topic, p.tp.partition, marked, latest)
		if err != nil || found {
			continue
		}
		// Nothing to read up to the last stable offset. The records below it
		// are decided (committed or aborted), so a read_committed fetch made
		// after it was looked up that finds none of them finds none for
		// good: a transaction that committed since the fetch above lies
		// below it now, and the second fetch sees its records.
		stable, err := StableEnd(client, p.tp.topic, p.tp.partition)
		if err != nil {
			continue // asked again on the next round
		}
		end := min(stable, latest)
		if end > marked {
			if found, err := RecordBefore(client, p.tp.topic, p.tp.partition, marked, end); err != nil || found {
				continue
			}
			if p.tr.skip(end) {
				p.sess.MarkOffset(p.tp.topic, p.tp.partition, end, "")
			}
		}
		// Only up to the last stable offset: the records of a transaction
		// still open lie past it, and they are lag until it ends (asked
		// again on the next round, as latest is not reached).
		p.emptyTo.Store(end)
	}
}

// listOffsets asks the leaders of parts for their offset at when
// (sarama.OffsetOldest or sarama.OffsetNewest), one request per broker, and
// hands each answer to found. It returns the topics of the partitions it got
// no answer for.
func (c *Consumer) listOffsets(client sarama.Client, parts []*partition, when int64, found func(*partition, int64)) (stale []string) {
	byLeader := make(map[*sarama.Broker][]*partition)
	for _, p := range parts {
		b, err := client.Leader(p.tp.topic, p.tp.partition)
		if err != nil {
			stale = append(stale, p.tp.topic)
			continue
		}
		byLeader[b] = append(byLeader[b], p)
	}
	for b, ps := range byLeader {
		req := sarama.NewOffsetRequest(client.Config().Version)
		for _, p := range ps {
			req.AddBlock(p.tp.topic, p.tp.partition, when, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			c.log.Debug("looking up offsets", "broker", b.Addr(), "error", err)
			_ = b.Close() // as sarama does after a failed request: the next one reconnects
			for _, p := range ps {
				stale = append(stale, p.tp.topic)
			}
			continue
		}
		for _, p := range ps {
			blk := resp.GetBlock(p.tp.topic, p.tp.partition)
			if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) || len(blk.Offsets) != 1 {
				stale = append(stale, p.tp.topic)
				continue
			}
			found(p, blk.Offsets[0])
		}
	}
	return stale
}

func (c *Consumer) setReason(tp topicPartition, reason string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setReasonLocked(tp, reason, on)
}

func (c *Consumer) setReasonLocked(tp topicPartition, reason string, on bool) {
	rs := c.reasons[tp]
	if on {
		if rs == nil {
			rs = make(map[string]bool)
			c.reasons[tp] = rs
		}
		rs[reason] = true
	} else if rs != nil {
		delete(rs, reason)
		if len(rs) == 0 {
			delete(c.reasons, tp)
		}
	}
	c.applyPauseLocked(tp)
}

// applyPauseLocked makes sarama's pause state of tp match its reasons.
func (c *Consumer) applyPauseLocked(tp topicPartition) {
	if _, owned := c.parts[tp]; !owned {
		return
	}
	want := len(c.reasons[tp]) > 0 || len(c.routeReasons) > 0
	if want == c.paused[tp] {
		return
	}
	c.tellPauseLocked(tp, want)
}

// isPaused reports whether tp's fetching is paused, for any reason.
func (c *Consumer) isPaused(tp topicPartition) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused[tp]
}

// tellPauseLocked tells sarama to pause or resume tp.
func (c *Consumer) tellPauseLocked(tp topicPartition, want bool) {
	c.paused[tp] = want
	m := map[string][]int32{tp.topic: {tp.partition}}
	if want {
		c.group.Pause(m)
	} else {
		c.group.Resume(m)
	}
}

type groupHandler struct{ c *Consumer }

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	if h.c.newest {
		if err := h.c.startAtNewest(sess); err != nil {
			return err
		}
	}
	h.c.joinErr.Store(nil)
	h.c.answered.Store(monoclock.Now())
	h.c.joined.Store(true)
	h.c.claims.session(sess.Claims())
	h.c.log.Info("joined group", "member", sess.MemberID(), "generation", sess.GenerationID(), "claims", sess.Claims())
	return nil
}

// startAtNewest marks and commits, for each claim of sess that the group
// has no committed offset for, of a topic none of whose claims of sess has
// one, the partition's newest offset, so that the claim starts there
// (initial_offset: newest) and not at the oldest record, where sarama is
// told to start it (see NewConsumer). It runs before the claims start. A
// partition added to a session later (cooperative rebalancing), with no
// offset committed by its earlier owner, starts at its oldest record: that
// is a partition added to the topic since, whose records would otherwise be
// skipped.
func (c *Consumer) startAtNewest(sess sarama.ConsumerGroupSession) error {
	var tps []topicPartition
	for topic, parts := range sess.Claims() {
		for _, p := range parts {
			tps = append(tps, topicPartition{topic, p})
		}
	}
	if len(tps) == 0 {
		return nil
	}
	// Only an answer without error says a partition has no committed
	// offset: one the coordinator could not give (it is still loading them,
	// or moved) would otherwise send a claim past records committed to.
	committed, err := c.fetchCommitted(c.client, tps, true)
	if err != nil {
		return fmt.Errorf("kafka: committed offsets of group %s: %w", c.opts.Route.GroupID(), err)
	}
	// A topic the group has committed offsets of is not new to it: a
	// partition of it without one (it had no record yet when the group
	// last ran, or was added to the topic since) starts at its oldest
	// record, so that switching initial_offset to newest never skips what
	// was produced there while the bridge was stopped.
	known := make(map[string]bool)
	for tp, off := range committed {
		known[tp.topic] = known[tp.topic] || off >= 0
	}
	marks := make(map[topicPartition]int64)
	for _, tp := range tps {
		if off, ok := committed[tp]; (ok && off >= 0) || known[tp.topic] {
			continue
		}
		newest, err := c.client.GetOffset(tp.topic, tp.partition, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("kafka: newest offset of %s/%d: %w", tp.topic, tp.partition, err)
		}
		marks[tp] = newest
	}
	if len(marks) == 0 {
		return nil
	}
	// Marked only once every one is known: sarama commits the marks of a
	// session whose Setup failed, and a partition marked before a lookup
	// failed made the topic known to the next try, which then started
	// every partition not reached yet at its oldest record.
	for tp, newest := range marks {
		sess.MarkOffset(tp.topic, tp.partition, newest, "")
	}
	// The commit must hold before the claims start: a member that dies
	// after delivering from there would otherwise leave the next owner no
	// committed offset, and it would start at the newest, past what was
	// not delivered.
	if err := c.commitAndCheck(sess, marks); err != nil {
		return fmt.Errorf("kafka: group %s: start offsets: %w", c.opts.Route.GroupID(), err)
	}
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	c := h.c
	c.joined.Store(false) // until the next session's Setup
	c.claims.flush()
	err := c.commitMarks(sess)
	if err != nil {
		c.log.Error("the session ended with offsets the coordinator did not commit: the next owner, or a restart, redelivers the records after them",
			"error", err)
	}
	c.mu.Lock()
	c.commitErr = err // the last session's: the one that ended at shutdown
	c.mu.Unlock()
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := h.c
	p := &partition{
		c:     c,
		sess:  sess,
		claim: claim,
		tp:    topicPartition{claim.Topic(), claim.Partition()},
		tr:    newTracker(),
		lanes: make(map[string]*lane),
		wait:  newBudgetWait(),

		maxStarted:   -1,
		markedBefore: -1,
		gen:          sess.GenerationID(),
		next:         claim.InitialOffset(),
		settled:      make(chan struct{}, 1),
		recreated:    make(chan struct{}),
	}
	p.start.Store(startOffset(claim))
	p.checkStart.Store(claim.InitialOffset() == sarama.OffsetOldest)
	p.latest.Store(unknownOffset)
	c.budget.join()
	defer c.budget.leave() // after releaseQueued, below
	workCtx, cancel := context.WithCancel(c.hardCtx)
	defer cancel()
	p.ctx = dispatch.WithStop(workCtx, c.stop)

	c.mu.Lock()
	c.parts[p.tp] = p
	// Whatever sarama holds for the partition now (a pause from an earlier
	// claim of it can outlive the claim), tell it what the route wants.
	c.tellPauseLocked(p.tp, len(c.routeReasons) > 0)
	c.mu.Unlock()
	c.claims.started(p.tp, p.gen)
	select {
	case c.offsetsNow <- struct{}{}:
	default: // a lookup is due already
	}
	defer func() {
		c.mu.Lock()
		if mark, _ := p.tr.position(); mark >= 0 && !p.revoked && !p.wasRecreated() {
			c.lastMarks[p.tp] = mark
		}
		delete(c.parts, p.tp)
		delete(c.paused, p.tp)
		delete(c.reasons, p.tp)
		c.mu.Unlock()
	}()

	p.consume()

	// The claim is over. On a rebalance in-flight work is canceled now (the
	// next owner redelivers it). On shutdown, deliveries in flight may finish
	// until the shutdown timeout, and so may queued records below the highest
	// offset already started: the commit then covers everything delivered,
	// and a restart redelivers nothing. Nothing above that frontier starts.
	draining := false
	select {
	case <-c.stop:
		draining = true
	default:
	}
	p.mu.Lock()
	p.closed = true
	p.drainBelow = -1
	if draining {
		p.drainBelow = p.maxStarted
	} else {
		p.dropQueuedLocked()
	}
	p.mu.Unlock()
	if !draining {
		cancel()
		c.purgeReady()
	}
	p.wg.Wait()
	// No delivery of the claim runs any more: a record still stuck was
	// abandoned (it gets no Unstuck) and is back in its lane, released below.
	c.mu.Lock()
	for _, counted := range c.stuck[p.tp] {
		if counted {
			c.budget.unstick()
		}
	}
	delete(c.stuck, p.tp)
	c.fitWorkersLocked()
	c.mu.Unlock()
	if _, first := p.tr.position(); p.deleted && first >= 0 {
		// The session ended, or the bridge stopped, before the records read
		// were delivered; the broker no longer has them (messagesClosed).
		c.log.Warn("records read before the broker deleted them were not delivered before the claim ended; they are skipped",
			"topic", p.tp.topic, "partition", p.tp.partition, "from_offset", first, "to_offset", p.next-1)
	}
	p.releaseQueued()
	if p.wasRecreated() && !p.revoked {
		// The marks are offsets of the old topic: the group's offset goes
		// back to the new topic's oldest record, which the next session's
		// claim reads from (the claim returned unrevoked: sarama ends the
		// session). No delivery runs any more to mark past it.
		from, err := c.client.GetOffset(p.tp.topic, p.tp.partition, sarama.OffsetOldest)
		if err != nil {
			from = 0 // below the log start, if it moved: read from the oldest record
		}
		sess.ResetOffset(p.tp.topic, p.tp.partition, from, "")
	}
	if p.revoked {
		c.claims.revokedFrom(p.tp, sess.GenerationID())
	}
	if mark, _ := p.tr.position(); p.revoked && mark >= 0 {
		// A cooperative rebalance revoked the claim. sarama commits the
		// partition when it is released, with a few quick tries only, and
		// its next owner starts from what is committed: check it now, while
		// the partition is still this member's to commit.
		if err := c.commitAndCheck(sess, map[topicPartition]int64{p.tp: mark}); err != nil {
			c.log.Error("a partition was handed over with offsets the coordinator did not commit: its next owner redelivers the records after them",
				"topic", p.tp.topic, "partition", p.tp.partition, "error", err)
		}
	}
	if mark, _, _ := p.tr.state(); mark >= 0 {
		c.log.Debug("claim released", "topic", p.tp.topic, "partition", p.tp.partition, "next_offset", mark, "revoked", p.revoked)
	}
	return nil
}

// partition is the state of one claim: its offset tracker and its lanes.
type partition struct {
	c     *Consumer
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	tp    topicPartition
	tr    *tracker
	ctx   context.Context // deliveries; canceled on revoke or at the shutdown timeout

	mu         sync.Mutex
	lanes      map[string]*lane
	unheld     map[*target.Record]bool // queued records that gave their room in the budget back
	nUnheld    atomic.Int32            // len(unheld), read without mu on the record path
	closed     bool                    // start no record, except below drainBelow
	drainBelow int64                   // on shutdown: records below this offset still run
	maxStarted int64                   // highest offset handed to the target
	wg         sync.WaitGroup

	// admit's place in the budget's line and its pause timer (made at the
	// first wait), kept for all the claim loop's waits
	wait       *budgetWait
	pauseTimer *time.Timer

	// held: records admit read from the claim while it waited for room, in
	// order, for consume to take first (see admit); heldPaused: the
	// partition is paused for them (maxHeld); revoked: the claim's messages
	// ended while the session goes on, as a cooperative rebalance revokes a
	// claim (see messagesClosed). All are the claim loop's own; nHeld is
	// len(held), for tests.
	held       []*sarama.ConsumerMessage
	heldBytes  int64 // of held, by heldSize
	aheadBytes int64 // budget.readAheadBytes, read at each wait for room
	heldPaused bool
	revoked    bool
	nHeld      atomic.Int32

	// gen: the session's generation when the claim started; next: the
	// offset after the last record read from the claim (its initial offset
	// before, a sentinel when sarama resolves it); ended: the claim's
	// messages ended while it was not revoked, deleted: because the broker
	// deleted the records after next (messagesClosed); settled is signalled
	// as records finish. The claim loop's own, but settled.
	gen     int32
	next    int64
	ended   bool
	deleted bool
	settled chan struct{}

	// start is the offset the claim started from (unknownOffset until
	// watchOffsets resolved sarama's oldest-offset sentinel); latest is the
	// partition's latest offset as watchOffsets last looked it up
	// (unknownOffset before).
	start, latest atomic.Int64

	// checkStart: the claim started at sarama's oldest-offset sentinel, and
	// checkStarts has not yet asked whether the group's committed offset
	// was out of range.
	checkStart atomic.Bool

	// Whether its marks are being committed, as watchCoordinator checks it:
	// markedBefore is the mark of the previous check (watchCoordinator's own),
	// behindSince when the group's committed offset was first found below
	// it (a monoclock reading; 0 while commits keep up).
	markedBefore int64
	behindSince  atomic.Int64

	// emptyTo: the offsets from the next one to commit up to it hold no
	// record, only control records and aborted ones (checkEmptyTails); it
	// stops at the last stable offset. 0 until found.
	emptyTo atomic.Int64

	// unreadable: why the partition's fetches fail, for the size of what
	// they would read or an ACL's refusal (noteUnreadable); nil once a
	// record is read, or the broker answers a fetch again (checkRefused).
	unreadable atomic.Pointer[error]

	// topicID: the ID of the claim's topic, as checkRecreated first saw
	// it; recreated is closed when the topic has another ID since (it was
	// deleted and created again).
	topicID       atomic.Pointer[sarama.Uuid]
	recreated     chan struct{}
	recreatedOnce sync.Once
}

// startOffset is the offset claim started from. Sarama resolves its
// sentinels without saying to what: for OffsetNewest the newest offset it
// looked up is the claim's first high watermark; for OffsetOldest it is
// unknownOffset, left to watchOffsets.
func startOffset(claim sarama.ConsumerGroupClaim) int64 {
	switch off := claim.InitialOffset(); off {
	case sarama.OffsetOldest:
		return unknownOffset
	case sarama.OffsetNewest:
		return claim.HighWaterMarkOffset()
	default:
		return off
	}
}

// lag is the number of records between the partition's latest offset and
// the next offset the group would commit: the offset marked last or, with
// nothing marked yet, where the claim started (or its oldest record in
// flight, if lower: a fetch may have moved the high watermark before the
// claim read it). It is 0 while the start is not known yet.
func (p *partition) lag() int64 {
	next, first := p.tr.position()
	if next < 0 {
		next = p.start.Load()
		if first >= 0 && (next == unknownOffset || first < next) {
			next = first
		}
	}
	if next < 0 {
		return 0
	}
	if first < 0 {
		next = max(next, p.emptyTo.Load()) // offsets below emptyTo hold no record to wait for
	}
	return max(max(p.claim.HighWaterMarkOffset(), p.latest.Load())-next, 0)
}

// lane is an ordered queue of records; at most one of its records is being
// delivered at a time.
type lane struct {
	key     string
	queue   []*target.Record
	running bool
	queued  bool // a task for it waits in the route's ready queue, for a worker
	stuck   int  // its records reported stuck and not moved on yet
}

// consume is the claim loop: it reads records into lanes until the claim or
// the session ends, pausing the partition while the route's budget is full.
func (p *partition) consume() {
	c := p.c
	done := p.sess.Context().Done()
	for {
		var msg *sarama.ConsumerMessage
		if len(p.held) > 0 {
			if !p.stillClaimed() {
				return
			}
			msg, p.held[0], p.held = p.held[0], nil, p.held[1:]
			p.heldBytes -= heldSize(msg)
			if len(p.held) == 0 {
				p.held, p.heldBytes = nil, 0
			}
			p.nHeld.Store(int32(len(p.held)))
			if p.heldPaused && len(p.held) <= maxHeld/2 && p.heldBytes <= p.aheadBytes/2 {
				p.heldPaused = false
				c.setReason(p.tp, pauseHeld, false)
			}
		} else if p.ended {
			p.settle()
			return
		} else {
			select {
			case m, ok := <-p.claim.Messages():
				if !ok {
					if p.sess.Context().Err() != nil || p.messagesClosed() {
						return
					}
					continue
				}
				msg = m
				p.next = m.Offset + 1
			case <-p.recreated:
				p.ended = true // see checkRecreated
				continue
			case <-done:
				return
			}
		}
		if p.unreadable.Load() != nil {
			p.unreadable.Store(nil)
		}
		rec := fromSarama(msg)
		if c.opts.Metrics != nil {
			c.opts.Metrics.Consumed(p.ctx, rec.Topic)
		}
		if !matches(&c.opts.Route.Filter, rec) {
			p.tr.add(rec.Offset, time.Now())
			p.finish(rec)
			if c.opts.Metrics != nil {
				c.opts.Metrics.Filtered(p.ctx, rec.Topic)
			}
			continue
		}
		if !p.admit(rec) {
			return
		}
		rec.Read = time.Now()
		p.tr.add(rec.Offset, rec.Read)
		p.enqueue(rec)
	}
}

// admit waits for room in the route's budget. A wait that lasts longer than
// pauseAfter asks the budget to refill at once and, if the room is not there,
// pauses the partition until it is, well before sarama's MaxProcessingTime
// would make it drop the claim's fetch; a short wait, the steady state of a
// busy route, costs no pause and resume. It returns false when the session or
// claim ends first.
//
// While it waits it keeps reading the claim's messages into p.held: under a
// cooperative rebalance the session goes on when a claim is revoked, and the
// only sign is the end of its messages, after those sarama had fetched. A
// claim loop that only waited here would hold the rebalance up until
// sarama's rebalance timeout, which then ends the whole session. The held
// records are ones sarama had fetched already (the partition pauses after
// pauseAfter), and a revoked claim drops them: they were not admitted, and
// the partition's next owner reads them again.
func (p *partition) admit(rec *target.Record) bool {
	c := p.c
	w := p.wait
	if c.budget.tryAcquire(int64(rec.Size()), w) {
		return true
	}
	// The claims that share the budget, and so the read-ahead's bound,
	// change only at a rebalance: read once per wait, not per record held.
	p.aheadBytes = c.budget.readAheadBytes()
	// The budget is full most of the time on a busy route, so this wait is
	// taken once per refill: one timer serves all of them.
	t := p.pauseTimer
	if t == nil {
		t = time.NewTimer(pauseAfter)
		p.pauseTimer = t
	} else {
		t.Reset(pauseAfter)
	}
	defer t.Stop()
	paused := false
	defer func() {
		if paused {
			c.setReason(p.tp, pauseBackpressure, false)
		}
	}()
	msgs := p.claim.Messages()
	if p.ended {
		msgs = nil
	}
	for {
		select {
		case msg, ok := <-msgs:
			if ok {
				p.hold(msg)
				continue
			}
			msgs = nil
			if p.sess.Context().Err() == nil && p.messagesClosed() {
				c.budget.cancel(w)
				return false
			}
		case <-w.ready:
			return true
		case <-t.C:
			// The releases that would refill the budget may have stopped
			// with room left but above its low-water mark.
			if c.budget.nudge(w) {
				<-w.ready
				return true
			}
			c.setReason(p.tp, pauseBackpressure, true)
			paused = true
		case <-p.sess.Context().Done():
			c.budget.cancel(w)
			return false
		case <-c.stop:
			c.budget.cancel(w)
			return false
		}
	}
}

// hold keeps msg, read while the claim loop waited for room, for later; at
// maxHeld records held, or aheadBytes, the partition pauses.
func (p *partition) hold(msg *sarama.ConsumerMessage) {
	p.held = append(p.held, msg)
	p.heldBytes += heldSize(msg)
	p.next = msg.Offset + 1
	p.nHeld.Store(int32(len(p.held)))
	if !p.heldPaused && (len(p.held) >= maxHeld || p.heldBytes >= p.aheadBytes) {
		p.heldPaused = true
		p.c.setReason(p.tp, pauseHeld, true)
	}
}

// stillClaimed reports whether the claim loop may go on with its held
// records: not when the session ended, the bridge is stopping, or the claim
// was revoked meanwhile (its messages closed, after those sarama had
// buffered; the next owner reads them again). admit, which finds room at
// once when there is, would not notice, and a held record started then
// would run beside its next owner's delivery. A message that arrived
// meanwhile is held after the others.
func (p *partition) stillClaimed() bool {
	select {
	case <-p.sess.Context().Done():
		return false
	case <-p.c.stop:
		return false
	default:
	}
	if p.ended {
		return true
	}
	select {
	case msg, ok := <-p.claim.Messages():
		if !ok {
			return p.sess.Context().Err() == nil && !p.messagesClosed()
		}
		p.hold(msg)
	default:
	}
	return true
}

// messagesClosed handles the end of the claim's messages while the session
// goes on, and reports whether the claim loop stops at once. Under a
// cooperative rebalance that is how a revoked claim ends (the session's
// generation moved on). But sarama also shuts a partition's consumer down
// for good, its messages closed, when its fetch offset is out of range:
// retention or kafka-delete-records moved the partition's log start past
// the records not fetched yet. The bridge still holds what it read of the
// partition: the claim loop then delivers those records (ended), and
// returns once they reached a terminal outcome, which ends the session
// (sarama ends it when a claim returns unrevoked); the next one reads the
// partition on from its oldest record (sarama resets the committed offset
// that is out of range to Offsets.Initial, always the oldest here).
//
// Which one it is, the session's generation tells: sarama moves it on
// before it revokes a claim, so a revocation costs no request to the
// broker, which could hold the rebalance up while the broker is slow to
// answer. A claim that a cooperative rebalance left in place is taken for
// revoked too: it returns at once, which ends the session, and the records
// it held are read again, or, when the broker deleted them, skipped with
// only sarama's consumer error in the log. Otherwise the partition's log
// start says whether records were deleted, for the log.
func (p *partition) messagesClosed() (stop bool) {
	if p.sess.GenerationID() != p.gen {
		p.revoked = true
		return true
	}
	c := p.c
	logStart := int64(unknownOffset)
	var err error
	if c.client != nil {
		logStart, err = c.client.GetOffset(p.tp.topic, p.tp.partition, sarama.OffsetOldest)
	}
	next := p.next
	if next < 0 {
		next = p.start.Load() // nothing read: where the claim started, if known
	}
	deleted := err == nil && next >= 0 && logStart > next
	p.ended, p.deleted = true, deleted
	if deleted {
		c.log.Warn("records were deleted by the broker before they were read (retention or kafka-delete-records moved the partition's log start past them); "+
			"they are skipped: the records read already are delivered, then the partition is read on from its oldest record",
			"topic", p.tp.topic, "partition", p.tp.partition, "from_offset", next, "to_offset", logStart-1)
	} else {
		c.log.Warn("the kafka client stopped reading the partition: the records read already are delivered, then it is read on in a new group session",
			"topic", p.tp.topic, "partition", p.tp.partition, "next_offset", next, "log_start_error", err)
	}
	return false
}

// settle waits, once the claim's messages ended (see messagesClosed), until
// every record the claim loop admitted reached a terminal outcome, or the
// session ends or the bridge stops first. A cooperative rebalance that
// revokes the claim meanwhile waits for it too, for at most its rebalance
// timeout (then sarama ends the session): when the broker deleted them, the
// records it holds are the only copies left.
func (p *partition) settle() {
	for {
		if _, pending, _ := p.tr.state(); pending == 0 {
			return
		}
		select {
		case <-p.settled:
		case <-p.sess.Context().Done():
			return
		case <-p.c.stop:
			return
		}
	}
}

// pauseAfter is how long a claim loop waits for room in the budget before it
// pauses its partition.
const pauseAfter = 50 * time.Millisecond

// maxHeld bounds the records admit reads from a claim while it waits: at
// that many, or once they hold budget.readAheadBytes, the partition pauses
// until the claim loop has taken half of them (in number and in bytes), so
// that sarama fetches no more and what is held stays what it had fetched
// already. Without the bound, waits shorter than pauseAfter, the steady
// state of a busy route, let the claim loop read the partition into memory
// as fast as the broker serves it, past max_in_flight_bytes; without the
// bound in bytes, 256 large records would.
const maxHeld = 256

// heldSize is what a held message holds, counted as a Record counts (see
// target.Record.Size).
func heldSize(m *sarama.ConsumerMessage) int64 {
	n := len(m.Key) + len(m.Value) + len(m.Topic) + 64
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + heldHeaderOverhead
	}
	return int64(n)
}

// heldHeaderOverhead is what one header of a held message holds besides its
// bytes: the RecordHeader and the pointer to it.
const heldHeaderOverhead = int(unsafe.Sizeof(sarama.RecordHeader{})) + int(unsafe.Sizeof(uintptr(0)))

// laneKey names the lane rec joins: the partition's single lane, its key's
// lane, or (ordering none) a lane of its own.
func (p *partition) laneKey(rec *target.Record) string {
	switch p.c.opts.Route.Ordering {
	case config.OrderingNone:
		return "o" + strconv.FormatInt(rec.Offset, 10)
	case config.OrderingPartition:
		return ""
	}
	if rec.Key == nil {
		return "n" // null keys share one lane, in order
	}
	return "k" + string(rec.Key)
}

func (p *partition) enqueue(rec *target.Record) {
	key := p.laneKey(rec)
	p.mu.Lock()
	l := p.lanes[key]
	if l == nil {
		l = &lane{key: key}
		p.lanes[key] = l
	}
	l.queue = append(l.queue, rec)
	if l.stuck > 0 {
		p.unholdLocked(rec)
	}
	start := !l.running && !p.closed && p.c.disabled.Load() == nil
	if start {
		l.running = true
		l.queued = true
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if start {
		p.c.schedule(laneTask{p: p, l: l})
	}
}

// schedule queues t for a worker. The route's budget bounds the queue; the
// tasks a revoked claim dropped (see dropQueuedLocked) may still sit in it
// until purgeReady takes them out, and then t waits for room on a goroutine
// of its own rather than holding up the caller, until the workers stop
// (every claim returned by then, so t was dropped too).
func (c *Consumer) schedule(t laneTask) {
	select {
	case c.ready <- t:
	default:
		go func() {
			select {
			case c.ready <- t:
			case <-c.workersDone:
			}
		}()
	}
}

// take claims the task of l, which a worker took from the ready queue; false
// when its claim ended and dropped it meanwhile.
func (p *partition) take(l *lane) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !l.queued {
		return false
	}
	l.queued = false
	return true
}

// dropQueuedLocked stops the lanes whose task still waits for a worker, at
// the end of a claim that is not draining: their records are not delivered
// (the partition's next owner reads them again), so the claim need not wait
// for a worker to take the task. During an outage every worker may wait for
// the breaker on a partition that stays, and a revoked claim waiting for
// them would hold up a cooperative rebalance until sarama's rebalance
// timeout, which ends the whole session.
func (p *partition) dropQueuedLocked() {
	for _, l := range p.lanes {
		if l.queued {
			l.queued, l.running = false, false
			p.wg.Done()
		}
	}
}

// purgeReady takes the tasks that ended claims dropped (dropQueuedLocked) out
// of the ready queue, and queues the others again, behind. While every
// worker waits on a record of a partition that stays (its target is down),
// no worker takes them: claim after revoked claim would leave its tasks
// there, and once the queue is full a goroutine for each of them (schedule),
// as many as the rebalances during the outage.
func (c *Consumer) purgeReady() {
	for range len(c.ready) {
		select {
		case t := <-c.ready:
			if t.p.queuedTask(t.l) {
				c.schedule(t)
			}
		default:
			return // the workers took the rest
		}
	}
}

// queuedTask reports whether l's task waits for a worker: not dropped by
// the end of its claim.
func (p *partition) queuedTask(l *lane) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return l.queued
}

// laneTask asks a worker to deliver the head record of a lane.
type laneTask struct {
	p *partition
	l *lane
}

// work is one of the route's `concurrency` delivery workers (and spares, see
// fitWorkersLocked). Each takes a runnable lane, delivers its head record
// and, when the lane has more, queues it again behind the other runnable
// lanes. It stops when stop is closed or it takes a token from retire.
func (c *Consumer) work(stop <-chan struct{}) {
	for {
		select {
		case t := <-c.ready:
			c.runLane(t)
		case <-c.retire:
			return
		case <-stop:
			return
		}
	}
}

// runLane steps a lane while it has records. It keeps the lane as long as no
// other lane waits for a worker (no hand-off, so an ordered lane's next
// record starts at once) and otherwise queues it behind the waiting ones.
func (c *Consumer) runLane(t laneTask) {
	if !t.p.take(t.l) {
		return // dropped by the end of its claim, which counted it done
	}
	for t.p.step(t.l) {
		if len(c.ready) == 0 {
			continue
		}
		if !t.p.requeue(t.l) {
			continue // its claim ended: the next step stops the lane
		}
		c.schedule(t)
		return
	}
	t.p.wg.Done()
}

// requeue marks l's task as waiting for a worker again, unless the claim
// ended without draining: a task queued after that would not be dropped
// (dropQueuedLocked ran already) and the claim would wait for a worker to
// take it. A draining claim drops nothing, and its lanes keep taking turns.
func (p *partition) requeue(l *lane) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed && p.drainBelow < 0 {
		return false
	}
	l.queued = true
	return true
}

// step delivers the head record of l and reports whether l should run again.
// A lane stops when it is empty, the claim is closed (past the drain
// frontier) or the route disabled, or when a delivery ends without a
// terminal outcome: then the record goes back to the head of the lane, so
// order holds, and stays unacknowledged.
func (p *partition) step(l *lane) bool {
	c := p.c
	p.mu.Lock()
	if len(l.queue) == 0 || c.disabled.Load() != nil || (p.closed && l.queue[0].Offset >= p.drainBelow) {
		l.running = false
		if len(l.queue) == 0 {
			delete(p.lanes, l.key)
		}
		p.mu.Unlock()
		return false
	}
	rec := l.queue[0]
	l.queue[0] = nil
	l.queue = l.queue[1:]
	p.maxStarted = max(p.maxStarted, rec.Offset)
	p.mu.Unlock()

	_, err := c.opts.Target.Deliver(p.ctx, &target.Delivery{Route: c.opts.Route.Name, Record: rec, Attempt: 1})
	if err == nil {
		if p.holds(rec) {
			c.budget.release(p.wait, int64(rec.Size()))
		}
		p.finish(rec)
		// Run again only with a record queued: a queued lane then always
		// holds budget, which bounds the ready queue.
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(l.queue) == 0 {
			l.running = false
			delete(p.lanes, l.key)
			return false
		}
		return true
	}
	p.mu.Lock()
	l.queue = append([]*target.Record{rec}, l.queue...)
	l.running = false
	p.mu.Unlock()
	if target.KindOf(err) == target.Gone {
		c.Disable(err)
	}
	return false
}

// wasRecreated reports whether checkRecreated found the claim's topic
// deleted and created again.
func (p *partition) wasRecreated() bool {
	select {
	case <-p.recreated:
		return true
	default:
		return false
	}
}

// finish records rec's terminal outcome and marks the new commit offset.
func (p *partition) finish(rec *target.Record) {
	if mark, ok := p.tr.done(rec.Offset); ok {
		p.sess.MarkOffset(p.tp.topic, p.tp.partition, mark, "")
	}
	select {
	case p.settled <- struct{}{}:
	default:
	}
}

// releaseQueued returns the budget of records left in lanes when the claim
// ended; they were never acknowledged and will be consumed again.
func (p *partition) releaseQueued() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.lanes {
		for _, r := range l.queue {
			if !p.unheld[r] {
				p.c.budget.release(p.wait, int64(r.Size()))
			}
		}
		delete(p.lanes, k)
	}
	clear(p.unheld)
	p.nUnheld.Store(0)
}

// stickLane counts rec, which its lane delivers now, as stuck (on) or moved
// on. While a lane has a stuck record, the records queued behind it, which
// cannot start before it, give their room in the route's budget back, and
// so do those queued behind it later: a stuck lane holds no more of the
// budget than its stuck record, and the route's other partitions and lanes
// keep their share. Those records stay in memory; their partition is paused,
// so it fetches nothing more and they are what it had fetched already.
func (p *partition) stickLane(rec *target.Record, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lanes[p.laneKey(rec)]
	switch {
	case l == nil:
	case !on:
		l.stuck = max(l.stuck-1, 0)
	default:
		l.stuck++
		for _, r := range l.queue {
			p.unholdLocked(r)
		}
	}
}

// unholdLocked gives r's room in the budget back, once.
func (p *partition) unholdLocked(r *target.Record) {
	if p.unheld[r] {
		return
	}
	if p.unheld == nil {
		p.unheld = make(map[*target.Record]bool)
	}
	p.unheld[r] = true
	p.nUnheld.Add(1)
	p.c.budget.release(p.wait, int64(r.Size()))
}

// holdsNow reports whether rec, being delivered, holds room in the budget.
func (p *partition) holdsNow(rec *target.Record) bool {
	if p.nUnheld.Load() == 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.unheld[rec]
}

// holds reports whether rec, whose delivery ended, holds room in the budget
// (it did not give it back while queued behind a stuck record).
func (p *partition) holds(rec *target.Record) bool {
	if p.nUnheld.Load() == 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.unheld[rec] {
		return true
	}
	delete(p.unheld, rec)
	p.nUnheld.Add(-1)
	return false
}

func fromSarama(m *sarama.ConsumerMessage) *target.Record {
	rec := &target.Record{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		rec.Headers = make([]target.Header, 0, len(m.Headers))
		for _, h := range m.Headers {
			if h == nil {
				continue
			}
			rec.Headers = append(rec.Headers, target.Header{Key: string(h.Key), Value: h.Value})
		}
	}
	return rec
}

func matches(f *config.Filter, rec *target.Record) bool {
	if f.KeyPrefix != "" && !bytes.HasPrefix(rec.Key, []byte(f.KeyPrefix)) {
		return false
	}
	for k, v := range f.Headers {
		got, ok := rec.Header(k)
		if !ok || string(got) != v {
			return false
		}
	}
	return true
}
