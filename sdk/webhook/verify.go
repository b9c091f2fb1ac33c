package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks secret: "whsec_" followed by the
// standard base64 encoding of 24 to 64 random bytes.
const SecretPrefix = "whsec_"

// Bounds of a decoded secret, in bytes (the Standard Webhooks recommendation,
// and what the bridge accepts).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// DefaultTolerance is how far webhook-timestamp may be from now, either way,
// unless WithTolerance says otherwise: the five minutes the Standard Webhooks
// specification recommends.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes is the largest body Verify reads unless
// WithMaxBodyBytes says otherwise. A batch of the bridge's default size
// (batch.max_bytes 1 MiB of records, base64 where they are not JSON) fits.
const DefaultMaxBodyBytes = 4 << 20

// signaturePrefix starts every v1 signature.
const signaturePrefix = "v1,"

// Errors of NewVerifier, Verify and Sign. Test for them with errors.Is; the
// returned errors wrap them with detail. No error contains a secret.
var (
	// ErrSecret means a secret is malformed.
	ErrSecret = errors.New("webhook: invalid secret")
	// ErrNoSecrets means NewVerifier was given no secret.
	ErrNoSecrets = errors.New("webhook: no secrets")
	// ErrMissingHeader means webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeader = errors.New("webhook: missing header")
	// ErrTimestamp means webhook-timestamp is not a unix time in seconds or is
	// further from now than the tolerance: a stale or replayed request.
	ErrTimestamp = errors.New("webhook: bad webhook-timestamp")
	// ErrSignature means no v1 signature in webhook-signature matches any
	// secret (or there is none).
	ErrSignature = errors.New("webhook: no matching signature")
	// ErrBodyTooLarge means the body is longer than the verifier's cap.
	ErrBodyTooLarge = errors.New("webhook: body too large")
)

// Verifier checks Standard Webhooks signatures. It is safe for concurrent use
// and holds no resources.
type Verifier struct {
	keys      [][]byte
	tolerance time.Duration
	maxBody   int64
	now       func() time.Time
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithTolerance sets how far webhook-timestamp may be from now, either way.
// Zero or less keeps DefaultTolerance.
func WithTolerance(d time.Duration) Option {
	return func(v *Verifier) {
		if d > 0 {
			v.tolerance = d
		}
	}
}

// WithMaxBodyBytes caps the body Verify reads; a longer body fails with
// ErrBodyTooLarge. Zero or less keeps DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(v *Verifier) {
		if n > 0 {
			v.maxBody = n
		}
	}
}

// WithClock replaces time.Now as the clock timestamps are checked against,
// for tests.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// NewVerifier parses one or more secrets ("whsec_" + base64 of 24 to 64
// bytes). A request is accepted when any of its signatures matches any
// secret, so during a rotation list both the old and the new secret (the
// bridge signs with both). Every malformed secret is reported, by position.
func NewVerifier(secrets []string, opts ...Option) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	v := &Verifier{tolerance: DefaultTolerance, maxBody: DefaultMaxBodyBytes, now: time.Now}
	var errs []error
	for i, s := range secrets {
		key, err := parseSecret(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %d: %w", i, err))
			continue
		}
		v.keys = append(v.keys, key)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// parseSecret decodes "whsec_<base64>" (standard alphabet, padding optional,
// surrounding white space ignored) into its key.
func parseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrSecret, SecretPrefix)
	}
	codec := base64.RawStdEncoding
	if strings.HasSuffix(enc, "=") {
		codec = base64.StdEncoding
	}
	key, err := codec.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64 after %q", ErrSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d to %d", ErrSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// Verify reads the body of r (at most the verifier's cap) and checks its
// signature. It returns the body, and also puts it back as r.Body so that
// the request can be read again. The checks, in order: webhook-id,
// webhook-timestamp and webhook-signature are present (ErrMissingHeader);
// the timestamp is within the tolerance of now (ErrTimestamp); the body fits
// the cap (ErrBodyTooLarge); some v1 signature matches some secret
// (ErrSignature). A request that fails must not be acted on: answer it 401,
// which the bridge retries, counting it against its breaker (its signature
// is refused, not the record), or 413 for ErrBodyTooLarge, which is
// permanent.
func (v *Verifier) Verify(r *http.Request) ([]byte, error) {
	id, ts, sig := r.Header.Get(HeaderID), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if err := v.checkHeaders(id, ts, sig); err != nil {
		return nil, err
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	limit := v.maxBody
	if limit < math.MaxInt64 {
		limit++ // one byte past the cap tells a longer body
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("webhook: reading the body: %w", err)
	}
	if int64(len(body)) > v.maxBody {
		return nil, fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, v.maxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.checkSignature(id, ts, sig, body); err != nil {
		return nil, err
	}
	return body, nil
}

// VerifyPayload checks a request whose headers and body were read some other
// way: id, timestamp and signature are the values of webhook-id,
// webhook-timestamp and webhook-signature. The body cap does not apply.
func (v *Verifier) VerifyPayload(id, timestamp, signature string, body []byte) error {
	if err := v.checkHeaders(id, timestamp, signature); err != nil {
		return err
	}
	return v.checkSignature(id, timestamp, signature, body)
}

func (v *Verifier) checkHeaders(id, ts, sig string) error {
	var missing []string
	for _, h := range [...]struct{ name, value string }{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sig}} {
		if strings.TrimSpace(h.value) == "" {
			missing = append(missing, h.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeader, strings.Join(missing, ", "))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not a unix time in seconds", ErrTimestamp, ts)
	}
	if skew := v.now().Sub(time.Unix(sec, 0)); skew > v.tolerance || skew < -v.tolerance {
		away := skew.Abs().Truncate(time.Second)
		if away <= v.tolerance { // off by less than a second more: say by how much
			away = skew.Abs()
		}
		return fmt.Errorf("%w: %d is %s away from now, tolerance %s", ErrTimestamp, sec, away, v.tolerance)
	}
	return nil
}

// checkSignature accepts when any v1 signature in sig matches any key.
// Signatures of other versions are ignored; every comparison is constant
// time.
func (v *Verifier) checkSignature(id, ts, sig string, body []byte) error {
	want := make([][]byte, len(v.keys))
	for i, key := range v.keys {
		want[i] = mac(key, id, ts, body)
	}
	for field := range strings.FieldsSeq(sig) {
		enc, ok := strings.CutPrefix(field, signaturePrefix)
		if !ok {
			continue
		}
		// Strict, as bridge/signing.Verify: without it the two bits of the
		// last character that are not part of the signature may take any
		// value, and four signature strings pass for the one the bridge sent.
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
	return ErrSignature
}

// mac is HMAC-SHA256(key, id + "." + ts + "." + body).
func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature value the bridge would send for one
// request signed with secret: "v1," + base64(HMAC-SHA256(key, id + "." +
// timestamp + "." + body)). It is meant for tests of a receiver; join the
// results of several secrets with a space to imitate a rotation.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := parseSecret(secret)
	if err != nil {
		return "", err
	}
	return signaturePrefix + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp, 10), body)), nil
}
