package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/hookbridge/hookbridge/sdk/webhook"
)

// Verify a request with the Standard Webhooks test vector. (The clock is
// set to the vector's timestamp; a real receiver leaves it alone.)
func ExampleVerifier_Verify() {
	v, err := webhook.NewVerifier([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		webhook.WithClock(func() time.Time { return time.Unix(1614265330, 0) }))
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"test": 2432232314}`))
	r.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	r.Header.Set("webhook-timestamp", "1614265330")
	r.Header.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	body, err := v.Verify(r)
	fmt.Printf("%s %v\n", body, err)

	r.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	_, err = v.Verify(r)
	fmt.Println(err)
	// Output:
	// {"test": 2432232314} <nil>
	// webhook: no matching signature
}

// A receiver: verify, dedupe by webhook-id, handle. The second delivery of
// the same record (as after a crash of the bridge) is answered but not
// handled again.
func ExampleHandler() {
	const secret = "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		panic(err)
	}
	h := &webhook.Handler{
		Verifier: v,
		Store:    webhook.NewMemoryStore(100_000, 24*time.Hour),
		Func: func(ctx context.Context, d *webhook.Delivery) error {
			fmt.Printf("handled %s: key %s, %s\n", d.ID, d.Key, d.Body)
			return nil
		},
		Duplicate: func(ctx context.Context, d *webhook.Delivery) {
			fmt.Printf("skipped %s: seen before\n", d.ID)
		},
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// What the bridge sends for record orders/0/41 (a few headers only).
	post := func() int {
		body := `{"order":7}`
		ts := time.Now().Unix()
		sig, _ := webhook.Sign(secret, "orders-0-41", ts, []byte(body))
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("webhook-id", "orders-0-41")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("webhook-signature", sig)
		req.Header.Set("kafka-topic", "orders")
		req.Header.Set("kafka-partition", "0")
		req.Header.Set("kafka-offset", "41")
		req.Header.Set("kafka-key", "customer-9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(post())
	fmt.Println(post())
	// Output:
	// handled orders-0-41: key customer-9, {"order":7}
	// 204
	// skipped orders-0-41: seen before
	// 204
}

// Answer a batch: name the records that failed; the bridge retries only
// those.
func ExampleBatchResult() {
	events, err := webhook.DecodeBatch([]byte(`[
		{"id":"orders-0-7","topic":"orders","partition":0,"offset":7,"key":"a","datacontenttype":"application/json","data":{"ok":true}},
		{"id":"orders-1-3","topic":"orders","partition":1,"offset":3,"key":"/w==","keyencoding":"base64","data_base64":"AAE="}
	]`))
	if err != nil {
		panic(err)
	}
	var res webhook.BatchResult
	for i := range events {
		e := &events[i]
		fmt.Printf("%s key=%q data=%q\n", e.RecordID(), e.Key, e.Data)
		if e.DataContentType != "application/json" {
			res.Fail(e)
		}
	}
	w := httptest.NewRecorder()
	_ = res.Write(w)
	fmt.Println(w.Code, w.Body)
	// Output:
	// orders-0-7 key="a" data="{\"ok\":true}"
	// orders-1-3 key="\xff" data="\x00\x01"
	// 200 {"failed":["orders-1-3"]}
}
