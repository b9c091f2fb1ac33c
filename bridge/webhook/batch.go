package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// BatchContentType is the body type of a batch request.
const BatchContentType = "application/cloudevents-batch+json"

// batcher gathers the records of concurrent deliveries into one request. Each
// record keeps its own outcome: a 2xx answer may name the ids that failed
// ({"failed": ["<webhook-id>", ...]}), and only those are retried. Ordering
// holds because a lane has at most one record in flight, so one key never has
// records in two batches at once.
type batcher struct {
	t           *Target
	maxMessages int
	maxBytes    int
	maxWait     time.Duration

	mu       sync.Mutex
	pending  []*batchItem
	bytes    int
	timer    *time.Timer
	draining bool // the route is shutting down: every record goes at once
}

type batchItem struct {
	ctx   context.Context
	d     *target.Delivery
	event []byte            // the record as a structured CloudEvent, JSON
	id    string            // the event's id as a receiver reads it from the JSON
	done  chan batchOutcome // buffered; receives the record's outcome once
}

// batchOutcome is a record's outcome in its batch. shared: another record
// of the request reports the request's outcome to the circuit breaker.
type batchOutcome struct {
	err    error
	shared bool
}

// newBatchItem encodes d's record as the CloudEvent it becomes in a batch.
// Encoding it here, on the delivering goroutine, gives the batcher each
// record's exact share of the body, so that max_bytes bounds the request.
func newBatchItem(ctx context.Context, d *target.Delivery) *batchItem {
	ev := toBatchEvent(d.Record)
	return &batchItem{ctx: ctx, d: d, event: appendEvent(make([]byte, 0, base64.StdEncoding.EncodedLen(len(d.Record.Value))+512), ev),
		id: jsonDecoded(ev.ID), done: make(chan batchOutcome, 1)}
}

// size is what the item adds to a batch body: its event and the comma or
// bracket after it.
func (it *batchItem) size() int { return len(it.event) + 1 }

func newBatcher(t *Target, b config.Batch) *batcher {
	bt := &batcher{t: t, maxMessages: b.MaxMessages, maxBytes: int(b.MaxBytes), maxWait: b.MaxWait.D()}
	if bt.maxBytes <= 0 {
		bt.maxBytes = 1 << 20
	}
	if bt.maxWait <= 0 {
		bt.maxWait = 20 * time.Millisecond
	}
	return bt
}

// deliver adds d to the open batch and waits for its outcome.
func (b *batcher) deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	it := newBatchItem(ctx, d)
	b.add(it)
	stop := dispatch.Stopping(ctx)
	for {
		select {
		case <-stop:
			// Shutting down: what waits for max_wait goes now, and so does
			// every record after it, so that the drain does not wait out
			// batches that would fill no more.
			b.drain()
			stop = nil
			continue
		case out := <-it.done:
			if out.err != nil {
				if out.shared {
					return nil, target.Shared(out.err)
				}
				return nil, out.err
			}
			return &target.Result{Shared: out.shared}, nil
		case <-ctx.Done():
			// The record leaves the open batch: its partition may have a
			// new owner by now, which delivers it again, and the later
			// records of its key after it. A batch already on its way
			// may still carry it; the record stays unacknowledged and is
			// delivered again (at least once).
			b.remove(it)
			return nil, b.t.contextError(ctx, nil)
		}
	}
}

// remove takes it out of the open batch, if it is still there.
func (b *batcher) remove(it *batchItem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.pending, it)
	if i < 0 {
		return
	}
	b.pending = slices.Delete(b.pending, i, i+1)
	b.bytes -= it.size()
	if len(b.pending) == 0 && b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}

// drain sends the open batch at once, and from now on every record as soon
// as it comes.
func (b *batcher) drain() {
	b.mu.Lock()
	b.draining = true
	b.flushLocked()
	b.mu.Unlock()
}

// add puts it in the open batch. The body of n items is 1 + the sum of their
// sizes ("[", then each event followed by "," or "]"); a record whose event
// alone is over max_bytes goes in a batch of its own.
func (b *batcher) add(it *batchItem) {
	b.mu.Lock()
	if len(b.pending) > 0 && 1+b.bytes+it.size() > b.maxBytes {
		b.flushLocked()
	}
	b.pending = append(b.pending, it)
	b.bytes += it.size()
	switch {
	case b.draining || len(b.pending) >= b.maxMessages || 1+b.bytes >= b.maxBytes:
		b.flushLocked()
	case len(b.pending) == 1:
		b.timer = time.AfterFunc(b.maxWait, b.flushTimer)
	}
	b.mu.Unlock()
}

func (b *batcher) flushTimer() {
	b.mu.Lock()
	b.flushLocked()
	b.mu.Unlock()
}

// flushLocked sends the pending records in a goroutine of their own.
func (b *batcher) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.pending) == 0 {
		return
	}
	items := b.pending
	b.pending, b.bytes = nil, 0
	go b.send(items)
}

// send posts one batch and hands every record its outcome. A record whose
// delivery gave up after the batch was closed is left out (see deliver).
func (b *batcher) send(items []*batchItem) {
	t := b.t
	items = slices.DeleteFunc(items, func(it *batchItem) bool {
		if it.ctx.Err() == nil {
			return false
		}
		it.done <- batchOutcome{err: t.contextError(it.ctx, nil)} // nothing waits for it
		return true
	})
	if len(items) == 0 {
		return
	}
	// The request belongs to no single record; it carries the trace context
	// of one (see requestParent), and ends when the longest-waiting record
	// gives up.
	ctx := context.WithoutCancel(items[requestParent(items)].ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for _, it := range items {
			select {
			case <-it.ctx.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel() // every record gave up
	}()

	errs := t.postBatch(ctx, items)
	// The breaker counts the request once: through the first record still
	// waiting for its outcome (one that gave up reports only that).
	counted := false
	for i, it := range items {
		shared := counted || it.ctx.Err() != nil
		counted = counted || !shared
		it.done <- batchOutcome{err: errs[i], shared: shared}
	}
}

// postBatch posts items as one request and returns each one's outcome. A
// request refused as a whole with a permanent error (400, 413, 422, ...)
// does not say which record was the cause: its records are then posted
// again one by one, at once, and only those refused alone fail permanently
// (and are dead-lettered), so that one poison record, or one too large for
// the receiver, does not take the others of its batch with it.
func (t *Target) postBatch(ctx context.Context, items []*batchItem) []error {
	errs, whole := t.postOnce(ctx, items)
	if whole == nil || len(items) == 1 || target.KindOf(whole) != target.Permanent {
		return errs
	}
	lctx, n := context.WithoutCancel(ctx), len(items) // a held line is logged after the request
	t.refused.Note(func(repeated int, within time.Duration) {
		if repeated == 0 {
			t.log.WarnContext(lctx, "webhook: a batch was refused as a whole; its records go again one by one",
				"records", n, "error", whole)
			return
		}
		t.log.WarnContext(lctx, "webhook: a batch was refused as a whole; its records go again one by one",
			"records", n, "error", whole, "repeated", repeated, "within", within.String())
	})
	out := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		if it.ctx.Err() != nil {
			out[i] = whole // the record gave up: nothing waits for its outcome
			continue
		}
		wg.Go(func() {
			// In the record's own trace, and canceled with the batch (when
			// every record gave up).
			ictx, cancel := context.WithCancel(context.WithoutCancel(it.ctx))
			defer cancel()
			defer context.AfterFunc(ctx, cancel)()
			errs, _ := t.postOnce(ictx, []*batchItem{it})
			out[i] = errs[0]
		})
	}
	wg.Wait()
	return out
}

// postOnce posts items as one request and returns each one's outcome, and
// the error of the request as a whole when it failed as a whole.
func (t *Target) postOnce(ctx context.Context, items []*batchItem) (errs []error, whole error) {
	all := func(err error) ([]error, error) {
		out := make([]error, len(items))
		for i := range out {
			out[i] = err
		}
		return out, err
	}
	body := batchBody(items)
	if err := t.pace(ctx); err != nil {
		return all(err)
	}
	reqCtx, cancel := context.WithTimeout(withLinks(ctx, batchLinks(ctx, items)), t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return all(target.NewPermanent(fmt.Errorf("webhook: POST %s: %w", t.safeURL, unwrapURLError(err))))
	}
	attempt := 1
	for _, it := range items {
		attempt = max(attempt, it.d.Attempt)
	}
	t.batchHeader(req.Header, body, attempt, len(items))
	batchSpans(items, req.Header.Get(HeaderWebhookID))
	markReplayable(req)

	resp, err := t.client.RoundTrip(req)
	if err != nil {
		return all(t.failure(ctx, reqCtx, 0, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, err := t.response(ctx, reqCtx, resp)
		return all(err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return all(t.failure(ctx, reqCtx, resp.StatusCode, fmt.Errorf("reading the answer: %w", err)))
	}
	ids, ok := failedIDs(raw, MaxResponseBody)
	if !ok {
		return all(&target.Error{Kind: target.Retryable, Status: resp.StatusCode, TargetUp: true,
			Err: fmt.Errorf("webhook: POST %s: the receiver's answer is a JSON object that is malformed, does not end within its first %d bytes, or whose \"failed\" is not a list of strings: which records it accepted is unknown", t.safeURL, MaxResponseBody)})
	}
	if id, ok := unknownID(ids, items); ok {
		// The receiver meant some record (the batch's own webhook-id, say,
		// for all of them), but not one the bridge can find: taking the
		// batch as accepted would drop what it reported.
		return all(&target.Error{Kind: target.Retryable, Status: resp.StatusCode, TargetUp: true,
			Err: fmt.Errorf("webhook: POST %s: the receiver's answer lists %q as failed, which is no record of the batch: which records it accepted is unknown", t.safeURL, quoted(id))})
	}
	failed := make(map[string]bool, len(ids))
	for _, id := range ids {
		failed[id] = true
	}
	out := make([]error, len(items))
	for i, it := range items {
		id := it.d.Record.ID()
		if !failed[id] && failed[it.id] {
			id = it.id // the event's own id (a record's ce_id), as the receiver read it
		}
		if failed[id] {
			out[i] = &target.Error{Kind: target.Retryable, Status: resp.StatusCode, TargetUp: true,
				Err: fmt.Errorf("webhook: POST %s: the receiver reported %s as failed in its batch", t.safeURL, id)}
		}
	}
	return out, nil
}

// unknownID returns the first of ids, a batch answer's "failed" list, that
// names no record of items, by its webhook-id or its event's own id.
func unknownID(ids []string, items []*batchItem) (string, bool) {
	if len(ids) == 0 {
		return "", false
	}
	known := make(map[string]bool, 2*len(items))
	for _, it := range items {
		known[it.d.Record.ID()] = true
		known[it.id] = true
	}
	for _, id := range ids {
		if !known[id] {
			return id, true
		}
	}
	return "", false
}

// requestParent returns the index of the record whose span is the parent
// of a batch request's client span: the first whose trace is sampled, or
// the first. Under parent-based sampling the request's span, and the
// receiver's spans below it, are recorded only in a sampled trace: with an
// unsampled record first, the sampled records of the batch would lead to a
// request that was never recorded.
func requestParent(items []*batchItem) int {
	for i, it := range items {
		if trace.SpanContextFromContext(it.ctx).IsSampled() {
			return i
		}
	}
	return 0
}

// batchLinks links the request's client span, which is a child of the span
// in ctx (one record's: see requestParent), to the spans of the other
// records of the batch: each of their traces then leads to the request.
// Only recorded spans need them (see tracingTransport.start).
func batchLinks(ctx context.Context, items []*batchItem) []trace.Link {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return nil
	}
	var links []trace.Link
	for _, it := range items {
		if sc := trace.SpanContextFromContext(it.ctx); sc.IsValid() && sc.IsSampled() && !sc.Equal(parent.SpanContext()) {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links
}

// batchSpans names the batch request on the span of each of its records, so
// that every record's trace says which request carried it.
func batchSpans(items []*batchItem, id string) {
	for _, it := range items {
		if span := trace.SpanFromContext(it.ctx); span.IsRecording() {
			span.SetAttributes(telemetry.KeyBatchID.String(id), telemetry.KeyBatchSize.Int(len(items)))
		}
	}
}

// failedIDs reads the ids a batch answer lists as failed, {"failed": [...]},
// from raw, the answer's first limit+1 bytes at most. An answer that is not
// a JSON object (empty, text, HTML, a JSON array or scalar) lists none: the
// batch was accepted. A JSON object is read whole: every member named
// "failed" (in any case, as encoding/json would match it) adds its ids, and
// one that is null adds none. ok is false when which records failed cannot
// be told: a "failed" member that is not a list of strings, or an object
// that is malformed, does not end within limit, or is followed by anything
// but spaces (a cut rest, or a second value, may hold another "failed"
// member, whose records would otherwise count as delivered).
func failedIDs(raw []byte, limit int) (ids []string, ok bool) {
	if len(raw) > limit {
		raw = raw[:limit]
	}
	raw = bytes.TrimLeft(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")), " \t\r\n") // a byte order mark, then spaces
	if len(raw) == 0 || raw[0] != '{' {
		return nil, true // not a JSON object: not our format
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, false
		}
		if name, _ := key.(string); strings.EqualFold(name, "failed") {
			var list []string
			if err := dec.Decode(&list); err != nil {
				return nil, false // cut, malformed, or not a list of strings
			}
			ids = append(ids, list...)
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, false // cut or malformed before the end
	}
	if rest := bytes.TrimSpace(raw[dec.InputOffset():]); len(rest) > 0 {
		return nil, false // more after the object: not JSON, and it may name failures too
	}
	return ids, true // the whole object within the limit
}

func (t *Target) batchHeader(h http.Header, body []byte, attempt, n int) {
	for k, vs := range t.headers {
		h[k] = append([]string(nil), vs...)
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", t.userAgent)
	}
	id := newBatchID()
	ts := t.timeNow().Unix()
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	if t.signer != nil {
		h.Set(HeaderWebhookSignature, t.signer.Header(id, ts, body))
	}
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	h.Set("Content-Type", BatchContentType)
	h.Set(HeaderBatchSize, strconv.Itoa(n))
}

// HeaderBatchSize carries the number of events in a batch request.
const HeaderBatchSize = "hookbridge-batch-size"

func newBatchID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "batch_" + hex.EncodeToString(b[:])
}

// batchEvent is one record as a structured CloudEvent. The extensions
// partition, offset and key carry the Kafka coordinates; topic is in source
// (and the extension topic). id is the record's webhook-id, so a receiver can
// dedupe per record and name failed ones.
type batchEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      []byte          `json:"data_base64,omitempty"` // the value, base64-encoded in the JSON
	Topic           string          `json:"topic"`
	Partition       int32           `json:"partition"`
	Offset          int64           `json:"offset"`
	Key             *string         `json:"key,omitempty"`
	KeyEncoding     string          `json:"keyencoding,omitempty"`
	Tombstone       bool            `json:"tombstone,omitempty"` // the value is null, not empty
	// Extensions are the record's own ce_* attributes beyond the core ones,
	// merged into the object by appendEvent.
	Extensions map[string]string `json:"-"`
}

// batchBody is the JSON array of the items' CloudEvents.
func batchBody(items []*batchItem) []byte {
	n := 1
	for _, it := range items {
		n += it.size()
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.event...)
	}
	return append(b, ']')
}

func toBatchEvent(rec *target.Record) *batchEvent {
	ev := &batchEvent{SpecVersion: CESpecVersion, ID: rec.ID(), Source: CESourcePrefix + rec.Topic, Type: CEType,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	if ceTime(rec.Timestamp) {
		ev.Time = rec.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	if rec.Key != nil {
		k := string(rec.Key)
		if !utf8.Valid(rec.Key) {
			k = base64.StdEncoding.EncodeToString(rec.Key)
			ev.KeyEncoding = EncodingBase64
		}
		ev.Key = &k
	}
	var ct, ceCT []byte                // the record's content-type, ce_datacontenttype
	cloudEvent, ceTime := false, false // the record carries ce_specversion, ce_time
	for _, h := range rec.Headers {
		switch {
		case strings.EqualFold(h.Key, recordContentType):
			ct = h.Value
		case len(h.Key) > len(recordCEPrefix) && strings.EqualFold(h.Key[:len(recordCEPrefix)], recordCEPrefix):
			attr := strings.ToLower(h.Key[len(recordCEPrefix):])
			switch attr {
			case "specversion":
				ev.SpecVersion, cloudEvent = string(h.Value), true
			case "id":
				ev.ID = string(h.Value)
			case "source":
				ev.Source = string(h.Value)
			case "type":
				ev.Type = string(h.Value)
			case "time":
				ev.Time, ceTime = string(h.Value), true
			case "datacontenttype":
				ceCT = h.Value // as in single-record mode (see recordCEDataContentType)
			default:
				if validExtension(attr) && utf8.Valid(h.Value) {
					if ev.Extensions == nil {
						ev.Extensions = map[string]string{}
					}
					ev.Extensions[attr] = string(h.Value)
				}
			}
		}
	}
	if cloudEvent && !ceTime {
		// A CloudEvent already: its attributes are its own, and time is
		// optional (as ce-time in single-record mode).
		ev.Time = ""
	}
	if ct == nil {
		ct = ceCT
	}
	ev.DataContentType = string(ct)
	if isJSON(ev.DataContentType) && utf8.Valid(rec.Value) && jsonNestedWithin(rec.Value, maxDataDepth) && json.Valid(rec.Value) {
		// json.Valid lets invalid UTF-8 inside strings pass; such a value
		// goes base64, so that the body stays valid UTF-8 JSON.
		ev.Data = rec.Value
	} else if rec.Value != nil {
		ev.DataBase64 = rec.Value
	} else {
		ev.Tombstone = true
	}
	return ev
}

// maxDataDepth is how deeply a JSON value may nest its arrays and objects
// to go in a batch as "data"; a deeper one goes as "data_base64". Receivers'
// JSON parsers have limits (Ruby's default is 100 levels, Python's
// recursion limit about 1,000, Go's 10,000), the batch array and the event
// object add two levels, and a value one parser refuses fails the whole
// batch, every other record in it included.
const maxDataDepth = 64

// jsonNestedWithin reports whether the arrays and objects of the JSON text
// b nest at most max levels deep. It only counts brackets outside strings:
// whether b is JSON at all is json.Valid's to say.
func jsonNestedWithin(b []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return false
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return true
}

// validExtension reports whether name is a legal CloudEvents attribute name
// that does not clash with ours.
func validExtension(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	switch name {
	case "topic", "partition", "offset", "key", "keyencoding", "tombstone", "data", "data_base64", "datacontenttype":
		return false
	}
	return true
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json")
}

var errBatchReply = errors.New("a reply topic cannot be used with batch mode")
