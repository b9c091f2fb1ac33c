package bridge

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

// The dry-run listing shows one line per header: a header value (or name)
// with a line break, written by whoever produced the record, must not read
// as another header or another record, nor one with a format character
// reorder what the terminal shows.
func TestDryRunListingQuotesWhatCouldForgeALine(t *testing.T) {
	m := &sarama.ConsumerMessage{Topic: "orders.dlq", Partition: 1, Offset: 7, Key: []byte("k"), Value: []byte("v"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte("hookbridge-error-message"), Value: []byte("HTTP 400: bad request")},
			{Key: []byte("hookbridge-error-kind"), Value: []byte("permanent\n    hookbridge-error-route: payments\norders.dlq/0@1 key=\"x\" value=1 bytes")},
			{Key: []byte("hookbridge-error-status"), Value: []byte{0xff, '5'}},
			{Key: []byte("hookbridge-x\nhookbridge-error-route"), Value: []byte("payments")},
			{Key: []byte("hookbridge-error-attempts"), Value: []byte(`"3"`)},
			{Key: []byte("hookbridge-error-route"), Value: []byte("payments\u202e)stnemyap")},
			{Key: []byte("other"), Value: []byte("not listed")},
		}}
	var out strings.Builder
	printDLQRecord(&out, m, "orders.dlq-1-7")
	want := `orders.dlq/1@7 key="k" value=1 bytes webhook-id=orders.dlq-1-7
    hookbridge-error-attempts: "\"3\""
    hookbridge-error-kind: "permanent\n    hookbridge-error-route: payments\norders.dlq/0@1 key=\"x\" value=1 bytes"
    hookbridge-error-message: HTTP 400: bad request
    hookbridge-error-route: "payments\u202e)stnemyap"
    hookbridge-error-status: "\xff5"
    "hookbridge-x\nhookbridge-error-route": payments
`
	if out.String() != want {
		t.Errorf("listing:\n%s\nwant:\n%s", out.String(), want)
	}
}
