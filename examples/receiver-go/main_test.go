package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/sdk/webhook"
)

const secret = "whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="

func post(t *testing.T, url, signWith string) int {
	t.Helper()
	body := []byte(`{"order":17}`)
	ts := time.Now().Unix()
	sig, err := webhook.Sign(signWith, "orders-2-17", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range map[string]string{"webhook-id": "orders-2-17", "webhook-timestamp": strconv.FormatInt(ts, 10),
		"webhook-signature": sig, "kafka-topic": "orders", "kafka-partition": "2", "kafka-offset": "17",
		"kafka-key": "customer-9", "hookbridge-attempt": "1", "content-type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReceiver(t *testing.T) {
	var out bytes.Buffer
	h, err := newHandler(splitSecrets("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, "+secret), &out)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if code := post(t, srv.URL, secret); code != http.StatusNoContent {
		t.Fatalf("first delivery: %d", code)
	}
	if code := post(t, srv.URL, secret); code != http.StatusNoContent {
		t.Fatalf("redelivery: %d", code)
	}
	if code := post(t, srv.URL, "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0IGtleSEhIQ=="); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`orders-2-17 key="customer-9" attempt=1 trace=00000000000000000000000000000000 {"order":17}`,
		`orders-2-17 duplicate (handled before), skipped`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("printed:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
	if _, err := newHandler(nil, &out); err == nil {
		t.Fatal("no secrets accepted")
	}
}
