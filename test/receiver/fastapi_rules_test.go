package receiver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// postSigned sends body to the FastAPI app as the bridge would, signed with
// newSecret, with the headers given, and returns the answer's status and body.
func postSigned(t *testing.T, app *fastAPI, id string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	ts := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, app.url+"/webhook/orders", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", newSigner(t, newSecret).Header(id, ts, body))
	req.Header.Set("hookbridge-attempt", "1")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// A batch none of whose records could be handled is answered 500, as
// sdk/webhook's Handler answers it (docs/receivers.md, "Batches"): a 200
// naming every record tells the bridge that the receiver is up, so while a
// dependency of the receiver is down the records would spend their attempts
// and be dead-lettered instead of the route pausing. A batch with a record
// handled keeps its failed list.
func TestFastAPIReceiverBatchNoneDone(t *testing.T) {
	py := fastAPIPython(t)
	app := startFastAPI(t, py, "WEBHOOK_SECRETS="+newSecret, "FAIL_EVERY_NTH=2")
	batch := func(offsets ...int) []byte {
		var events []map[string]any
		for _, o := range offsets {
			events = append(events, map[string]any{"specversion": "1.0", "id": "orders-0-" + strconv.Itoa(o),
				"source": "/kafka/orders", "type": "dev.hookbridge.kafka.record", "datacontenttype": "application/json",
				"data": map[string]int{"n": o}, "topic": "orders", "partition": 0, "offset": o, "key": "k" + strconv.Itoa(o)})
		}
		b, err := json.Marshal(events)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	headers := func(n int) map[string]string {
		return map[string]string{"content-type": "application/cloudevents-batch+json", "hookbridge-batch-size": strconv.Itoa(n)}
	}

	// Offsets 2 and 4 fail their first delivery: nothing of the batch is done.
	if code, answer := postSigned(t, app, "batch_1", batch(2, 4), headers(2)); code != http.StatusInternalServerError {
		t.Errorf("batch whose every record failed: %d %s; want 500 as sdk/webhook answers (a failed list says the receiver is up)", code, answer)
	}
	// Offset 1 is handled, 6 fails: the failed list names 6.
	code, answer := postSigned(t, app, "batch_2", batch(1, 6), headers(2))
	var res struct{ Failed []string }
	if code != http.StatusOK || json.Unmarshal([]byte(answer), &res) != nil || !slices.Equal(res.Failed, []string{"orders-0-6"}) {
		t.Errorf("batch with one record handled: %d %s; want 200 naming orders-0-6", code, answer)
	}
	// The retry of the first batch is handled.
	if code, answer := postSigned(t, app, "batch_3", batch(2, 4), headers(2)); code != http.StatusOK || answer != `{"failed":[]}` {
		t.Errorf("retried batch: %d %s", code, answer)
	}
	if s := app.stats(t); s.Accepted != 3 || s.Failed != 3 {
		t.Errorf("accepted %d, failed %d; want 3, 3", s.Accepted, s.Failed)
	}
}

// A single record's key that is UTF-8 text arrives in kafka-key as its own
// bytes; the app reads it as those bytes (as sdk/webhook's Delivery.Key
// does), not as Latin-1 text re-encoded, which turned café into cafÃ© and
// put the record on another lane than the same key in a batch.
func TestFastAPIReceiverUTF8Key(t *testing.T) {
	py := fastAPIPython(t)
	app := startFastAPI(t, py, "WEBHOOK_SECRETS="+newSecret)
	single := map[string]string{"content-type": "application/json", "kafka-topic": "orders", "kafka-partition": "0",
		"kafka-offset": "5", "kafka-key": "café"}
	if code, answer := postSigned(t, app, "orders-0-5", []byte(`{}`), single); code != http.StatusNoContent {
		t.Fatalf("single record: %d %s", code, answer)
	}
	batch := []byte(`[{"specversion":"1.0","id":"orders-0-6","source":"/kafka/orders","type":"dev.hookbridge.kafka.record",` +
		`"datacontenttype":"application/json","data":{},"topic":"orders","partition":0,"offset":6,"key":"café"}]`)
	if code, answer := postSigned(t, app, "batch_1", batch, map[string]string{"content-type": "application/cloudevents-batch+json",
		"hookbridge-batch-size": "1"}); code != http.StatusOK {
		t.Fatalf("batch: %d %s", code, answer)
	}
	s := app.stats(t)
	if got := s.Order["orders/0/café"]; !slices.Equal(got, []int{5, 6}) {
		t.Errorf("lanes %v; want orders/0/café with offsets 5 and 6", s.Order)
	}
}
