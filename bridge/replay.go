package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// HeaderReplay counts how many times a record was replayed from the
// dead-letter topic; it is added to the replayed record.
const HeaderReplay = "hookbridge-replay"

// ReplayOptions select what `hookbridge dlq replay` re-delivers.
type ReplayOptions struct {
	Route  string
	Limit  int     // most records to replay; 0 = all
	DryRun bool    // list what would be replayed; deliver and commit nothing
	Rate   float64 // records per second; 0 = no limit
	// Filters; a record must match all that are set.
	Key        *string // the record key
	ErrorKind  string  // hookbridge-error-kind: permanent or retryable
	Topic      string  // original topic; "" = any
	Partition  int32   // original partition; -1 = any
	FromOffset int64   // original offset range, inclusive; -1 = open
	ToOffset   int64
	Out        io.Writer // the dry-run listing
}

// ReplayReport says what a replay did. When the replay was interrupted it
// says how far it got.
type ReplayReport struct {
	Group        string
	Seen         int // dead-letter records read (up to the end offsets at start)
	Replayed     int // handed to the target (or listed, in a dry run)
	Delivered    int
	DeadLettered int // failed again: written to the dead-letter topic anew
	Skipped      int // filtered out or over the limit: left in place
	// OtherRoute counts records another route dead-lettered to the same
	// topic (their hookbridge-error-route names it): never delivered by this
	// replay, and no reason to hold back its commit.
	OtherRoute int
	Committed  map[int32]int64 // partition -> next offset, as marked for commit
}

// ReplayRoute returns the route of cfg named name, which dlq replay can
// replay only if it exists and has a dead-letter topic.
func ReplayRoute(cfg *config.Config, name string) (config.Route, error) {
	idx := slices.IndexFunc(cfg.Routes, func(r config.Route) bool { return r.Name == name })
	if idx < 0 {
		names := make([]string, len(cfg.Routes))
		for i, r := range cfg.Routes {
			names[i] = r.Name
		}
		return config.Route{}, fmt.Errorf("no route named %q (its routes: %s)", name, strings.Join(names, ", "))
	}
	r := cfg.Routes[idx]
	if r.DeadLetter.Topic == "" {
		return config.Route{}, fmt.Errorf("route %s has no dead_letter.topic: it has nothing to replay", name)
	}
	// Route names may hold dots: the replay group of route "orders" is the
	// consumer group of a route "orders.replay" (with the default groups).
	// The replay would join that route's group, and rebalance it while it
	// runs.
	rg := ReplayGroup(r.GroupID())
	if j := slices.IndexFunc(cfg.Routes, func(o config.Route) bool { return o.GroupID() == rg }); j >= 0 {
		return config.Route{}, fmt.Errorf("route %s: its replay group %s is the consumer group of route %s, "+
			"which the replay would join; give one of the two routes another group", name, rg, cfg.Routes[j].Name)
	}
	// The dead letters of kafka.embedded are in the broker inside the
	// hookbridge run process, on a random port unless kafka.brokers names
	// one; a broker the replay started would be a new, empty one.
	if cfg.Kafka.Embedded && len(cfg.Kafka.Brokers) == 0 {
		return config.Route{}, errors.New("kafka.embedded without kafka.brokers: the dead letters are in the embedded broker " +
			"of hookbridge run, on a random port; set kafka.brokers (that broker listens on the port of the first) " +
			"and replay while run runs")
	}
	return r, nil
}

// replayStrategies are the partition assignment strategies of every replay
// group: eager sticky (see Replay).
func replayStrategies() []sarama.BalanceStrategy {
	return []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
}

// ReplayGroup is the consumer group whose offsets remember how far a route's
// dead-letter topic was replayed.
func ReplayGroup(group string) string { return group + ".replay" }

// Replay re-delivers what the route's dead-letter topic holds when it starts
// through the route's own chain (signing, breaker, retries, dead letter), and
// returns when it reached the end offsets it saw at start; it never handles a
// record produced since. A first replay of a route starts at the oldest
// offset, whatever kafka.initial_offset says. A record that fails
// again is written to the dead-letter topic anew (with its replay count), so
// nothing is lost. Offsets of the replay group are committed only over the
// contiguous run of records that were handled: a record skipped by a filter or
// the limit stops the commit of its partition, so a later replay sees it again.
func (b *Bridge) Replay(ctx context.Context, o ReplayOptions) (*ReplayReport, error) {
	cfg := b.cfg
	r, err := ReplayRoute(cfg, o.Route)
	if err != nil {
		return nil, fmt.Errorf("dlq replay: %w", err)
	}
	dlq := r.DeadLetter.Topic
	// The replay needs the topics of its own route only: the dead-letter
	// topic it reads and writes and the reply topic. Another route's topic
	// that does not exist (deleted, not created yet) is no reason to refuse.
	one := *cfg
	one.Routes = []config.Route{r}
	// With kafka.embedded the replay reads the broker of hookbridge run,
	// which listens on kafka.brokers, instead of starting an empty one.
	one.Kafka.Embedded = false
	rt, err := b.start(ctx, &one)
	if err != nil {
		return nil, err
	}
	defer rt.close()

	rep := &ReplayReport{Group: ReplayGroup(r.GroupID()), Committed: map[int32]int64{}}
	rev := &routeEvents{log: b.log.With("route", r.Name, "replay", true), metrics: rt.metrics.Route(r.Name, r.GroupID(), nil)}
	defer rev.close()
	ev := &replayEvents{Events: rev}
	var chain target.Target
	if !o.DryRun {
		var closeTarget func()
		chain, _, closeTarget, err = b.routeChain(ctx, rt, cfg, r, ev)
		if err != nil {
			return nil, err
		}
		defer closeTarget()
	}

	parts, err := rt.client.Partitions(dlq)
	if err != nil {
		return nil, fmt.Errorf("dlq replay: %s: %w", dlq, err)
	}
	h := &replayHandler{b: b, o: o, chain: chain, client: rt.client, topic: dlq, ends: map[int32]int64{}, oldest: map[int32]int64{},
		stats: map[int32]*partitionReplay{}}
	for _, p := range parts {
		// The end is the last stable offset, as the replay reads committed
		// records only: the records of a transaction still open (and those
		// after them) are for the next replay. At the log's end instead, the
		// replay would wait at the open transaction, find no record it can
		// read before that end, and commit past the transaction's records,
		// which no replay would see once it commits.
		if h.ends[p], err = kafka.StableEnd(rt.client, dlq, p); err != nil {
			return nil, fmt.Errorf("dlq replay: %w", err)
		}
		if h.oldest[p], err = rt.client.GetOffset(dlq, p, sarama.OffsetOldest); err != nil {
			return nil, fmt.Errorf("dlq replay: start of %s/%d: %w", dlq, p, err)
		}
	}
	if o.Rate > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	h.budget.Store(int64(o.Limit))

	// The replay joins a consumer group of its own, so its offsets live in
	// Kafka like any group's; alone in it, it gets every partition. Its client
	// is its own too: a first replay starts at the oldest offset, whatever
	// kafka.initial_offset says, for it replays what the topic holds.
	sc, err := kafka.NewConfig(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Eager rebalances, whatever kafka.balance says: the replay is a
	// one-off job alone in its group, and with eager rebalances the end of
	// the session is what tells a claim to stop, also while it waits for the
	// rate limiter or a delivery. (A cooperative rebalance revokes a claim
	// by closing its messages only, which a claim that waits cannot see
	// without reading on, into memory, while it waits.)
	sc.Consumer.Group.Rebalance.GroupStrategies = replayStrategies()
	// A dynamic member, whatever kafka.group_instance_id says: a one-off
	// job leaves its group when it ends, and a static member would not.
	sc.Consumer.Group.InstanceId = ""
	h.routeGroup, h.group, h.version = r.GroupID(), rep.Group, sc.Version
	gclient, err := kafka.NewClient(rt.brokers, cfg.Kafka, sc)
	if err != nil {
		return nil, fmt.Errorf("dlq replay: %w", err)
	}
	defer gclient.Close()
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.replaying, h.finished = gctx, cancel
	if o.DryRun {
		// A dry run reads from where the replay group stands without
		// joining it: as a member it would take partitions from a replay
		// of the route that runs, which would end without replaying them,
		// and list only the partitions it was given.
		if err := h.list(gctx, gclient, parts); err != nil {
			return nil, err
		}
	} else {
		group, err := sarama.NewConsumerGroupFromClient(rep.Group, gclient)
		if err != nil {
			return nil, fmt.Errorf("dlq replay: group %s: %w", rep.Group, err)
		}
		defer group.Close()
		for gctx.Err() == nil {
			if err := group.Consume(gctx, []string{dlq}, h); err != nil && gctx.Err() == nil {
				if errors.Is(err, sarama.ErrGroupAuthorizationFailed) {
					// The group is the route's plus ".replay", a name no
					// configuration holds: the operator must be told it.
					return nil, fmt.Errorf("dlq replay: the broker refuses to let this client use group %s (grant its principal READ on it): %w",
						rep.Group, err)
				}
				return nil, fmt.Errorf("dlq replay: %w", err)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, st := range h.stats {
		rep.Seen += st.seen
		rep.Replayed += st.replayed
		rep.Skipped += st.skipped
		rep.OtherRoute += st.otherRoute
		rep.Delivered += st.delivered
		rep.DeadLettered += st.deadLettered
		if st.committed >= 0 {
			rep.Committed[p] = st.committed
		}
	}
	var commitErr error
	if h.commitErr != nil {
		commitErr = fmt.Errorf("dlq replay: the final commit of group %s did not go through, so the next replay "+
			"sends those records again: %w", rep.Group, h.commitErr)
	}
	// An interruption is the error to report: the deliveries it cut short
	// failed because of it.
	if err := ctx.Err(); err != nil {
		return rep, errors.Join(err, commitErr)
	}
	return rep, errors.Join(append(h.errs, commitErr)...)
}

// partitionReplay is what a replay did with one partition. It outlives the
// group session: a rebalance (a coordinator that moved, a session that timed
// out) ends the claims, and the next session reads on from the committed
// offset, which may lie before records this replay already handled.
type partitionReplay struct {
	seen, replayed, skipped, otherRoute int
	delivered, deadLettered             int // of replayed: each record counted once, by its outcome
	committed                           int64
	// readTo: the records below it were read (counted in seen); handledTo:
	// those below it were handled (delivered, dead-lettered again, passed
	// over or left in place); leftFrom: the first record left in place (-1:
	// none), past which nothing is committed.
	readTo, handledTo, leftFrom int64
}

// replayIdle is how long a claim waits for its next record before it asks
// the broker whether one is still to come before the end offset.
const replayIdle = 500 * time.Millisecond

// replayHandler reads every claimed partition of the dead-letter topic up to
// its end offset at start. A claim that is done waits for the others: in
// sarama, a returning claim ends the whole session.
type replayHandler struct {
	b       *Bridge
	o       ReplayOptions
	chain   target.Target
	client  sarama.Client // looks past offsets that hold no record
	topic   string
	ends    map[int32]int64
	oldest  map[int32]int64
	limiter *rate.Limiter
	budget  atomic.Int64
	// replaying ends with the replay: when it reached every end offset, when
	// a claim failed, or when it was interrupted; finished ends it.
	replaying context.Context
	finished  context.CancelFunc

	routeGroup string              // the route's consumer group
	group      string              // the replay group
	version    sarama.KafkaVersion // of its requests

	mu        sync.Mutex
	pending   int // claims of the session not complete yet
	stats     map[int32]*partitionReplay
	errs      []error
	commitErr error // of the last session's commit (Cleanup)
}

func (h *replayHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = len(sess.Claims()[h.topic])
	return nil
}

// Cleanup commits the session's marks and checks with the coordinator that
// they went through: the report lists the offsets as committed, and the
// next replay starts from what really is. The check of the last session is
// the one the replay reports.
func (h *replayHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	marks := map[int32]int64{}
	h.mu.Lock()
	for _, p := range sess.Claims()[h.topic] {
		if st := h.stats[p]; st != nil && st.committed >= 0 {
			marks[p] = st.committed
		}
	}
	h.mu.Unlock()
	err := kafka.CommitChecked(context.Background(), sess, h.client, h.version, h.group, h.topic, marks)
	h.mu.Lock()
	h.commitErr = err
	h.mu.Unlock()
	return nil
}

func (h *replayHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := claim.Partition()
	h.mu.Lock()
	st := h.stats[p]
	if st == nil {
		st = &partitionReplay{committed: -1, leftFrom: -1}
		h.stats[p] = st
	}
	h.mu.Unlock()
	complete, err := h.replay(sess, claim, st)
	h.mu.Lock()
	if err != nil {
		h.errs = append(h.errs, err)
	}
	// A claim that is not complete ended with the session (the replay group
	// rebalances eagerly, see Replay): the next session counts it again.
	if complete {
		h.pending--
	}
	if h.pending == 0 || err != nil {
		h.finished() // ends the session, and with it every claim
	}
	h.mu.Unlock()
	if !complete && err == nil && sess.Context().Err() == nil {
		// sarama closed the claim's messages while the session goes on: it
		// shuts a partition consumer down for good when its fetch offset is
		// out of range (retention or kafka-delete-records moved the log start
		// past it). Nothing would end this session: return, which ends it
		// (a returning claim ends the whole session in sarama), and the next
		// session reads on from the committed offset, which sarama resets to
		// the oldest when it is out of range.
		h.b.log.Warn("dlq replay: the partition's consumer stopped; reading on in a new group session",
			"topic", h.topic, "partition", claim.Partition())
		return nil
	}
	<-sess.Context().Done()
	return nil
}

// list is the dry run: it reads every partition from the replay group's
// committed offset (the oldest, when it has none) to its end offset at
// start, each with a partition consumer of its own, outside the group.
func (h *replayHandler) list(ctx context.Context, client sarama.Client, parts []int32) error {
	committed, err := kafka.Committed(client, h.version, h.group, h.topic, parts)
	if err != nil {
		return fmt.Errorf("dlq replay: offsets of group %s: %w", h.group, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("dlq replay: %w", err)
	}
	defer consumer.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, p := range parts {
		from := max(committed[p], h.oldest[p])
		if from >= h.ends[p] {
			continue
		}
		pc, err := consumer.ConsumePartition(h.topic, p, from)
		if err != nil {
			h.finished()
			return fmt.Errorf("dlq replay: %s/%d: %w", h.topic, p, err)
		}
		st := &partitionReplay{committed: -1, leftFrom: -1}
		h.stats[p] = st
		wg.Go(func() {
			defer pc.AsyncClose()
			go func() {
				for err := range pc.Errors() {
					h.b.log.Warn("dlq replay: reading the dead-letter topic", "topic", h.topic, "partition", p, "error", err)
				}
			}()
			complete, err := h.replay(listSession{ctx: ctx}, listClaim{PartitionConsumer: pc, topic: h.topic, partition: p, offset: from}, st)
			h.mu.Lock()
			defer h.mu.Unlock()
			if err != nil {
				h.errs = append(h.errs, err)
				h.finished()
			} else if !complete && ctx.Err() == nil {
				h.errs = append(h.errs, fmt.Errorf("dlq replay: %s/%d: the partition's consumer stopped before its end offset %d", h.topic, p, h.ends[p]))
			}
		})
	}
	return nil
}

// listSession is the session of a dry run's partitions: replay uses only
// its context, for a dry run marks no offset.
type listSession struct {
	sarama.ConsumerGroupSession
	ctx context.Context
}

func (s listSession) Context() context.Context { return s.ctx }

// listClaim is a partition a dry run reads, from offset on.
type listClaim struct {
	sarama.PartitionConsumer
	topic     string
	partition int32
	offset    int64
}

func (c listClaim) Topic() string        { return c.topic }
func (c listClaim) Partition() int32     { return c.partition }
func (c listClaim) InitialOffset() int64 { return c.offset }

// replay handles the records of one claim below the partition's end offset
// at start, and returns once none is left to come: after the record at end-1,
// at the first record at or past the end (produced since, perhaps by this
// replay), or when the claim has been idle and the broker holds no record
// between the consumer's position and the end (the offsets left hold a
// transaction's control records, or compaction removed their records). It
// reports whether the partition is complete: false when the session ended
// first, and the next session, if the replay goes on, reads on. A broker
// that refuses to let it read the topic (an ACL) is an error.
func (h *replayHandler) replay(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, st *partitionReplay) (complete bool, err error) {
	ctx := sess.Context()
	p := claim.Partition()
	// The consumer's position: where the claim starts (the committed offset,
	// or the oldest one), then past the last record received.
	next := max(claim.InitialOffset(), h.oldest[p])
	end := h.ends[p]
	if next >= end {
		return true, nil
	}
	commit := !h.o.DryRun // false after the first record left in place
	// done marks the end offset once nothing before it is left to come, when
	// every record was handled: past offsets that hold no record.
	done := func() {
		if commit {
			sess.MarkOffset(h.topic, p, end, "")
			st.committed = end
		}
	}
	idle := time.NewTimer(replayIdle)
	defer idle.Stop()
	for {
		var m *sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return false, nil
		case <-idle.C:
			more, err := kafka.RecordBefore(h.client, h.topic, p, next, end)
			if kafka.NotAuthorized(err) {
				// The ACLs grant the principal no READ on the topic: asking
				// again, twice a second, would never end the replay.
				return false, fmt.Errorf("dlq replay: the broker refuses to let this client read %s (grant its principal READ on it): %w",
					h.topic, err)
			}
			if err != nil {
				h.b.log.Warn("dlq replay: looking for records before the end", "partition", p, "end", end, "error", err)
			} else if !more {
				done()
				return true, nil
			}
			idle.Reset(replayIdle)
			continue
		case msg, ok := <-claim.Messages():
			if !ok {
				return false, nil
			}
			m = msg
		}
		if m.Offset >= end {
			done() // every record before it was received
			return true, nil
		}
		next = m.Offset + 1
		if m.Offset < st.handledTo {
			// Handled in an earlier session of this replay: not counted or
			// delivered again, only committed as it would have been then.
			if st.leftFrom >= 0 && m.Offset >= st.leftFrom {
				commit = false
			} else if commit {
				sess.MarkOffset(h.topic, p, next, "")
				st.committed = next
			}
			if next >= end {
				return true, nil
			}
			idle.Reset(replayIdle)
			continue
		}
		if m.Offset >= st.readTo {
			st.seen++
			st.readTo = next
		}
		rec, bad := replayRecord(m)
		if bad != "" {
			h.b.log.Warn("dlq replay: the record's original coordinates are unusable; it is replayed under its own",
				"route", h.o.Route, "record", rec.ID(), "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "problem", bad)
		}
		mine := ofRoute(m, h.o.Route, h.routeGroup)
		take := mine && matchesReplay(m, rec, h.o)
		if take && h.o.Limit > 0 && h.budget.Add(-1) < 0 {
			take = false
		}
		switch {
		case !mine:
			// Another route's dead letter: this route's replay group may
			// move past it, as past a record it delivered.
			st.otherRoute++
			if commit {
				sess.MarkOffset(h.topic, p, next, "")
				st.committed = next
			}
		case !take:
			st.skipped++
			commit = false
			if st.leftFrom < 0 {
				st.leftFrom = m.Offset
			}
		case h.o.DryRun:
			st.replayed++
			// Partitions are listed at once: one record at a time, so
			// that its header lines follow its own.
			h.mu.Lock()
			printDLQRecord(h.o.Out, m, rec.ID())
			h.mu.Unlock()
		default:
			if h.limiter != nil {
				if err := h.limiter.Wait(ctx); err != nil {
					if h.replaying.Err() == nil && h.o.Limit > 0 {
						h.budget.Add(1) // the next session takes the record again
					}
					return false, nil
				}
			}
			st.replayed++
			var deadLettered atomic.Bool
			dctx := context.WithValue(ctx, deadLetteredKey{}, &deadLettered)
			if _, err := h.chain.Deliver(dctx, &target.Delivery{Route: h.o.Route, Record: rec, Attempt: 1}); err != nil {
				if ctx.Err() == nil {
					return false, fmt.Errorf("dlq replay: %s: %w", rec.ID(), err)
				}
				// The session ended while the record was being delivered. The
				// replay goes on in the next session (a rebalance), which
				// handles the record again; or it is over (interrupted), and
				// the record counts as replayed and not delivered.
				if h.replaying.Err() == nil {
					st.replayed--
					if h.o.Limit > 0 {
						h.budget.Add(1)
					}
				}
				return false, nil
			}
			if deadLettered.Load() {
				st.deadLettered++
			} else {
				st.delivered++
			}
			if commit {
				sess.MarkOffset(h.topic, p, next, "")
				st.committed = next
			}
		}
		st.handledTo = next
		if next >= end {
			return true, nil
		}
		idle.Reset(replayIdle)
	}
}

// replayRecord rebuilds the original record from a dead-letter record: its
// coordinates from the hookbridge-error-* headers (so its webhook-id is the
// original one and receivers dedupe it), its headers without them, plus the
// replay count.
//
// The coordinates are taken all or nothing. When any of the three headers is
// missing or does not parse, the record keeps the dead-letter record's own
// topic, partition and offset, and problem says what was wrong: mixing them
// field by field would name another real record, whose webhook-id a receiver
// has seen and would dedupe this one against. The dead-letter record's own
// coordinates are unique, and stay the same when it is dead-lettered again
// and replayed later.
func replayRecord(m *sarama.ConsumerMessage) (rec *target.Record, problem string) {
	rec = &target.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	// The dead-lettering route's hookbridge-error-* set starts at the last
	// hookbridge-error-route header (deadLetterRecord appends the set whole,
	// route first). Error headers before it are the record's own: a route
	// that consumes another route's dead-letter topic received them, and its
	// receiver gets them again. Without a route header, every error header
	// goes.
	set, routed := 0, false
	for i, h := range slices.Backward(m.Headers) {
		if string(h.Key) == dispatch.HeaderErrorRoute {
			set, routed = i, true
			break
		}
	}
	replays := 0
	for i, h := range m.Headers {
		k := string(h.Key)
		switch {
		case k == HeaderReplay:
			replays, _ = strconv.Atoi(string(h.Value))
			replays = min(max(replays, 0), 1<<30) // a forged count neither goes negative nor wraps
		case strings.HasPrefix(k, "hookbridge-error") && i >= set:
		default:
			rec.Headers = append(rec.Headers, target.Header{Key: k, Value: h.Value})
		}
	}
	rec.Headers = append(rec.Headers, target.Header{Key: HeaderReplay, Value: []byte(strconv.Itoa(replays + 1))})

	topic, okT := headerValue(m, dispatch.HeaderErrorTopic)
	ps, okP := headerValue(m, dispatch.HeaderErrorPartition)
	offs, okO := headerValue(m, dispatch.HeaderErrorOffset)
	var missing []string
	for _, h := range []struct {
		name string
		ok   bool
	}{{dispatch.HeaderErrorTopic, okT}, {dispatch.HeaderErrorPartition, okP}, {dispatch.HeaderErrorOffset, okO}} {
		if !h.ok {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return rec, "no " + strings.Join(missing, ", ")
	}
	part, errP := strconv.ParseInt(ps, 10, 32)
	off, errO := strconv.ParseInt(offs, 10, 64)
	switch {
	case topic == "":
		return rec, dispatch.HeaderErrorTopic + " is empty"
	case config.CheckTopicName(topic) != nil:
		return rec, fmt.Sprintf("%s %q is not a topic name", dispatch.HeaderErrorTopic, topic)
	case errP != nil || part < 0:
		return rec, fmt.Sprintf("%s %q is not a partition", dispatch.HeaderErrorPartition, ps)
	case errO != nil || off < 0:
		return rec, fmt.Sprintf("%s %q is not an offset", dispatch.HeaderErrorOffset, offs)
	}
	rec.Topic, rec.Partition, rec.Offset = topic, int32(part), off
	// Only the set's own: a record without a timestamp gets none in the
	// set, and a header of that name before it is the record's, which its
	// producer may have written with any time. A route's dead letter
	// without one is of a record that had none: it comes back with none
	// (and no ce-time), not with the dead letter's, its write time.
	if routed {
		rec.Timestamp = time.Time{}
	}
	if ts, ok := lastHeader(m.Headers[set:], dispatch.HeaderErrorTimestamp); ok {
		if t, ok := dispatch.ParseRecordTime(ts); ok {
			rec.Timestamp = t
		}
	}
	return rec, ""
}

// ofRoute reports whether the dead-letter record m is route's to replay: it
// is unless its hookbridge-error-route header names another route. A record
// without the header was written by something other than a route, so every
// route that reads the topic replays it. A record whose
// hookbridge-error-group is route's group is route's too, whatever route
// name it carries: the route was renamed with its group kept, and its
// replay group, which commits past the records of other routes, is the one
// the old name would use.
func ofRoute(m *sarama.ConsumerMessage, route, group string) bool {
	name, ok := headerValue(m, dispatch.HeaderErrorRoute)
	if !ok || name == route {
		return true
	}
	g, ok := headerValue(m, dispatch.HeaderErrorGroup)
	return ok && g == group
}

func matchesReplay(m *sarama.ConsumerMessage, rec *target.Record, o ReplayOptions) bool {
	if o.Key != nil && string(m.Key) != *o.Key {
		return false
	}
	if kind, _ := headerValue(m, dispatch.HeaderErrorKind); o.ErrorKind != "" && kind != o.ErrorKind {
		return false
	}
	if o.Topic != "" && rec.Topic != o.Topic {
		return false
	}
	if o.Partition >= 0 && rec.Partition != o.Partition {
		return false
	}
	if o.FromOffset >= 0 && rec.Offset < o.FromOffset {
		return false
	}
	if o.ToOffset >= 0 && rec.Offset > o.ToOffset {
		return false
	}
	return true
}

// headerValue returns the value of the last header of m named key. The last
// one is the dead-lettering route's: a dead-letter record keeps the headers
// of the record that failed, and those may include an earlier
// hookbridge-error-* set when a route consumes another route's dead-letter
// topic.
func headerValue(m *sarama.ConsumerMessage, key string) (string, bool) {
	return lastHeader(m.Headers, key)
}

// lastHeader returns the value of the last header named key in hs.
func lastHeader(hs []*sarama.RecordHeader, key string) (string, bool) {
	for _, h := range slices.Backward(hs) {
		if string(h.Key) == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// printDLQRecord lists the dead-letter record m of the dry run: where it is,
// the webhook-id it is replayed under (id), its hookbridge-* headers and its
// traceparent, which names the trace of the record that failed.
func printDLQRecord(w io.Writer, m *sarama.ConsumerMessage, id string) {
	if w == nil {
		return
	}
	hs := map[string]string{}
	for _, h := range m.Headers {
		if k := string(h.Key); strings.HasPrefix(k, "hookbridge-") || k == telemetry.HeaderTraceparent {
			hs[k] = string(h.Value)
		}
	}
	fmt.Fprintf(w, "%s/%d@%d key=%q value=%d bytes webhook-id=%s\n", m.Topic, m.Partition, m.Offset, m.Key, len(m.Value), id)
	for _, k := range slices.Sorted(maps.Keys(hs)) {
		fmt.Fprintf(w, "    %s: %s\n", listed(k), listed(hs[k]))
	}
}

// listed is s as the dry-run listing shows it: as it is, or quoted in Go
// syntax when it has a character that is not graphic (a line break would
// start what reads as another header or record; a format character such as
// U+202E, right-to-left override, would reorder the text a terminal shows),
// is not valid UTF-8, or starts with a quote. Header names and values come
// from whoever wrote the record.
func listed(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, notGraphic) && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

func notGraphic(r rune) bool { return !unicode.IsGraphic(r) }

// replayEvents counts outcomes on top of the route's usual events.
type replayEvents struct {
	dispatch.Events
}

// deadLetteredKey holds, in a replayed record's context, the flag its
// DeadLettered event sets: a record the target accepted and whose replies
// the broker then refused is delivered and dead-lettered again, and counts
// once, as dead-lettered.
type deadLetteredKey struct{}

func (e *replayEvents) DeadLettered(ctx context.Context, rec *target.Record, f *dispatch.Failure) {
	if flag, ok := ctx.Value(deadLetteredKey{}).(*atomic.Bool); ok {
		flag.Store(true)
	}
	e.Events.DeadLettered(ctx, rec, f)
}
