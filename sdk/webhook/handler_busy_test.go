package webhook

import (
	"context"
	"net/http"
	"testing"
)

// A batch that is redelivered while the first request carrying its records
// is still being handled (the bridge's request timed out and it retried) has
// no record that could be done: every one is busy. It is answered as a
// single record in that state is, 503 with Retry-After, which the bridge
// counts against the breaker; a 200 with every id failed would tell the
// bridge the receiver is up, and the records would spend their attempts and
// be dead-lettered while the receiver is merely slow.
func TestHandlerBatchAllBusy(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h := &Handler{Verifier: testVerifier(t), Store: NewMemoryStore(0, 0), Func: func(ctx context.Context, d *Delivery) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	}}
	first := make(chan int, 1)
	go func() { first <- serve(h, batch(t, event(0, 1, "a", 1))).Code }()
	<-entered
	w := serve(h, batch(t, event(0, 1, "a", 1)))
	close(release)
	<-first
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("batch whose only record is busy: answer %d %s; want 503 like a single record (a failed list says the receiver is up)", w.Code, w.Body)
	}
}
