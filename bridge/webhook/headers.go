package webhook

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// Header names of the webhook contract (README.md, "The webhook contract"). HTTP header names
// are case-insensitive; Go sends them in canonical form (Webhook-Id).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	HeaderAttempt          = "hookbridge-attempt"

	HeaderKafkaTopic       = "kafka-topic"
	HeaderKafkaPartition   = "kafka-partition"
	HeaderKafkaOffset      = "kafka-offset"
	HeaderKafkaKey         = "kafka-key"
	HeaderKafkaKeyEncoding = "kafka-key-encoding"
	// HeaderKafkaTombstone, "true", marks a record whose value is null (a
	// tombstone): its body is empty, as that of an empty value, which has
	// no such header.
	HeaderKafkaTombstone = "kafka-tombstone"
	// HeaderKafkaHeaderPrefix starts a forwarded record header:
	// kafka-header-<name>.
	HeaderKafkaHeaderPrefix = "kafka-header-"
	// HeaderKafkaBase64Headers lists, comma-separated, the record header
	// names whose kafka-header-<name> values are all sent as base64 (one
	// of them was not a valid header value). It is outside the
	// kafka-header- prefix, so no record header can pose as it.
	HeaderKafkaBase64Headers = "kafka-base64-headers"
	// EncodingBase64 flags a value sent as standard base64 with padding.
	EncodingBase64 = "base64"

	HeaderCESpecVersion = "ce-specversion"
	HeaderCEID          = "ce-id"
	HeaderCESource      = "ce-source"
	HeaderCEType        = "ce-type"
	HeaderCETime        = "ce-time"
)

// CloudEvents attributes of a record that is not a CloudEvent already.
const (
	// CESpecVersion is the CloudEvents version Hookbridge speaks.
	CESpecVersion = "1.0"
	// CEType is the ce-type of a plain Kafka record.
	CEType = "dev.hookbridge.kafka.record"
	// CESourcePrefix starts the ce-source of a plain Kafka record, a relative
	// URI reference: "/kafka/<topic>".
	CESourcePrefix = "/kafka/"
)

// defaultContentType is sent when a record has no content-type header.
const defaultContentType = "application/octet-stream"

// The contract's header names in the canonical form an http.Header keys them
// by (Webhook-Id): put directly, they cost no canonicalization per request.
var (
	keyUserAgent        = "User-Agent"
	keyContentType      = "Content-Type"
	keyWebhookID        = http.CanonicalHeaderKey(HeaderWebhookID)
	keyWebhookTimestamp = http.CanonicalHeaderKey(HeaderWebhookTimestamp)
	keyWebhookSignature = http.CanonicalHeaderKey(HeaderWebhookSignature)
	keyAttempt          = http.CanonicalHeaderKey(HeaderAttempt)
	keyKafkaTopic       = http.CanonicalHeaderKey(HeaderKafkaTopic)
	keyKafkaPartition   = http.CanonicalHeaderKey(HeaderKafkaPartition)
	keyKafkaOffset      = http.CanonicalHeaderKey(HeaderKafkaOffset)
	keyKafkaKey         = http.CanonicalHeaderKey(HeaderKafkaKey)
	keyKafkaKeyEncoding = http.CanonicalHeaderKey(HeaderKafkaKeyEncoding)
	keyKafkaTombstone   = http.CanonicalHeaderKey(HeaderKafkaTombstone)
	keyKafkaBase64      = http.CanonicalHeaderKey(HeaderKafkaBase64Headers)
	keyCESpecVersion    = http.CanonicalHeaderKey(HeaderCESpecVersion)
	keyCEID             = http.CanonicalHeaderKey(HeaderCEID)
	keyCESource         = http.CanonicalHeaderKey(HeaderCESource)
	keyCEType           = http.CanonicalHeaderKey(HeaderCEType)
	keyCETime           = http.CanonicalHeaderKey(HeaderCETime)
)

// headerRoom is the number of request headers the contract can add to a
// record's request by itself (the ones above, the CloudEvent's subject and
// data content type, traceparent, tracestate, baggage), not counting the
// configured headers and one or two per record header.
const headerRoom = 24

// Record headers the contract maps to request headers of their own; they are
// never repeated as kafka-header-*. Matched case-insensitively, as HTTP would.
const (
	recordContentType = "content-type"
	recordTraceparent = "traceparent"
	recordTracestate  = "tracestate"
	// recordCEPrefix starts a CloudEvents attribute in the Kafka protocol
	// binding (ce_id, ce_source, ...); it goes out as ce-<attribute>.
	recordCEPrefix = "ce_"
	// recordCEDataContentType is datacontenttype written as a ce_ header
	// (the binding's is content-type). The HTTP binding carries it as
	// Content-Type only: CloudEvents receivers refuse a ce-datacontenttype
	// field, an extension named like a core attribute.
	recordCEDataContentType = "ce_datacontenttype"
)

// header builds the request headers of one record (README.md, "The webhook contract") into
// h. ts is the unix time of this attempt in seconds. The configured headers
// go first; the contract's fields are never configured (New refuses their
// names), except that a configured Content-Type is the default for records
// without one (it is not among the configured fields h gets) and a
// configured User-Agent replaces hookbridge/<version>.
func (t *Target) header(ctx context.Context, h headerSink, rec *target.Record, attempt int, ts int64) {
	h.configured(t.headers, t.headerLines)
	if !t.configuredUA {
		h.put(keyUserAgent, t.userAgent)
	}

	id := rec.ID()
	h.put(keyWebhookID, id)
	h.putInt(keyWebhookTimestamp, ts)
	if t.signer != nil {
		h.put(keyWebhookSignature, t.signer.Header(id, ts, rec.Value))
	}
	h.putInt(keyAttempt, int64(max(attempt, 1)))

	h.put(keyKafkaTopic, rec.Topic)
	h.putInt(keyKafkaPartition, int64(rec.Partition))
	h.putInt(keyKafkaOffset, rec.Offset)
	if rec.Key != nil {
		if safeValue(rec.Key) {
			h.putBytes(keyKafkaKey, rec.Key)
		} else {
			h.putBase64(keyKafkaKey, rec.Key)
			h.put(keyKafkaKeyEncoding, EncodingBase64)
		}
	}
	if rec.Value == nil {
		h.put(keyKafkaTombstone, "true")
	}

	// The receiver sees the fields of record headers whose names differ
	// only in case as one; all their values go as base64 when one must.
	// unsafe holds the names with such a value, in lower case, and whether
	// the name is in listed yet: kafka-base64-headers, as first forwarded.
	// (A map, not a list: a record may have thousands of headers.)
	var unsafe map[string]bool
	var listed []string
	if t.forwardHeaders {
		for _, rh := range rec.Headers {
			if !safeValue(rh.Value) {
				if unsafe == nil {
					unsafe = make(map[string]bool)
				}
				unsafe[strings.ToLower(forwardedName(rh.Key))] = false
			}
		}
	}

	var contentType, ceContentType []byte
	var ce map[string]string // CloudEvents attributes the record carries, by name
	for _, rh := range rec.Headers {
		switch {
		case strings.EqualFold(rh.Key, recordContentType):
			contentType = rh.Value // the last one wins, as in Record.Header
		case strings.EqualFold(rh.Key, recordCEDataContentType):
			ceContentType = rh.Value // Content-Type when there is no content-type
		case strings.EqualFold(rh.Key, recordTraceparent), strings.EqualFold(rh.Key, recordTracestate):
			// The trace context of the request is the delivery span's,
			// injected from ctx by the instrumented transport.
		case len(rh.Key) > len(recordCEPrefix) && strings.EqualFold(rh.Key[:len(recordCEPrefix)], recordCEPrefix) &&
			ceAttribute(rh.Key[len(recordCEPrefix):]):
			// (A ce_ header whose rest cannot be an attribute's name is
			// forwarded as any other record header.)
			attr := strings.ToLower(rh.Key[len(recordCEPrefix):])
			if ce == nil {
				ce = make(map[string]string)
			}
			ce[attr] = ceEncode(rh.Value)
		case !t.forwardHeaders:
		default:
			name := forwardedName(rh.Key)
			asBase64 := false
			if unsafe != nil {
				lower := strings.ToLower(name)
				var seen bool
				if seen, asBase64 = unsafe[lower]; asBase64 && !seen {
					unsafe[lower] = true
					listed = append(listed, name[len(HeaderKafkaHeaderPrefix):])
				}
			}
			h.forward(name, rh.Value, asBase64)
		}
	}
	if len(listed) > 0 {
		h.put(keyKafkaBase64, strings.Join(listed, ", "))
	}

	if contentType == nil {
		contentType = ceContentType
	}
	sent := len(contentType) > 0 && safeValue(contentType)
	if sent {
		h.putBytes(keyContentType, contentType)
	} else {
		if len(contentType) > 0 {
			t.log.DebugContext(ctx, "webhook: record content-type is not a valid header value; sending the default", "record", rec.ID())
		}
		h.put(keyContentType, t.contentType) // the configured default, or ours
	}

	if ce == nil && sent && structuredCloudEvent(contentType) {
		// A CloudEvent in structured mode carries its attributes in the
		// body; it goes through as is, with no binary-mode ce-* headers
		// that would claim other attributes. (Not when its content type
		// could not be sent: the request is then in binary mode.)
		return
	}
	t.cloudEvents(h, rec, id, ce)
}

// structuredCloudEvent reports whether a record's content-type says its value
// is a CloudEvent in structured mode (application/cloudevents+json and
// friends; a batch is not one event).
func structuredCloudEvent(ct []byte) bool {
	mt, _, err := mime.ParseMediaType(string(ct))
	return err == nil && strings.HasPrefix(mt, "application/cloudevents+")
}

// cloudEvents sets the ce-* headers of the CloudEvents HTTP binary mode. A
// record that carries ce_* headers (Kafka protocol binding) has each mapped to
// ce-<attribute>; a required attribute it lacks (specversion, id, source,
// type) gets Hookbridge's value. A record without ce_specversion is not a
// CloudEvent, so it also gets ce-time from its timestamp (omitted when the
// record has none: zero, or Kafka's -1).
func (t *Target) cloudEvents(h headerSink, rec *target.Record, id string, ce map[string]string) {
	for attr, v := range ce {
		h.ce(attr, v)
	}
	has := func(attr string) bool { _, ok := ce[attr]; return ok }
	if !has("specversion") {
		h.put(keyCESpecVersion, CESpecVersion)
	}
	if !has("id") {
		h.put(keyCEID, id)
	}
	if !has("source") {
		h.put(keyCESource, t.ceSource(rec.Topic))
	}
	if !has("type") {
		h.put(keyCEType, CEType)
	}
	if !has("specversion") && !has("time") && ceTime(rec.Timestamp) {
		h.putTime(keyCETime, rec.Timestamp)
	}
}

// ceAttribute reports whether name, in lower case, is a CloudEvents
// attribute's name: ASCII letters and digits only. A CloudEvents receiver
// refuses a request with a ce- field of any other name (ce-my-ext), so a
// record header ce_my-ext is forwarded as kafka-header-ce_my-ext instead.
func ceAttribute(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return name != ""
}

// ceTime reports whether a record's timestamp makes a CloudEvents time: not
// when the record has none (zero, or Kafka's -1), nor when it lies past year
// 9999, which RFC 3339 cannot write (a producer that wrote microseconds
// where Kafka expects milliseconds).
func ceTime(ts time.Time) bool {
	return !ts.IsZero() && ts.UnixMilli() >= 0 && ts.UTC().Year() <= 9999
}

// ceSource is the ce-source of a plain record of topic: /kafka/<topic>,
// encoded, made once per topic (see memo.Last).
func (t *Target) ceSource(topic string) string {
	return t.sources.Get(topic, func(topic string) string { return ceEncode([]byte(CESourcePrefix + topic)) })
}

// ceEncode renders a CloudEvents attribute value as the HTTP binding requires:
// space, double quote, percent and every byte outside printable ASCII are
// percent-encoded (of the UTF-8 encoding). Typical values (ids, URIs, types,
// RFC 3339 times) pass unchanged.
func ceEncode(v []byte) string {
	clean := true
	for _, c := range v {
		if !ceLiteral(c) {
			clean = false
			break
		}
	}
	if clean {
		return string(v)
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v) * 3)
	for _, c := range v {
		if ceLiteral(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func ceLiteral(c byte) bool { return c > 0x20 && c < 0x7f && c != '"' && c != '%' }

// safeValue reports whether v can travel as an HTTP header value unchanged and
// arrive byte for byte: valid UTF-8, no control characters (tab included) and
// no leading or trailing space, which HTTP strips. Anything else goes base64.
func safeValue(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return len(v) == 0 || (v[0] != ' ' && v[len(v)-1] != ' ')
}

// validHeaderValue reports whether v is a legal header field value (a
// configured one, or one read from an answer): no control characters other
// than tab.
func validHeaderValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// only thing a header name may be.
// forwardedName is the field a record header named key goes in:
// kafka-header-<key>, with every byte of key that cannot be in a field name
// (not a token byte: a space, a slash, a byte of a non-ASCII letter), and
// '%' itself, written %XX, so that a receiver gets the name back, byte for
// byte but for the case of ASCII letters, by percent-decoding what follows
// the prefix. Most names need no escape and go as they are.
func forwardedName(key string) string {
	for i := 0; i < len(key); i++ {
		if c := key[i]; !tokenByte[c] || c == '%' {
			return escapedName(key)
		}
	}
	return HeaderKafkaHeaderPrefix + key
}

func escapedName(key string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(HeaderKafkaHeaderPrefix)+3*len(key))
	b = append(b, HeaderKafkaHeaderPrefix...)
	for i := 0; i < len(key); i++ {
		if c := key[i]; tokenByte[c] && c != '%' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func validToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// tokenByte tells the bytes of an HTTP token: letters, digits and
// !#$%&'*+-.^_`|~. A table, since every name of every request is checked.
var tokenByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// reservedHeader reports whether a configured header would collide with the
// webhook contract or the HTTP framing; New refuses such names.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	for _, prefix := range []string{"webhook-", "ce-", "kafka-", "hookbridge-"} {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	switch n {
	case "traceparent", "tracestate", "baggage",
		"host", "content-length", "transfer-encoding", "connection", "keep-alive",
		"te", "trailer", "upgrade", "proxy-connection", "expect":
		return true
	}
	return false
}
