package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// Bounds of a decoded secret, in bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// DefaultTolerance is the clock skew Verify allows when it is given none: the
// five minutes the Standard Webhooks specification recommends.
const DefaultTolerance = 5 * time.Minute

// versionPrefix starts every signature this package produces and checks.
const versionPrefix = "v1,"

// Errors returned by ParseSecret, NewSigner and Verify. Test for them with
// errors.Is; the returned errors wrap them with detail.
var (
	// ErrSecret means a secret is malformed. The message never contains the secret.
	ErrSecret = errors.New("signing: invalid secret")
	// ErrNoSecrets means NewSigner was given no secrets, or Verify no keys.
	ErrNoSecrets = errors.New("signing: no secrets")
	// ErrTimestamp means webhook-timestamp is missing, malformed or outside
	// the allowed tolerance.
	ErrTimestamp = errors.New("signing: bad webhook-timestamp")
	// ErrNoSignature means webhook-signature holds no v1 signature at all.
	ErrNoSignature = errors.New("signing: no v1 signature in webhook-signature")
	// ErrNoMatch means no v1 signature in webhook-signature matches any key.
	ErrNoMatch = errors.New("signing: no signature matches")
)

// ParseSecret decodes a "whsec_<base64>" secret into its key. The base64 is the
// standard alphabet, with or without padding; surrounding white space is
// ignored. The key must be 24 to 64 bytes long.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrSecret, SecretPrefix)
	}
	codec := base64.RawStdEncoding
	if strings.HasSuffix(enc, "=") {
		codec = base64.StdEncoding
	}
	key, err := codec.DecodeString(enc)
	if err != nil {
		// The codec's error names only a byte offset, but say less anyway.
		return nil, fmt.Errorf("%w: not standard base64 after %q", ErrSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d to %d", ErrSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// Sign returns the v1 signature of one request:
// "v1," + base64(HMAC-SHA256(key, id + "." + ts + "." + body)).
func Sign(key []byte, id string, ts int64, body []byte) string {
	return versionPrefix + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(ts, 10), body))
}

// mac computes the raw HMAC-SHA256 over id.ts.body without joining them first.
func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Signer signs requests with one or more secrets. It is safe for concurrent use.
type Signer struct {
	keys [][]byte
}

// NewSigner parses secrets (see ParseSecret). Every secret signs, so a rotation
// lists the old and the new secret until receivers have switched. It reports
// every malformed secret, by position, at once.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	s := &Signer{keys: make([][]byte, 0, len(secrets))}
	var errs []error
	for i, secret := range secrets {
		key, err := ParseSecret(secret)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %d: %w", i, err))
			continue
		}
		s.keys = append(s.keys, key)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Header returns the value of webhook-signature for one request: one v1
// signature per secret, in the order the secrets were given, separated by a
// space.
func (s *Signer) Header(id string, ts int64, body []byte) string {
	var b strings.Builder
	tsText := strconv.FormatInt(ts, 10)
	for i, key := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(versionPrefix)
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, id, tsText, body)))
	}
	return b.String()
}

// Verify checks a request as a Standard Webhooks receiver does. id, tsHeader and
// sigHeader are the values of webhook-id, webhook-timestamp and
// webhook-signature; body is the raw request body.
//
// The timestamp must be a decimal unix time within tolerance of now, in either
// direction (tolerance <= 0 means DefaultTolerance). Every key must have at
// least MinSecretBytes bytes, or Verify refuses (ErrSecret) whatever the
// request: a shorter key, or none, is one anyone may sign with. The request is accepted
// when any v1 signature in sigHeader matches any key; signatures of other
// versions are ignored. Signatures are compared in constant time.
func Verify(keys [][]byte, id, tsHeader, sigHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(keys) == 0 {
		return ErrNoSecrets
	}
	for i, key := range keys {
		// A key shorter than a secret's is one anyone may know (nil is what
		// a caller that dropped ParseSecret's error holds): fail closed.
		if len(key) < MinSecretBytes {
			return fmt.Errorf("%w: key %d has %d bytes, want at least %d", ErrSecret, i, len(key), MinSecretBytes)
		}
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not a unix time in seconds", ErrTimestamp, tsHeader)
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %d is %s away from now, tolerance %s", ErrTimestamp, ts, skew.Abs().Truncate(time.Second), tolerance)
	}

	want := make([][]byte, len(keys))
	for i, key := range keys {
		want[i] = mac(key, id, tsHeader, body)
	}
	seen := false
	for _, field := range strings.Fields(sigHeader) {
		enc, ok := strings.CutPrefix(field, versionPrefix)
		if !ok {
			continue
		}
		seen = true
		// Strict: the last character of a signature carries two bits
		// that are not part of it, and without Strict any value of them
		// decodes to the same bytes, so that four signature strings would
		// pass for the one Sign gives.
		got, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) {
				return nil
			}
		}
	}
	if !seen {
		return ErrNoSignature
	}
	return ErrNoMatch
}
