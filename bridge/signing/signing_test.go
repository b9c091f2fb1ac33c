package signing

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published test vector of the Standard Webhooks specification.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = int64(1614265330)
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	key, err := ParseSecret(secret)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	return key
}

// newSecret returns a fresh secret of n random bytes.
func newSecret(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

func TestSpecVector(t *testing.T) {
	key := mustKey(t, specSecret)
	if got := Sign(key, specID, specTS, []byte(specBody)); got != specSig {
		t.Fatalf("Sign = %q, want %q", got, specSig)
	}
	s, err := NewSigner([]string{specSecret})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Header(specID, specTS, []byte(specBody)); got != specSig {
		t.Fatalf("Header = %q, want %q", got, specSig)
	}
	now := time.Unix(specTS, 0)
	if err := Verify([][]byte{key}, specID, "1614265330", specSig, []byte(specBody), now, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	key := mustKey(t, specSecret)
	other := mustKey(t, newSecret(t, 32))
	now := time.Unix(specTS, 0)
	body := []byte(specBody)
	tests := []struct {
		name    string
		keys    [][]byte
		id, ts  string
		sig     string
		body    []byte
		now     time.Time
		tol     time.Duration
		wantErr error
	}{
		{"tampered body", [][]byte{key}, specID, "1614265330", specSig, []byte(`{"test": 2432232315}`), now, 0, ErrNoMatch},
		{"tampered id", [][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJeK", "1614265330", specSig, body, now, 0, ErrNoMatch},
		{"tampered timestamp", [][]byte{key}, specID, "1614265331", specSig, body, now, 0, ErrNoMatch},
		{"wrong key", [][]byte{other}, specID, "1614265330", specSig, body, now, 0, ErrNoMatch},
		{"no keys", nil, specID, "1614265330", specSig, body, now, 0, ErrNoSecrets},
		{"empty signature header", [][]byte{key}, specID, "1614265330", "", body, now, 0, ErrNoSignature},
		{"only other versions", [][]byte{key}, specID, "1614265330", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body, now, 0, ErrNoSignature},
		{"signature not base64", [][]byte{key}, specID, "1614265330", "v1,!!!", body, now, 0, ErrNoMatch},
		{"truncated signature", [][]byte{key}, specID, "1614265330", specSig[:20], body, now, 0, ErrNoMatch},
		{"other padding bits", [][]byte{key}, specID, "1614265330", strings.Replace(specSig, "OE=", "OF=", 1), body, now, 0, ErrNoMatch},
		{"timestamp not a number", [][]byte{key}, specID, "yesterday", specSig, body, now, 0, ErrTimestamp},
		{"timestamp missing", [][]byte{key}, specID, "", specSig, body, now, 0, ErrTimestamp},
		{"too old", [][]byte{key}, specID, "1614265330", specSig, body, now.Add(5*time.Minute + time.Second), 0, ErrTimestamp},
		{"too new", [][]byte{key}, specID, "1614265330", specSig, body, now.Add(-5*time.Minute - time.Second), 0, ErrTimestamp},
		{"outside custom tolerance", [][]byte{key}, specID, "1614265330", specSig, body, now.Add(11 * time.Second), 10 * time.Second, ErrTimestamp},
		{"huge timestamp", [][]byte{key}, specID, "9223372036854775807", specSig, body, now, 0, ErrTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.keys, tt.id, tt.ts, tt.sig, tt.body, tt.now, tt.tol)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	key := mustKey(t, specSecret)
	now := time.Unix(specTS, 0)
	for _, d := range []time.Duration{0, 5 * time.Minute, -5 * time.Minute, 299 * time.Second, -299 * time.Second} {
		if err := Verify([][]byte{key}, specID, "1614265330", specSig, []byte(specBody), now.Add(d), 0); err != nil {
			t.Errorf("skew %s: Verify = %v, want nil", d, err)
		}
	}
	if err := Verify([][]byte{key}, specID, "1614265330", specSig, []byte(specBody), now.Add(time.Hour), 2*time.Hour); err != nil {
		t.Errorf("custom tolerance: Verify = %v, want nil", err)
	}
}

func TestVerifyAcceptsAnyMatch(t *testing.T) {
	key := mustKey(t, specSecret)
	now := time.Unix(specTS, 0)
	headers := []string{
		"v1,Ym9ndXM= " + specSig,
		"v2,abc " + specSig,
		"  " + specSig + "  ",
		specSig + " v1,Ym9ndXM=",
	}
	for _, h := range headers {
		if err := Verify([][]byte{key}, specID, "1614265330", h, []byte(specBody), now, 0); err != nil {
			t.Errorf("header %q: Verify = %v, want nil", h, err)
		}
	}
}

func TestRotation(t *testing.T) {
	oldSecret, nextSecret := newSecret(t, 32), newSecret(t, 64)
	s, err := NewSigner([]string{oldSecret, nextSecret})
	if err != nil {
		t.Fatal(err)
	}
	const id = "orders-3-42"
	now := time.Now()
	ts := now.Unix()
	body := []byte("hello")
	header := s.Header(id, ts, body)
	oldKey, nextKey := mustKey(t, oldSecret), mustKey(t, nextSecret)
	if want := Sign(oldKey, id, ts, body) + " " + Sign(nextKey, id, ts, body); header != want {
		t.Fatalf("Header = %q, want %q", header, want)
	}
	tsHeader := strconv.FormatInt(ts, 10)
	for name, keys := range map[string][][]byte{
		"old only": {oldKey},
		"new only": {nextKey},
		"both":     {nextKey, oldKey},
	} {
		if err := Verify(keys, id, tsHeader, header, body, now, 0); err != nil {
			t.Errorf("receiver with %s: Verify = %v, want nil", name, err)
		}
	}
	unrelated := mustKey(t, newSecret(t, 24))
	if err := Verify([][]byte{unrelated}, id, tsHeader, header, body, now, 0); !errors.Is(err, ErrNoMatch) {
		t.Errorf("receiver with an unrelated key: Verify = %v, want ErrNoMatch", err)
	}
}

func TestParseSecret(t *testing.T) {
	raw24 := strings.Repeat("k", 24)
	tests := []struct {
		name    string
		secret  string
		wantLen int // 0 = an error is expected
	}{
		{"spec secret", specSecret, 24},
		{"padded", SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32))), 32},
		{"unpadded", SecretPrefix + base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("a", 32))), 32},
		{"64 bytes", SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 64))), 64},
		{"surrounding white space", " " + specSecret + "\n", 24},
		{"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0},
		{"wrong prefix", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0},
		{"empty", "", 0},
		{"prefix only", SecretPrefix, 0},
		{"url alphabet", SecretPrefix + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw-_-_", 0},
		{"bad padding", SecretPrefix + base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("a", 32))) + "==", 0},
		{"not base64", SecretPrefix + "not base64 at all!!", 0},
		{"23 bytes", SecretPrefix + base64.StdEncoding.EncodeToString([]byte(raw24[:23])), 0},
		{"65 bytes", SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 65))), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseSecret(tt.secret)
			if tt.wantLen == 0 {
				if err == nil {
					t.Fatalf("ParseSecret = %d bytes, want an error", len(key))
				}
				if !errors.Is(err, ErrSecret) {
					t.Errorf("error %v does not wrap ErrSecret", err)
				}
				if body := strings.TrimPrefix(strings.TrimSpace(tt.secret), SecretPrefix); len(body) > 3 && strings.Contains(err.Error(), body) {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if len(key) != tt.wantLen {
				t.Fatalf("key is %d bytes, want %d", len(key), tt.wantLen)
			}
		})
	}
}

func TestNewSigner(t *testing.T) {
	if _, err := NewSigner(nil); !errors.Is(err, ErrNoSecrets) {
		t.Errorf("NewSigner(nil) = %v, want ErrNoSecrets", err)
	}
	const leaked = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"
	_, err := NewSigner([]string{specSecret, leaked, "plain-password"})
	if err == nil {
		t.Fatal("NewSigner accepted bad secrets")
	}
	msg := err.Error()
	for _, want := range []string{"secret 1:", "secret 2:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	for _, secret := range []string{"c2VjcmV0c2VjcmV0c2VjcmV0", "plain-password", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

// A key shorter than MinSecretBytes (nil, what a caller that dropped
// ParseSecret's error holds, or empty) is one anyone may sign with: Verify
// refuses it, with ErrSecret, and never accepts a signature made with it.
func TestVerifyRefusesKeysAnyoneKnows(t *testing.T) {
	const id, tsText = "orders-0-42", "1614265330"
	now := time.Unix(1614265330, 0)
	body := []byte(`{"amount": 1000000}`)

	// What ParseSecret returns for a mistyped secret, as a caller that
	// drops the error holds it.
	parsed, perr := ParseSecret("whsec_not-a-valid-secret")
	if perr == nil {
		t.Fatal("the mistyped secret parsed")
	}

	for name, key := range map[string][]byte{
		"nil key (ParseSecret error dropped)": parsed,
		"empty key":                           {},
		"one-byte key":                        {'a'},
	} {
		// The attacker signs with the same well-known key.
		forged := Sign(key, id, 1614265330, body)
		err := Verify([][]byte{key}, id, tsText, forged, body, now, 0)
		if err == nil {
			t.Errorf("%s: Verify accepted a request forged with a key anyone knows (%q)", name, forged)
			continue
		}
		if !errors.Is(err, ErrSecret) {
			t.Errorf("%s: refused with %v, want ErrSecret", name, err)
		}
	}
}
