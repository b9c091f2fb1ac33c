package receiver

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/signing"
)

// The FastAPI example verifies a single record's body as the bytes it is: a
// record value that is not UTF-8 is accepted like text when the signature
// is right, and refused 401 when it is not. A 401 pauses the bridge's route,
// so one binary record refused would stop every record behind it.
func TestFastAPIReceiverVerifiesBinaryBodies(t *testing.T) {
	py := fastAPIPython(t)
	app := startFastAPI(t, py, "WEBHOOK_SECRETS="+newSecret)

	// As the bridge of the other tests signs: with both secrets, of which
	// the app holds the second.
	bridgeSigner := newSigner(t, oldSecret, newSecret)
	oldOnly := newSigner(t, oldSecret)
	text := []byte(`{"note":"héllo"}`)
	binary := []byte{0x00, 0x01, 0xff, 0xfe, 0x80, '\n'}

	for i, tc := range []struct {
		name        string
		body        []byte
		contentType string
		sign        func(id string, ts int64) string
		want        int
	}{
		{"text", text, "application/json",
			func(id string, ts int64) string { return bridgeSigner.Header(id, ts, text) }, http.StatusNoContent},
		{"not UTF-8", binary, "application/octet-stream",
			func(id string, ts int64) string { return bridgeSigner.Header(id, ts, binary) }, http.StatusNoContent},
		{"not UTF-8, signature of another body", binary, "application/octet-stream",
			func(id string, ts int64) string { return bridgeSigner.Header(id, ts, text) }, http.StatusUnauthorized},
		{"not UTF-8, signed with another secret", binary, "application/octet-stream",
			func(id string, ts int64) string { return oldOnly.Header(id, ts, binary) }, http.StatusUnauthorized},
	} {
		offset := strconv.Itoa(i)
		id := "orders-0-" + offset
		ts := time.Now().Unix()
		req, err := http.NewRequest(http.MethodPost, app.url+"/webhook/orders", bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": strconv.FormatInt(ts, 10),
			"webhook-signature": tc.sign(id, ts), "content-type": tc.contentType, "kafka-topic": "orders",
			"kafka-partition": "0", "kafka-offset": offset, "hookbridge-attempt": "1"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if s := app.stats(t); s.Accepted != 2 || s.Rejected != 2 {
		t.Fatalf("accepted %d, rejected %d; want 2, 2", s.Accepted, s.Rejected)
	}
}

func newSigner(t *testing.T, secrets ...string) *signing.Signer {
	t.Helper()
	s, err := signing.NewSigner(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
