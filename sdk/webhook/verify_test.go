package webhook

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published Standard Webhooks test vector
// (github.com/standard-webhooks/standard-webhooks, libraries' tests).
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// Two more secrets of valid length, for rotation tests.
const (
	oldSecret = "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes
	newSecret = "whsec_" + "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=" // "1234...9012", 32 bytes
)

func specClock() time.Time { return time.Unix(specTimestamp, 0) }

// request builds a POST with the three Standard Webhooks headers.
func request(id, ts, sig string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	if id != "" {
		r.Header.Set(HeaderID, id)
	}
	if ts != "" {
		r.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		r.Header.Set(HeaderSignature, sig)
	}
	return r
}

func mustVerifier(t *testing.T, secrets []string, opts ...Option) *Verifier {
	t.Helper()
	v, err := NewVerifier(secrets, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSign(t *testing.T, secret, id string, ts int64, body []byte) string {
	t.Helper()
	s, err := Sign(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecVector(t *testing.T) {
	if got := mustSign(t, specSecret, specID, specTimestamp, []byte(specBody)); got != specSignature {
		t.Fatalf("Sign = %s, want the spec's %s", got, specSignature)
	}
	v := mustVerifier(t, []string{specSecret}, WithClock(specClock))
	r := request(specID, strconv.Itoa(specTimestamp), specSignature, []byte(specBody))
	body, err := v.Verify(r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if string(body) != specBody {
		t.Fatalf("body %q", body)
	}
	// The body was put back for a second reader.
	again, _ := io.ReadAll(r.Body)
	if string(again) != specBody {
		t.Fatalf("r.Body after Verify holds %q", again)
	}
	if err := v.VerifyPayload(specID, strconv.Itoa(specTimestamp), specSignature, []byte(specBody)); err != nil {
		t.Fatalf("VerifyPayload: %v", err)
	}
}

func TestTampering(t *testing.T) {
	ts := strconv.Itoa(specTimestamp)
	otherKey := mustSign(t, newSecret, specID, specTimestamp, []byte(specBody))
	for _, tc := range []struct {
		name        string
		id, ts, sig string
		body        string
		want        error
	}{
		{"body changed", specID, ts, specSignature, `{"test": 2432232315}`, ErrSignature},
		{"body extended", specID, ts, specSignature, specBody + " ", ErrSignature},
		{"id changed", "msg_p5jXN8AQM9LWM0D4loKWxJeK", ts, specSignature, specBody, ErrSignature},
		{"timestamp changed", specID, strconv.Itoa(specTimestamp + 1), specSignature, specBody, ErrSignature},
		{"signed with another key", specID, ts, otherKey, specBody, ErrSignature},
		{"signature bit flipped", specID, ts, "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", specBody, ErrSignature},
		{"other padding bits", specID, ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", specBody, ErrSignature},
		{"other version only", specID, ts, "v2," + strings.TrimPrefix(specSignature, "v1,"), specBody, ErrSignature},
		{"not base64", specID, ts, "v1,!!!", specBody, ErrSignature},
		{"empty v1", specID, ts, "v1,", specBody, ErrSignature},
		{"no id", "", ts, specSignature, specBody, ErrMissingHeader},
		{"no timestamp", specID, "", specSignature, specBody, ErrMissingHeader},
		{"no signature", specID, ts, "", specBody, ErrMissingHeader},
		{"timestamp not a number", specID, "1614265330.5", specSignature, specBody, ErrTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, []string{specSecret}, WithClock(specClock))
			_, err := v.Verify(request(tc.id, tc.ts, tc.sig, []byte(tc.body)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ9r8G") {
				t.Fatalf("error %q reveals the secret", err)
			}
		})
	}
}

func TestMultipleSignatures(t *testing.T) {
	ts := strconv.Itoa(specTimestamp)
	v := mustVerifier(t, []string{specSecret}, WithClock(specClock))
	other := mustSign(t, newSecret, specID, specTimestamp, []byte(specBody))
	for _, sig := range []string{
		other + " " + specSignature,
		specSignature + " " + other,
		"v2,abc " + specSignature,
		"v1,bm90IGl0 v1,!!! " + specSignature,
		"  " + specSignature + "  ",
	} {
		if _, err := v.Verify(request(specID, ts, sig, []byte(specBody))); err != nil {
			t.Errorf("signature header %q: %v", sig, err)
		}
	}
}

// A rotation: the sender signs with both secrets; receivers holding either,
// or both, accept; one holding neither rejects.
func TestRotation(t *testing.T) {
	const id, ts = "orders-3-42", int64(1_700_000_000)
	body := []byte("rotate me")
	both := mustSign(t, oldSecret, id, ts, body) + " " + mustSign(t, newSecret, id, ts, body)
	onlyNew := mustSign(t, newSecret, id, ts, body)
	clock := WithClock(func() time.Time { return time.Unix(ts, 0) })
	for _, tc := range []struct {
		name    string
		secrets []string
		sig     string
		ok      bool
	}{
		{"old receiver, both signatures", []string{oldSecret}, both, true},
		{"new receiver, both signatures", []string{newSecret}, both, true},
		{"receiver with both, both signatures", []string{oldSecret, newSecret}, both, true},
		{"receiver with both, new signature only", []string{oldSecret, newSecret}, onlyNew, true},
		{"receiver with both, old signature only", []string{newSecret, oldSecret}, mustSign(t, oldSecret, id, ts, body), true},
		{"old receiver after the sender dropped the old secret", []string{oldSecret}, onlyNew, false},
		{"unrelated receiver", []string{specSecret}, both, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, tc.secrets, clock)
			_, err := v.Verify(request(id, strconv.FormatInt(ts, 10), tc.sig, body))
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	const id = "t-0-1"
	body := []byte("x")
	now := time.Unix(1_700_000_000, 0)
	clock := WithClock(func() time.Time { return now })
	for _, tc := range []struct {
		name   string
		offset time.Duration // timestamp - now
		opts   []Option
		ok     bool
	}{
		{"now", 0, nil, true},
		{"4m59s old", -(5*time.Minute - time.Second), nil, true},
		{"exactly 5m old", -5 * time.Minute, nil, true},
		{"5m1s old", -(5*time.Minute + time.Second), nil, false},
		{"5m1s ahead", 5*time.Minute + time.Second, nil, false},
		{"4m59s ahead", 5*time.Minute - time.Second, nil, true},
		{"an hour old", -time.Hour, nil, false},
		{"an hour old, tolerance 2h", -time.Hour, []Option{WithTolerance(2 * time.Hour)}, true},
		{"31s old, tolerance 30s", -31 * time.Second, []Option{WithTolerance(30 * time.Second)}, false},
		{"zero tolerance keeps the default", -4 * time.Minute, []Option{WithTolerance(0)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, []string{newSecret}, append([]Option{clock}, tc.opts...)...)
			ts := now.Add(tc.offset).Unix()
			sig := mustSign(t, newSecret, id, ts, body)
			_, err := v.Verify(request(id, strconv.FormatInt(ts, 10), sig, body))
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, ErrTimestamp) {
				t.Fatalf("Verify = %v, want ErrTimestamp", err)
			}
		})
	}
}

func TestBodyCap(t *testing.T) {
	const id, ts = "t-0-1", int64(1_700_000_000)
	clock := WithClock(func() time.Time { return time.Unix(ts, 0) })
	v := mustVerifier(t, []string{newSecret}, clock, WithMaxBodyBytes(10))
	for _, n := range []int{0, 10, 11, 1000} {
		body := bytes.Repeat([]byte("a"), n)
		_, err := v.Verify(request(id, strconv.FormatInt(ts, 10), mustSign(t, newSecret, id, ts, body), body))
		if n <= 10 && err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
		if n > 10 && !errors.Is(err, ErrBodyTooLarge) {
			t.Errorf("%d bytes: %v, want ErrBodyTooLarge", n, err)
		}
	}
	if d := mustVerifier(t, []string{newSecret}); d.maxBody != DefaultMaxBodyBytes || d.tolerance != DefaultTolerance {
		t.Fatalf("defaults: max body %d, tolerance %s", d.maxBody, d.tolerance)
	}
}

func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"spec secret", specSecret, true},
		{"padded", newSecret, true},
		{"unpadded", strings.TrimRight(newSecret, "="), true},
		{"white space around", "  " + newSecret + "\n", true},
		{"64 bytes", "whsec_" + strings.Repeat("A", 86) + "==", true},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"no prefix", strings.TrimPrefix(newSecret, "whsec_"), false},
		{"not base64", "whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", false},
		{"23 bytes", "whsec_" + strings.Repeat("A", 31) + "=", false},
		{"65 bytes", "whsec_" + strings.Repeat("A", 87) + "=", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier([]string{tc.secret})
			if tc.ok != (err == nil) {
				t.Fatalf("NewVerifier = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, ErrSecret) {
				t.Fatalf("NewVerifier = %v, want ErrSecret", err)
			}
			if _, err := Sign(tc.secret, "id", 1, nil); tc.ok != (err == nil) {
				t.Fatalf("Sign = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := NewVerifier(nil); !errors.Is(err, ErrNoSecrets) {
		t.Fatalf("no secrets: %v", err)
	}
	_, err := NewVerifier([]string{"bad", newSecret, "whsec_x"})
	if err == nil || !strings.Contains(err.Error(), "secret 0") || !strings.Contains(err.Error(), "secret 2") {
		t.Fatalf("every bad secret should be reported by position: %v", err)
	}
}
