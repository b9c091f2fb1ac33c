package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
)

// Func handles one record. A nil error means the record is done; an error
// has it retried by the bridge (with backoff), unless it is marked with
// Permanent, which has it dead-lettered. It is called concurrently, for
// different records, with the request's context.
type Func func(ctx context.Context, d *Delivery) error

// Handler is an http.Handler that receives Hookbridge webhooks, single
// records and batches alike. For every request it:
//
//  1. verifies the signature (Verifier); a request that fails is answered
//     401 (413 when the body is over the cap) and never reaches Func;
//  2. decodes it: one Delivery per record, in the order of the batch;
//  3. skips a record the Store has marked (a redelivery; Duplicate is told),
//     and a record another request of this Handler is handling right now;
//  4. calls Func, then marks the record in the Store if Func succeeded.
//
// Answers, single-record mode: 204 when the record was handled or skipped as
// a duplicate; 500 with the error's text when Func failed (the bridge
// retries); 422 when Func failed with Permanent (the bridge dead-letters);
// 503 with Retry-After when the Store failed or the same record is being
// handled by another request. Batch mode: 200 with {"failed": [ids]} naming
// every record that was not done, for any of those reasons; a permanent
// failure cannot be singled out in a batch and is retried too. Within a
// batch, once a record failed, the later records of the same topic,
// partition and key are not handled but failed as well, so that per-key order
// holds when the bridge retries them. A batch none of whose records could be
// done is answered like a single record, so that the bridge counts it
// against the circuit breaker and pauses instead of spending the records'
// attempts (a failed list means the receiver is up): 503 with Retry-After
// when the Store failed (the rest of the batch is not tried) or, with no
// record handled, when one is being handled by another request; 500 when no
// record was handled and Func failed for one other than with Permanent.
//
// The exported fields are plain configuration: set them before the first
// request and do not change them after. Verifier and Func are required.
type Handler struct {
	// Verifier checks every request. Required.
	Verifier *Verifier
	// Func handles each record. Required.
	Func Func
	// Store remembers handled records by webhook-id. Default nil: no
	// deduplication, every delivery reaches Func.
	Store Store
	// Duplicate, when set, is called for every record skipped because the
	// Store had marked it.
	Duplicate func(ctx context.Context, d *Delivery)
	// Logger receives a warning for every rejected request and failed
	// record. Default nil: nothing is logged. Secrets and bodies are never
	// logged.
	Logger *slog.Logger

	mu       sync.Mutex
	inflight map[string]struct{}
}

var _ http.Handler = (*Handler)(nil)

// Permanent marks err as a permanent failure: retrying the record cannot
// help, so the bridge dead-letters it at once (Handler answers 422).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// outcome is what became of one record.
type outcome int

const (
	handled     outcome = iota
	duplicate           // the Store had marked it
	busy                // another request is handling it
	failed              // Func failed
	permanent           // Func failed with Permanent
	unavailable         // the Store failed
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhook: POST only", http.StatusMethodNotAllowed)
		return
	}
	if h.Verifier == nil || h.Func == nil {
		http.Error(w, "webhook: Handler needs a Verifier and a Func", http.StatusInternalServerError)
		return
	}
	body, err := h.Verifier.Verify(r)
	if err != nil {
		h.warn("webhook: rejected a request", err, r.Header.Get(HeaderID))
		switch {
		case errors.Is(err, ErrBodyTooLarge):
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		case errors.Is(err, ErrMissingHeader), errors.Is(err, ErrTimestamp), errors.Is(err, ErrSignature):
			http.Error(w, err.Error(), http.StatusUnauthorized)
		default: // the body could not be read: the sender went away
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		return
	}
	if IsBatch(r.Header) {
		h.serveBatch(w, r, body)
		return
	}
	d, err := DecodeDelivery(r.Header, body)
	if err != nil {
		h.warn("webhook: rejected a request", err, r.Header.Get(HeaderID))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch out, err := h.one(r.Context(), d); out {
	case handled, duplicate:
		w.WriteHeader(http.StatusNoContent)
	case busy:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "webhook: "+d.ID+" is being handled by another request", http.StatusServiceUnavailable)
	case unavailable:
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case permanent:
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// serveBatch handles the events of a batch in order and answers which failed.
func (h *Handler) serveBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	events, err := DecodeBatch(body)
	if err != nil {
		h.warn("webhook: rejected a batch", err, r.Header.Get(HeaderID))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type lane struct {
		topic     string
		partition int32
		key       string
		null      bool
	}
	var res BatchResult
	blocked := map[lane]bool{}
	var funcErr error // the first failure of Func that was not permanent
	busyID := ""      // a record another request is handling
	done := false     // a record was handled, or skipped as a duplicate
	for i := range events {
		e := &events[i]
		l := lane{e.Topic, e.Partition, string(e.Key), e.Key == nil}
		if blocked[l] {
			res.Fail(e)
			continue
		}
		switch out, err := h.one(r.Context(), e.delivery(r.Header)); out {
		case handled, duplicate:
			done = true
		case unavailable:
			// Every record would find the Store down: the receiver is.
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		default:
			if out == failed && funcErr == nil {
				funcErr = err
			}
			if out == busy && busyID == "" {
				busyID = e.RecordID()
			}
			res.Fail(e)
			blocked[l] = true
		}
	}
	switch {
	case done:
	case busyID != "":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "webhook: no record of the batch was handled: "+busyID+" is being handled by another request", http.StatusServiceUnavailable)
		return
	case funcErr != nil:
		http.Error(w, "webhook: no record of the batch was handled: "+funcErr.Error(), http.StatusInternalServerError)
		return
	}
	if err := res.Write(w); err != nil {
		h.warn("webhook: writing the batch answer", err, r.Header.Get(HeaderID))
	}
}

// one runs one record through the Store and Func.
func (h *Handler) one(ctx context.Context, d *Delivery) (outcome, error) {
	if !h.claim(d.ID) {
		return busy, nil
	}
	defer h.release(d.ID)
	if h.Store != nil {
		seen, err := h.Store.Seen(ctx, d.ID)
		if err != nil {
			h.warn("webhook: the store failed", err, d.ID)
			return unavailable, err
		}
		if seen {
			if h.Duplicate != nil {
				h.Duplicate(ctx, d)
			}
			return duplicate, nil
		}
	}
	if err := h.Func(ctx, d); err != nil {
		h.warn("webhook: handling a record failed", err, d.ID)
		if IsPermanent(err) {
			return permanent, err
		}
		return failed, err
	}
	if h.Store != nil {
		// The record is done: a failure to remember it only risks handling
		// it again on a redelivery, so the answer stays a success. The mark
		// outlives a sender that went away meanwhile.
		if err := h.Store.Mark(context.WithoutCancel(ctx), d.ID); err != nil {
			h.warn("webhook: the store failed to mark a handled record", err, d.ID)
		}
	}
	return handled, nil
}

// claim reserves id for the calling request; false when another request of
// this Handler holds it.
func (h *Handler) claim(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.inflight[id]; ok {
		return false
	}
	if h.inflight == nil {
		h.inflight = map[string]struct{}{}
	}
	h.inflight[id] = struct{}{}
	return true
}

func (h *Handler) release(id string) {
	h.mu.Lock()
	delete(h.inflight, id)
	h.mu.Unlock()
}

func (h *Handler) warn(msg string, err error, id string) {
	if h.Logger != nil {
		h.Logger.Warn(msg, slog.String("webhook_id", id), slog.String("error", err.Error()))
	}
}
