package webhook

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A "failed" list that names an id which is no record of the batch (the
// batch request's own webhook-id, a record id the receiver made up) says
// that something failed, but not which record: the whole batch fails as
// retryable, as for an answer that cannot be read, instead of every record
// counting as delivered. Ids that do name records (by webhook-id or by the
// event's own ce_id) keep failing only those records.
func TestBatchAnswerNamesNoRecord(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(batchID string) string
		want   []bool // per record: failed; nil = every record, as unknown
	}{
		{"the batch's own id", func(id string) string { return `{"failed":["` + id + `"]}` }, nil},
		{"an id of no record", func(string) string { return `{"failed":["orders-0-9"]}` }, nil},
		{"a record and an id of no record", func(string) string { return `{"failed":["orders-0-1","nope"]}` }, nil},
		{"a record by both its ids", func(string) string { return `{"failed":["orders-0-2","evt-2"]}` }, []bool{false, true}},
		{"a record by its event id", func(string) string { return `{"failed":["evt-2"]}` }, []bool{false, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, c.answer(r.Header.Get(HeaderWebhookID)))
			})
			errs := deliverAll(t, batchTarget(t, srv.URL, 2, ""), []*target.Record{
				{Topic: "orders", Partition: 0, Offset: 1, Value: []byte("a")},
				{Topic: "orders", Partition: 0, Offset: 2, Value: []byte("b"), Headers: []target.Header{{Key: "ce_id", Value: []byte("evt-2")}}},
			})
			for i, err := range errs {
				switch {
				case c.want == nil:
					if err == nil {
						t.Errorf("record %d: accepted, but the answer reports a failure of no record of the batch", i)
						continue
					}
					wantKind(t, err, target.Retryable, 200)
					if target.TargetDown(err) || !strings.Contains(err.Error(), "which records it accepted is unknown") {
						t.Errorf("record %d: %v, want a retryable failure that does not count against the breaker", i, err)
					}
				case c.want[i]:
					wantKind(t, err, target.Retryable, 200)
				case err != nil:
					t.Errorf("record %d: %v, want accepted", i, err)
				}
			}
		})
	}
}
