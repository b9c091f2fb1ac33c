package signing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// FuzzParseSecret parses arbitrary secrets: a key of 24 to 64 bytes that
// parses again from its own standard encoding, or an error that wraps
// ErrSecret and says nothing of the secret.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{
		specSecret, " " + specSecret + "\n", "whsec_", "whsec_=", "whsec_====", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		SecretPrefix + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte("a"), 32)) + "==",
		SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("a"), 64)),
		SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("a"), 65)),
		SecretPrefix + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw-_-_", SecretPrefix + "MfKQ9r8G\nKYqrTwjUPD8ILPZIo2LaLaSw",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		key, err := ParseSecret(secret)
		if err != nil {
			if !errors.Is(err, ErrSecret) {
				t.Fatalf("error %v does not wrap ErrSecret", err)
			}
			// Fixed text and lengths only: nothing of the secret.
			if !secretError.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of ParseSecret's", err)
			}
			return
		}
		if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
			t.Fatalf("a key of %d bytes", len(key))
		}
		again, err := ParseSecret(SecretPrefix + base64.StdEncoding.EncodeToString(key))
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("the key's own encoding parses as %x, %v; want %x", again, err, key)
		}
	})
}

// secretError is what ParseSecret's errors say.
var secretError = regexp.MustCompile(`^signing: invalid secret: (does not start with "whsec_"|not standard base64 after "whsec_"|decodes to \d+ bytes, want 24 to 64)$`)

// FuzzSignVerify signs arbitrary requests: Verify accepts the signature
// Signer.Header and Sign give, with the timestamp as sent, and refuses the
// request once any byte of its id, timestamp, signature or body differs.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte("0123456789abcdef01234567"), specID, specTS, []byte(specBody), uint16(0), byte(1))
	f.Add(bytes.Repeat([]byte{0xff}, 64), "", int64(-1), []byte{}, uint16(7), byte(0x80))
	f.Add([]byte("short"), "a.b", int64(0), []byte("1.2"), uint16(2), byte(0x20))
	f.Add(bytes.Repeat([]byte{0}, 80), "id with spaces\r\n", int64(1<<62), []byte{0, 1, 2}, uint16(181), byte(3))
	f.Fuzz(func(t *testing.T, key []byte, id string, ts int64, body []byte, where uint16, flip byte) {
		// Make key a key ParseSecret gives: 24 to 64 bytes.
		if len(key) < MinSecretBytes {
			key = append(key, make([]byte, MinSecretBytes-len(key))...)
		}
		key = key[:min(len(key), MaxSecretBytes)]
		s, err := NewSigner([]string{SecretPrefix + base64.StdEncoding.EncodeToString(key)})
		if err != nil {
			t.Fatal(err)
		}
		sig := s.Header(id, ts, body)
		if one := Sign(key, id, ts, body); one != sig {
			t.Fatalf("Sign gives %q, Header %q", one, sig)
		}
		tsText := strconv.FormatInt(ts, 10)
		now := time.Unix(ts, 0)
		keys := [][]byte{key}
		if err := Verify(keys, id, tsText, sig, body, now, 0); err != nil {
			t.Fatalf("Verify refuses the signed request: %v", err)
		}

		// One byte changed, at where in one of the four parts.
		if flip == 0 {
			flip = 1
		}
		parts := [][]byte{[]byte(id), []byte(tsText), []byte(sig), bytes.Clone(body)}
		p := parts[int(where)%len(parts)]
		if len(p) == 0 {
			return
		}
		p[int(where)/len(parts)%len(p)] ^= flip
		if err := Verify(keys, string(parts[0]), string(parts[1]), string(parts[2]), parts[3], now, 0); err == nil {
			t.Fatalf("Verify accepts id %q, timestamp %q, signature %q, body %q; signed: %q, %q, %q, %q",
				parts[0], parts[1], parts[2], parts[3], id, tsText, sig, body)
		}
	})
}
