package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// retryWait is how long the hand-written clients wait before retrying a
// failed request.
const retryWait = 50 * time.Millisecond

// pause waits retryWait before a client sends a refused request again; it
// fails when ctx ends first.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(retryWait):
		return nil
	}
}

// runConsumeOnly is (a): a consumer group that counts records and marks
// them, nothing else. Its rate is the most any consumer of this broker can do.
func (e *Env) runConsumeOnly(ctx context.Context) (Result, error) {
	t := newTally(e.opts.Records)
	r, err := e.consume(ctx, "a", t, func(_ context.Context, m *sarama.ConsumerMessage) error {
		t.requests.Add(1)
		t.add(m.Value)
		return nil
	})
	r.Requests = 0 // no requests: the records are counted as they are read
	return r, err
}

// runHTTPOnly is (b): Concurrency workers POST the records' values to the
// receiver, no Kafka involved. Its rate is the most any sender of one record
// per request can do.
func (e *Env) runHTTPOnly(ctx context.Context) (Result, error) { return e.postAll(ctx, false) }

// runHTTPContract is (h), not in the issue: (b) with the request headers the
// webhook contract makes the bridge send (README.md, unsigned), so
// that the cost of the contract and the cost of the bridge can be told apart.
func (e *Env) runHTTPContract(ctx context.Context) (Result, error) { return e.postAll(ctx, true) }

// postAll POSTs every record's value from Concurrency workers.
func (e *Env) postAll(ctx context.Context, contract bool) (Result, error) {
	t := newTally(e.opts.Records)
	e.rcv.count(t)
	defer e.rcv.count(nil)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	start := time.Now()
	wg.Go(func() { e.clientSpec("post", "", contract).postRecords(wctx) })
	err := t.await(ctx, e.opts.Stall, nil)
	cpu := selfCPU() - cpu0
	cancel()
	wg.Wait()
	if err != nil {
		return Result{}, err
	}
	r := Result{HarnessCPU: cpu}
	t.fill(&r, start)
	return r, nil
}

// postRecords POSTs records [0, Records) from Concurrency workers, each until
// it is accepted. It returns when every record was, or when ctx ends.
func (s clientSpec) postRecords(ctx context.Context) {
	client := newHTTPClient(s.Concurrency)
	defer client.CloseIdleConnections()
	s.eachRecord(func(i int) error {
		var h http.Header
		if s.Contract {
			h = contractHeader(s.Topic, int32(i%s.Partitions), int64(i/s.Partitions), []byte(keyOf(i, s.Keys)), time.Now())
		}
		return post(ctx, client, s.URL, value(i, s.RecordSize), h)
	})
}

// eachRecord calls send for every record index in [0, Records) from
// Concurrency workers; a worker stops at the first error send returns (only
// when its context ended).
func (s clientSpec) eachRecord(send func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range s.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= s.Records || send(i) != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// runHandLoop is (c): what one would write by hand without the bridge. A
// consumer group whose claim loop (one goroutine per partition) POSTs each
// record, retries until it is accepted and marks it.
func (e *Env) runHandLoop(ctx context.Context) (Result, error) { return e.handLoop(ctx, "c", false) }

// runHandLoopContract is (c2), not in the issue: (c) sending, with every
// record, the request headers of the webhook contract built by the same
// function as (h)'s, from the record's real topic, partition, offset, key and
// timestamp. It does the job the bridge does in (f), by hand.
func (e *Env) runHandLoopContract(ctx context.Context) (Result, error) {
	return e.handLoop(ctx, "c2", true)
}

func (e *Env) handLoop(ctx context.Context, letter string, contract bool) (Result, error) {
	t := newTally(e.opts.Records)
	e.rcv.count(t)
	defer e.rcv.count(nil)
	s := e.clientSpec("loop", e.group(letter), contract)
	client := s.loopClient()
	defer client.CloseIdleConnections()
	return e.consume(ctx, letter, t, s.handLoop(client))
}

// loopClient is the HTTP client of (c) and (c2): a connection per partition
// (and more, as for (b)).
func (s clientSpec) loopClient() *http.Client { return newHTTPClient(max(s.Concurrency, s.Partitions)) }

// handLoop is the record handler of (c) and (c2): POST the record with
// client, with the contract's headers for (c2), until it is accepted.
func (s clientSpec) handLoop(client *http.Client) func(context.Context, *sarama.ConsumerMessage) error {
	return func(ctx context.Context, m *sarama.ConsumerMessage) error {
		var h http.Header
		if s.Contract {
			h = contractHeader(m.Topic, m.Partition, m.Offset, m.Key, m.Timestamp)
		}
		return post(ctx, client, s.URL, m.Value, h)
	}
}

// consume drains the topic with a new consumer group of the bridge's sarama
// configuration, calling handle for every record in partition order; a record
// is marked when handle returns nil. It returns once t counted every record.
func (e *Env) consume(ctx context.Context, letter string, t *tally,
	handle func(context.Context, *sarama.ConsumerMessage) error) (Result, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := selfCPU()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- consumeGroup(cctx, e.broker.addrs, e.group(letter), e.broker.topic, handle,
			func(format string, args ...any) { e.logf("("+letter+") "+format, args...) })
	}()
	err := t.await(ctx, e.opts.Stall, nil)
	cpu := selfCPU() - cpu0
	cancel()
	if cerr := <-done; cerr != nil && err == nil {
		e.logf("(%s) %v", letter, cerr)
	}
	if err != nil {
		return Result{}, err
	}
	r := Result{HarnessCPU: cpu}
	t.fill(&r, start)
	return r, nil
}

// consumeGroup consumes topic with consumer group name and the bridge's
// sarama configuration until ctx ends, calling handle for every record in
// partition order and marking it when handle returns nil. It returns the
// error of creating or closing the group.
func consumeGroup(ctx context.Context, addrs []string, name, topic string,
	handle func(context.Context, *sarama.ConsumerMessage) error, logf func(string, ...any)) error {
	scfg, err := consumerConfig(addrs)
	if err != nil {
		return err
	}
	group, err := sarama.NewConsumerGroup(addrs, name, scfg)
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for err := range group.Errors() {
			logf("consumer error: %v", err)
		}
	})
	h := &claimHandler{handle: handle}
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{topic}, h)
		if err != nil && ctx.Err() == nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			logf("consume: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	err = group.Close()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("closing the consumer group: %w", err)
	}
	return nil
}

// claimHandler hands every record of a claim to handle, in order, and marks it.
type claimHandler struct {
	handle func(context.Context, *sarama.ConsumerMessage) error
}

func (h *claimHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *claimHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *claimHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if err := h.handle(ctx, m); err != nil {
				return nil // only when ctx ended: the session is over
			}
			sess.MarkMessage(m, "")
		case <-ctx.Done():
			return nil
		}
	}
}

// newHTTPClient is a client that keeps a connection per request in flight.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// contractHeader returns the headers the bridge sends with one record (the
// webhook contract of README.md), without a signature (the bench routes have
// no signing secret).
// (h) calls it with made-up coordinates for record i, (c2) with the consumed
// record's own.
func contractHeader(topic string, partition int32, offset int64, key []byte, ts time.Time) http.Header {
	p := strconv.Itoa(int(partition))
	off := strconv.FormatInt(offset, 10)
	id := topic + "-" + p + "-" + off
	h := make(http.Header, 16)
	h.Set("User-Agent", "hookbridge/bench")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	h.Set("hookbridge-attempt", "1")
	h.Set("kafka-topic", topic)
	h.Set("kafka-partition", p)
	h.Set("kafka-offset", off)
	if key != nil {
		h.Set("kafka-key", string(key))
	}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", id)
	h.Set("ce-source", "/kafka/"+topic)
	h.Set("ce-type", "dev.hookbridge.kafka.record")
	h.Set("ce-time", ts.UTC().Format(time.RFC3339Nano))
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return h
}

// post sends body until the receiver answers 2xx; it fails only when ctx
// ends. header, when not nil, is added to the request.
func post(ctx context.Context, c *http.Client, url string, body []byte, header http.Header) error {
	for {
		err := postOnce(ctx, c, url, body, header)
		if err == nil {
			return nil
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

func postOnce(ctx context.Context, c *http.Client, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
