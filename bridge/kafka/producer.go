package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// Producer writes dead-letter and reply records. Produce returns nil only once
// every record was acknowledged by all in-sync replicas.
type Producer struct {
	sp     sarama.SyncProducer
	tracer trace.Tracer

	// alone writes, one record of a topic at a time (aloneMu), the records
	// the broker refused for their size along with others: a record sent
	// again through sp could share its batch with the records of another
	// send, another record's replies or another route's dead letter, and be
	// refused with them again. The broker checks the size of each
	// partition's batch, so records of other topics may go along.
	alone sarama.SyncProducer

	// room bounds the records of one topic handed to sp and not answered
	// yet to roomSize, below what sarama's channels of one topic hold
	// (Config.ChannelBufferSize each, one for the topic and one for each
	// partition). sarama hands every record, whatever its topic, through one
	// goroutine into those channels: with more of one topic in flight than
	// they hold, a topic whose partition has no leader (its records fail
	// one every Retry.Backoff) would hold up that goroutine, and every other
	// topic's dead letters and replies behind it.
	roomSize int

	mu      sync.Mutex
	closed  bool                   // under mu; sarama panics on a send after Close
	aloneMu map[string]*sync.Mutex // by topic, under mu
	room    map[string]*topicRoom  // by topic, under mu; only while a call uses it
	sends   sync.WaitGroup         // sends in flight, which Close waits for
}

var _ dispatch.Producer = (*Producer)(nil)

// NewProducer connects a producer over client. The client stays owned by the
// caller.
func NewProducer(client sarama.Client) (*Producer, error) {
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	alone, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = sp.Close()
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	return &Producer{sp: sp, alone: alone, tracer: otel.Tracer(telemetry.ScopeName),
		roomSize: max(client.Config().ChannelBufferSize/2, 1)}, nil
}

// Produce sends recs and waits for their acknowledgement or ctx. When ctx ends
// first the outcome is unknown and an error is returned; the caller retries,
// which may duplicate (at-least-once).
//
// At most roomSize records of one topic are in flight in the producer at
// once, whichever calls they come from: a call waits, on ctx, for room for
// its records, and sends more than roomSize records of one topic in
// chunks, in their order. When ctx ends while a record waits for room, it
// was not written.
//
// Every record gets a PRODUCER span "send <topic>", a child of the span in
// ctx (a record's process span), whose context replaces the traceparent and
// tracestate headers of the record sent (telemetry.InjectRecord): a consumer
// of the dead-letter or reply topic continues the same trace. The span ends
// at the acknowledgement, with the partition and offset written, or with the
// error.
func (p *Producer) Produce(ctx context.Context, recs []target.Output) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range recs {
		// No broker holds a topic of such a name: the record can never be
		// written, and a broker that does not create topics answers as for
		// one not created yet, which would be retried for ever.
		if err := config.CheckTopicName(r.Topic); err != nil {
			return target.NewPermanent(fmt.Errorf("kafka: produce: topic %w", err))
		}
	}
	msgs := make([]*sarama.ProducerMessage, len(recs))
	spans := make([]trace.Span, len(recs))
	for i, r := range recs {
		sctx, span := p.tracer.Start(ctx, telemetry.SpanSendPrefix+r.Topic,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(telemetry.SendAttrs(r.Topic, r.Key, len(r.Value))...))
		spans[i] = span
		hs := telemetry.InjectRecord(sctx, r.Headers)
		m := &sarama.ProducerMessage{Topic: r.Topic, Value: sarama.ByteEncoder(r.Value)}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		m.Headers = make([]sarama.RecordHeader, len(hs))
		for j, h := range hs {
			m.Headers[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
		msgs[i] = m
	}
	done := make(chan error, 1)
	if !p.begin() {
		err := fmt.Errorf("kafka: produce to %s: %w", recs[0].Topic, errClosed)
		endSendSpans(spans, msgs, err)
		return err
	}
	go func() {
		defer p.sends.Done()
		done <- p.sendInRoom(ctx, msgs)
	}()
	select {
	case err := <-done:
		endSendSpans(spans, msgs, err)
		if err != nil {
			cerr := classify(err)
			if errors.Is(cerr, sarama.ErrTopicAuthorizationFailed) {
				// The ACLs, not the record: it waits, its partition held,
				// until the grant (docs/security.md lists them).
				cerr = fmt.Errorf("%w: grant the bridge's principal WRITE on %s", cerr, recs[0].Topic)
			}
			perr := fmt.Errorf("kafka: produce to %s: %w", recs[0].Topic, cerr)
			if idx := unwritten(msgs, err); idx != nil {
				return &dispatch.ProduceError{Unwritten: idx, Err: perr}
			}
			return perr
		}
		return nil
	case <-ctx.Done():
		err := fmt.Errorf("kafka: produce to %s: %w", recs[0].Topic, context.Cause(ctx))
		for _, s := range spans {
			s.SetAttributes(telemetry.KeyErrorType.String(target.KindOf(err).String()))
			s.RecordError(err)
			s.SetStatus(codes.Error, "outcome unknown: "+err.Error())
			s.End()
		}
		return err
	}
}

// endSendSpans ends the span of each message: acknowledged ones with their
// partition and offset, failed ones (all, when err does not say which) with
// their error, and its kind as error.type (permanent for a record refused
// for what it is, see classify).
func endSendSpans(spans []trace.Span, msgs []*sarama.ProducerMessage, err error) {
	failed := make(map[*sarama.ProducerMessage]error)
	var pes sarama.ProducerErrors
	if errors.As(err, &pes) {
		for _, pe := range pes {
			failed[pe.Msg] = pe.Err
		}
	}
	for i, m := range msgs {
		s := spans[i]
		merr, ok := failed[m]
		if !ok && err != nil && len(failed) == 0 {
			merr, ok = err, true
		}
		if ok {
			s.SetAttributes(telemetry.KeyErrorType.String(target.KindOf(classify(merr)).String()))
			s.RecordError(merr)
			s.SetStatus(codes.Error, merr.Error())
		} else {
			s.SetAttributes(telemetry.SentAttrs(m.Partition, m.Offset)...)
		}
		s.End()
	}
}

// unwritten returns the indexes of the messages of msgs that err, a failed
// send's, names (a sarama.ProducerErrors lists those that failed; the others
// were acknowledged), or nil when it names none or all of them.
func unwritten(msgs []*sarama.ProducerMessage, err error) []int {
	pes, ok := errors.AsType[sarama.ProducerErrors](err)
	if !ok || len(pes) == 0 {
		return nil
	}
	failed := make(map[*sarama.ProducerMessage]bool, len(pes))
	for _, pe := range pes {
		failed[pe.Msg] = true
	}
	var idx []int
	for i, m := range msgs {
		if failed[m] {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 || len(idx) == len(msgs) {
		return nil
	}
	return idx
}

// begin counts a send in flight, unless the producer is closed.
func (p *Producer) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.sends.Add(1)
	return true
}

// sendInRoom writes msgs, each topic's in chunks of at most roomSize that
// each wait for room and hold it until sarama answered them, so that no
// topic ever has more than roomSize records in the producer. The chunks of
// one topic go one after another, in their order; topics go side by side, so
// that a call never holds one topic's room while it waits for another's. As
// with one send, every record is tried, and the error (sarama.ProducerErrors)
// names those not written: refused or failed by sarama, or given no room
// because ctx ended or the producer closed.
func (p *Producer) sendInRoom(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	var failed sarama.ProducerErrors
	first := msgs[0].Topic
	if !slices.ContainsFunc(msgs, func(m *sarama.ProducerMessage) bool { return m.Topic != first }) {
		failed = p.sendTopic(ctx, msgs)
	} else {
		var topics []string
		byTopic := make(map[string][]*sarama.ProducerMessage)
		for _, m := range msgs {
			if _, ok := byTopic[m.Topic]; !ok {
				topics = append(topics, m.Topic)
			}
			byTopic[m.Topic] = append(byTopic[m.Topic], m)
		}
		each := make([]sarama.ProducerErrors, len(topics))
		var wg sync.WaitGroup
		for i, t := range topics {
			wg.Go(func() { each[i] = p.sendTopic(ctx, byTopic[t]) })
		}
		wg.Wait()
		for _, pes := range each {
			failed = append(failed, pes...)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return failed
}

// sendTopic writes msgs, all of one topic, in chunks of at most roomSize,
// each sent once the topic has room for it, and returns the errors of the
// records not written. A chunk that fails does not stop the next.
func (p *Producer) sendTopic(ctx context.Context, msgs []*sarama.ProducerMessage) sarama.ProducerErrors {
	topic := msgs[0].Topic
	tr := p.enterRoom(topic)
	defer p.leaveRoom(topic, tr)
	room := tr.sem
	var failed sarama.ProducerErrors
	for start := 0; start < len(msgs); start += p.roomSize {
		chunk := msgs[start:min(start+p.roomSize, len(msgs))]
		n := int64(len(chunk))
		if err := room.Acquire(ctx, n); err != nil {
			return append(failed, failEach(msgs[start:], context.Cause(ctx))...)
		}
		if p.isClosed() {
			// Close waits for this call, but need not wait for the
			// records it has not sent yet.
			room.Release(n)
			return append(failed, failEach(msgs[start:], errClosed)...)
		}
		err := p.send(chunk)
		room.Release(n)
		if pes, ok := errors.AsType[sarama.ProducerErrors](err); ok {
			failed = append(failed, pes...)
		} else if err != nil {
			failed = append(failed, failEach(chunk, err)...)
		}
	}
	return failed
}

// failEach returns err as the error of each of msgs.
func failEach(msgs []*sarama.ProducerMessage, err error) sarama.ProducerErrors {
	pes := make(sarama.ProducerErrors, len(msgs))
	for i, m := range msgs {
		pes[i] = &sarama.ProducerError{Msg: m, Err: err}
	}
	return pes
}

// topicRoom is the room of one topic's records in flight, and how many
// calls hold or wait for some of it.
type topicRoom struct {
	sem   *semaphore.Weighted
	users int // under Producer.mu
}

// enterRoom returns the room of topic's records in flight, for a call that
// calls leaveRoom when it is done with it.
func (p *Producer) enterRoom(topic string) *topicRoom {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.room == nil {
		p.room = make(map[string]*topicRoom)
	}
	tr := p.room[topic]
	if tr == nil {
		tr = &topicRoom{sem: semaphore.NewWeighted(int64(p.roomSize))}
		p.room[topic] = tr
	}
	tr.users++
	return tr
}

// leaveRoom ends a call's use of topic's room. A room no call uses is
// dropped (a plugin may write to topics of its own choosing, any number of
// them over time): none of it is held then, and the next call makes it
// anew.
func (p *Producer) leaveRoom(topic string, tr *topicRoom) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tr.users--; tr.users == 0 {
		delete(p.room, topic)
	}
}

// isClosed reports whether Close was called.
func (p *Producer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// errClosed is the error of a send after Close.
var errClosed = errors.New("the producer is closed")

// send writes msgs. The broker checks message.max.bytes against a whole
// batch, and sarama packs the records of one partition into batches of up to
// Producer.MaxMessageBytes (16 MiB, so that a topic allowing large records
// can have them), with the records of every send in flight, whichever route
// or record they are for: records each small enough may be refused together,
// even a single one. Likewise a compacted topic's broker refuses a whole
// batch (INVALID_RECORD) for one record in it without a key. Those are sent
// again one at a time, in their order, each in a batch of its own
// (sendAlone), and only one refused alone is refused. Each message written
// gets its partition and offset.
func (p *Producer) send(msgs []*sarama.ProducerMessage) error {
	err := p.sp.SendMessages(msgs)
	pes, ok := errors.AsType[sarama.ProducerErrors](err)
	if !ok || !slices.ContainsFunc(pes, func(pe *sarama.ProducerError) bool { return refusedForItsBatch(pe.Err) }) {
		return err
	}
	failed := make(map[*sarama.ProducerMessage]bool, len(pes))
	for _, pe := range pes {
		failed[pe.Msg] = true
	}
	var still sarama.ProducerErrors
	for _, m := range msgs {
		if !failed[m] {
			continue
		}
		alone := &sarama.ProducerMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers}
		if err := p.sendAlone(alone); err != nil {
			if pes, ok := errors.AsType[sarama.ProducerErrors](err); ok && len(pes) > 0 {
				err = pes[0].Err
			}
			still = append(still, &sarama.ProducerError{Msg: m, Err: err})
			continue
		}
		m.Partition, m.Offset = alone.Partition, alone.Offset
	}
	if len(still) == 0 {
		return nil
	}
	return still
}

// sendAlone writes m in a batch that holds no other record: through the
// producer of its own, one record of m's topic at a time.
func (p *Producer) sendAlone(m *sarama.ProducerMessage) error {
	p.mu.Lock()
	if p.aloneMu == nil {
		p.aloneMu = make(map[string]*sync.Mutex)
	}
	mu := p.aloneMu[m.Topic]
	if mu == nil {
		mu = new(sync.Mutex)
		p.aloneMu[m.Topic] = mu
	}
	p.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	return p.alone.SendMessages([]*sarama.ProducerMessage{m})
}

// Close waits for the sends in flight, then flushes and closes the producer.
// A Produce after Close fails (retryable) instead of sending; a second Close
// does nothing.
func (p *Producer) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if already {
		return nil // sarama's Close, a second time, would panic
	}
	p.sends.Wait()
	return errors.Join(p.sp.Close(), p.alone.Close())
}

// classify returns the error of a failed send: a record refused for what it
// is, when any was (writing the records again can never succeed), as a
// permanent error; otherwise the first record's error.
func classify(err error) error {
	pes, ok := errors.AsType[sarama.ProducerErrors](err)
	if !ok || len(pes) == 0 {
		if refused(err) {
			return target.NewPermanent(err)
		}
		return err
	}
	for _, pe := range pes {
		if refused(pe.Err) {
			return target.NewPermanent(sizeHint(pe))
		}
	}
	return pes[0].Err
}

// sizeHint returns the error of a record refused for its size, or for
// having no key (a compacted topic's INVALID_RECORD), with what the
// operator can do about it, which neither the broker's text nor sarama's
// says: a dead letter refused so holds its partition until then. The size
// given is an upper bound of the record's batch as the broker measures it
// (uncompressed: the producer does not compress), so a max.message.bytes of
// that much takes it.
func sizeHint(pe *sarama.ProducerError) error {
	if pe.Msg == nil {
		return pe.Err
	}
	size := pe.Msg.ByteSize(2) + recordBatchOverhead
	if errors.Is(pe.Err, sarama.ErrMessageSizeTooLarge) {
		return fmt.Errorf("%w: the record is up to %d bytes with its key, headers and batch header, more than topic %s "+
			"takes: raise its max.message.bytes (kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics --entity-name %s "+
			"--add-config max.message.bytes=%d)", pe.Err, size, pe.Msg.Topic, pe.Msg.Topic, size)
	}
	if errors.Is(pe.Err, sarama.ErrInvalidRecord) && pe.Msg.Key == nil {
		return fmt.Errorf("%w: the record has no key, which a topic with cleanup.policy=compact refuses: if topic %s "+
			"is compacted, set its cleanup.policy=delete (kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics "+
			"--entity-name %s --add-config cleanup.policy=delete), or, for a reply, give the record a key", pe.Err, pe.Msg.Topic, pe.Msg.Topic)
	}
	if _, ok := errors.AsType[sarama.ConfigurationError](pe.Err); ok && pe.Msg.ByteSize(2) > maxProduceBytes {
		return fmt.Errorf("%w: the record is up to %d bytes with its key and headers, over the bridge's own producer "+
			"limit of 16 MiB, which no setting raises: it cannot be written", pe.Err, pe.Msg.ByteSize(2))
	}
	return pe.Err
}

// maxProduceBytes is the producer's own limit of a record
// (Producer.MaxMessageBytes, NewConfig).
const maxProduceBytes = 16 << 20

// recordBatchOverhead is the size of a record batch's header (with the
// offset and length before it), which the broker counts against
// max.message.bytes along with the records.
const recordBatchOverhead = 61

// tooLarge reports whether the broker refused a record, or its batch, for
// its size.
func tooLarge(err error) bool {
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrMessageSetSizeTooLarge)
}

// refusedForItsBatch reports whether the broker may have refused a record
// for another one of its batch: for the batch's size, or (INVALID_RECORD)
// for a record without a key in a compacted topic.
func refusedForItsBatch(err error) bool {
	return tooLarge(err) || errors.Is(err, sarama.ErrInvalidRecord)
}

// refused reports whether the broker (or sarama, before sending) refused a
// record for what it is, so that writing it again cannot succeed: too large
// for message.max.bytes (or, sarama's ConfigurationError, for
// Producer.MaxMessageBytes), invalid, or for a topic whose name is not
// legal. Other failures (a broker down, a leader moving, a topic not there
// yet, authorization) may pass and are retried.
func refused(err error) bool {
	if _, ok := errors.AsType[sarama.ConfigurationError](err); ok {
		return true
	}
	for _, kerr := range []sarama.KError{sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidMessage,
		sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidRecord, sarama.ErrInvalidTopic} {
		if errors.Is(err, kerr) {
			return true
		}
	}
	return false
}

// CheckTopics returns an error naming every topic in want that the cluster
// does not have, every one the broker refuses to describe to the client's
// principal (an ACL), and every one the broker says the principal may not
// write (see notWritable). Hookbridge never creates topics.
func CheckTopics(client sarama.Client, want []string) error {
	if len(want) == 0 {
		return nil
	}
	// The refresh covers every topic of the cluster, and sarama fails it when
	// any partition of any of them has no leader (its broker is down), having
	// kept what the brokers said of every topic: that partition is no reason
	// to refuse a start or a reload. A dead-letter or reply topic with such a
	// partition holds up only the writes to it (Produce).
	if err := client.RefreshMetadata(); err != nil && !onlyLeaderless(err) {
		return fmt.Errorf("kafka: metadata: %w", err)
	}
	have, err := client.Topics()
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	var missing, present []string
	for _, t := range want {
		switch {
		case slices.Contains(missing, t) || slices.Contains(present, t):
		case slices.Contains(have, t):
			present = append(present, t)
		default:
			missing = append(missing, t)
		}
	}
	var errs []error
	if ro := notWritable(client, present); len(ro) > 0 {
		errs = append(errs, fmt.Errorf("kafka: topic(s) %v: the broker refuses this client's principal WRITE on them "+
			"(grant it WRITE): no dead letter or reply could be written: %w", ro, sarama.ErrTopicAuthorizationFailed))
	}
	if len(missing) == 0 {
		return errors.Join(errs...)
	}
	// A listing of every topic leaves out those the ACLs grant the
	// client's principal no DESCRIBE on, as if they did not exist: asked
	// for by name, the broker says which it refuses.
	var denied []string
	if b := client.LeastLoadedBroker(); b != nil {
		if resp, err := b.GetMetadata(sarama.NewMetadataRequest(client.Config().Version, missing)); err == nil {
			for _, tm := range resp.Topics {
				if NotAuthorized(tm.Err) {
					denied = append(denied, tm.Name)
				}
			}
		}
	}
	missing = slices.DeleteFunc(missing, func(t string) bool { return slices.Contains(denied, t) })
	if len(denied) > 0 {
		errs = append(errs, fmt.Errorf("kafka: topic(s) %v: the broker refuses this client's principal access "+
			"(grant it DESCRIBE and WRITE on them): %w", denied, sarama.ErrTopicAuthorizationFailed))
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("kafka: topic(s) %v do not exist; create them first (hookbridge never creates topics)", missing))
	}
	return errors.Join(errs...)
}

// notWritable returns the topics of topics that the broker says the
// client's principal may not write. Metadata from v8 on (Kafka 2.3, and
// kafka.version 2.3.0 or later) tells which operations the ACLs allow it on
// each topic; DESCRIBE is one of them for any topic described to it, so a
// set without it is one the broker did not fill in. A broker that does not
// say leaves it to the first write, which fails, and holds its partition,
// until WRITE is granted.
func notWritable(client sarama.Client, topics []string) []string {
	b := client.LeastLoadedBroker()
	if len(topics) == 0 || b == nil {
		return nil
	}
	req := sarama.NewMetadataRequest(client.Config().Version, topics)
	req.IncludeTopicAuthorizedOperations = true
	resp, err := b.GetMetadata(req)
	if err != nil || resp.Version < minAuthorizedOpsMetadata {
		return nil
	}
	var out []string
	for _, t := range topics {
		for _, tm := range resp.Topics {
			ops := tm.TopicAuthorizedOperations
			if tm.Name == t && errors.Is(tm.Err, sarama.ErrNoError) && ops&(1<<sarama.AclOperationDescribe) != 0 &&
				ops&(1<<sarama.AclOperationWrite) == 0 {
				out = append(out, t)
			}
		}
	}
	return out
}

// CheckDeadLetterTopics returns an error naming every topic of topics, the
// dead-letter topics, that the broker says is compacted (cleanup.policy
// compact, alone or with delete). Compaction keeps only each key's last
// record, so it deletes a key's earlier dead letters, and the broker refuses
// the dead letter of a record without a key (INVALID_RECORD), which then
// holds its partition. A topic whose configs the broker does not describe to
// the client's principal (no DESCRIBE_CONFIGS), or a broker that does not
// answer, leaves the check to the first write.
func CheckDeadLetterTopics(client sarama.Client, topics []string) error {
	b := client.LeastLoadedBroker()
	if len(topics) == 0 || b == nil {
		return nil
	}
	req := &sarama.DescribeConfigsRequest{}
	if v := client.Config().Version; v.IsAtLeast(sarama.V2_0_0_0) {
		req.Version = 2
	} else if v.IsAtLeast(sarama.V1_1_0_0) {
		req.Version = 1
	}
	for _, t := range topics {
		req.Resources = append(req.Resources, &sarama.ConfigResource{Type: sarama.TopicResource, Name: t,
			ConfigNames: []string{"cleanup.policy"}})
	}
	resp, err := b.DescribeConfigs(req)
	if err != nil {
		return nil
	}
	var compacted []string
	for _, r := range resp.Resources {
		if r.ErrorCode != 0 || r.Type != sarama.TopicResource || !slices.Contains(topics, r.Name) {
			continue
		}
		for _, c := range r.Configs {
			if c.Name == "cleanup.policy" && compacts(c.Value) && !slices.Contains(compacted, r.Name) {
				compacted = append(compacted, r.Name)
			}
		}
	}
	if len(compacted) == 0 {
		return nil
	}
	return fmt.Errorf("kafka: dead-letter topic(s) %v have cleanup.policy=compact: compaction keeps only each key's "+
		"last record, so it would delete a key's earlier dead letters, and the broker refuses the dead letter of a "+
		"record without a key; set cleanup.policy=delete (kafka-configs.sh --bootstrap-server <broker> --alter "+
		"--entity-type topics --entity-name <topic> --add-config cleanup.policy=delete)", compacted)
}

// compacts reports whether a cleanup.policy value (a list: "compact",
// "delete", "compact,delete") compacts.
func compacts(policy string) bool {
	for p := range strings.SplitSeq(policy, ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

// minAuthorizedOpsMetadata is the first metadata version that tells the
// operations the principal may perform on each topic.
const minAuthorizedOpsMetadata = 8
