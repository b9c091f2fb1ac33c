package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrDecode means a verified request does not carry the webhook contract's
// headers (or batch body) in a form this package understands.
var ErrDecode = errors.New("webhook: malformed request")

// Delivery is one Kafka record as a receiver gets it. In single-record mode
// it is decoded from one request (DecodeDelivery); Handler also makes one per
// event of a batch.
type Delivery struct {
	// ID is the record's webhook-id, "<topic>-<partition>-<offset>": the same
	// on every retry and redelivery, so it is the idempotency key.
	ID string
	// Topic, Partition and Offset are the record's Kafka coordinates.
	Topic     string
	Partition int32
	Offset    int64
	// Key is the record key, decoded from base64 when it was sent so; nil for
	// a null key.
	Key []byte
	// Headers are the record's own headers (kafka-header-*), decoded, in the
	// order of their names (values of one name in order). Names are lower
	// case: HTTP does not keep their case. Empty in batch mode, which does
	// not carry them.
	Headers []Header
	// ContentType is the request's Content-Type in single-record mode (the
	// record's content-type header, else its ce_datacontenttype, else
	// application/octet-stream), the
	// event's datacontenttype in batch mode.
	ContentType string
	// Body is the record value: the request body in single-record mode, the
	// event's data (JSON, as the batch carries it) or decoded data_base64 in
	// batch mode; nil when the event has neither.
	Body []byte
	// Tombstone reports a record whose value is null (kafka-tombstone in
	// single-record mode, the event's tombstone extension in batch mode), a
	// delete in a compacted topic: its Body is empty, as that of a record
	// whose value is empty, for which Tombstone is false.
	Tombstone bool
	// Attempt is hookbridge-attempt, from 1 (in batch mode, the highest
	// attempt of the batch's records).
	Attempt int
	// Timestamp is webhook-timestamp: when this attempt was sent.
	Timestamp time.Time
	// CloudEvent holds the CloudEvents attributes of the record. It is empty
	// in single-record mode for a record in structured mode (content type
	// application/cloudevents+json), whose attributes are in Body; a batch
	// gives it the bridge's values, as to a plain record.
	CloudEvent CloudEvent
	// BatchID is the webhook-id of the batch request that carried the record;
	// empty in single-record mode.
	BatchID string
}

// Header is one Kafka record header. Names may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Header returns the value of the last record header named key (compared
// case-insensitively) and whether there is one.
func (d *Delivery) Header(key string) ([]byte, bool) {
	for i := len(d.Headers) - 1; i >= 0; i-- {
		if strings.EqualFold(d.Headers[i].Key, key) {
			return d.Headers[i].Value, true
		}
	}
	return nil, false
}

// CloudEvent holds the CloudEvents attributes of a record: the ce-* headers
// in single-record mode (values percent-decoded), the event's attributes in
// batch mode. A plain Kafka record gets the bridge's values (id = the
// webhook-id, source "/kafka/<topic>", type "dev.hookbridge.kafka.record",
// time = the record timestamp); a record that carried CloudEvents headers of
// its own (ce_*) keeps its attributes.
type CloudEvent struct {
	SpecVersion string
	ID          string
	Source      string
	Type        string
	// Time is the time attribute; zero when absent or not RFC 3339.
	Time time.Time
	// Extensions are every other attribute (subject, dataschema, a
	// producer's own extensions), by lower-case name.
	Extensions map[string]string
}

// DecodeDelivery decodes a single-record request into a Delivery. h is the
// request's header and body its verified body (from Verify). It fails with
// ErrDecode when a Kafka coordinate or an encoded value is malformed; it does
// not verify anything.
func DecodeDelivery(h http.Header, body []byte) (*Delivery, error) {
	d := &Delivery{
		ID:          h.Get(HeaderID),
		Topic:       h.Get(HeaderKafkaTopic),
		ContentType: h.Get("Content-Type"),
		Body:        body,
		Attempt:     1,
	}
	var errs []string
	if d.ID == "" {
		errs = append(errs, HeaderID+" is missing")
	}
	if d.Topic == "" {
		errs = append(errs, HeaderKafkaTopic+" is missing")
	}
	if p, err := strconv.ParseInt(h.Get(HeaderKafkaPartition), 10, 32); err != nil || p < 0 {
		errs = append(errs, fmt.Sprintf("%s %q is not a partition", HeaderKafkaPartition, h.Get(HeaderKafkaPartition)))
	} else {
		d.Partition = int32(p)
	}
	if o, err := strconv.ParseInt(h.Get(HeaderKafkaOffset), 10, 64); err != nil || o < 0 {
		errs = append(errs, fmt.Sprintf("%s %q is not an offset", HeaderKafkaOffset, h.Get(HeaderKafkaOffset)))
	} else {
		d.Offset = o
	}
	if a := h.Get(HeaderAttempt); a != "" {
		if n, err := strconv.Atoi(a); err == nil && n > 0 {
			d.Attempt = n
		}
	}
	if ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64); err == nil {
		d.Timestamp = time.Unix(ts, 0)
	}
	d.Tombstone = strings.EqualFold(strings.TrimSpace(h.Get(HeaderKafkaTombstone)), "true")
	if vs, ok := h[http.CanonicalHeaderKey(HeaderKafkaKey)]; ok && len(vs) > 0 {
		key, err := decodeValue(vs[0], h.Get(HeaderKafkaKeyEncoding))
		if err != nil {
			errs = append(errs, HeaderKafkaKey+": "+err.Error())
		}
		d.Key = key
	}

	var err error
	if d.Headers, err = recordHeaders(h); err != nil {
		errs = append(errs, err.Error())
	}
	d.CloudEvent = cloudEventFromHeaders(h)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDecode, strings.Join(errs, "; "))
	}
	return d, nil
}

// decodeValue returns a header value as bytes, decoding base64 when the
// encoding flag says so. A present but empty value is an empty, non-nil
// slice.
func decodeValue(v, encoding string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "":
		return []byte(v), nil
	case encodingBase64:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, errors.New("value is not standard base64")
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
}

// recordHeaders decodes kafka-header-<name>, from base64 for the names that
// kafka-base64-headers lists. Names are compared in lower case, as HTTP
// compares them, then percent-decoded: the bridge writes a byte that cannot
// be in a field name, and '%', as %XX. An empty element of the list is the
// empty name: a record header named "" is sent as kafka-header-, and listed
// as "" (the whole value, when it is the only one).
func recordHeaders(h http.Header) ([]Header, error) {
	encoded := map[string]bool{}
	for _, list := range h.Values(HeaderKafkaBase64Headers) {
		for name := range strings.SplitSeq(list, ",") {
			encoded[strings.ToLower(strings.TrimSpace(name))] = true
		}
	}
	byName := map[string][]string{}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), HeaderKafkaHeaderPrefix); ok {
			byName[name] = append(byName[name], vs...)
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	var out []Header
	var bad []string
	for _, name := range names {
		enc := ""
		if encoded[name] {
			enc = encodingBase64
		}
		key, err := url.PathUnescape(name)
		if err != nil {
			bad = append(bad, HeaderKafkaHeaderPrefix+name)
			continue
		}
		for _, v := range byName[name] {
			b, err := decodeValue(v, enc)
			if err != nil {
				bad = append(bad, HeaderKafkaHeaderPrefix+name)
				continue
			}
			out = append(out, Header{Key: key, Value: b})
		}
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s: not standard base64, or a name that does not percent-decode", strings.Join(slices.Compact(bad), ", "))
	}
	return out, nil
}

// cloudEventFromHeaders collects the ce-* headers (binary content mode),
// percent-decoding their values as the CloudEvents HTTP binding asks.
func cloudEventFromHeaders(h http.Header) CloudEvent {
	var ce CloudEvent
	for k, vs := range h {
		attr, ok := strings.CutPrefix(strings.ToLower(k), HeaderCEPrefix)
		if !ok || attr == "" || len(vs) == 0 {
			continue
		}
		v := vs[0]
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		ce.set(attr, v)
	}
	return ce
}

// set stores one attribute by its lower-case name.
func (ce *CloudEvent) set(attr, v string) {
	switch attr {
	case "specversion":
		ce.SpecVersion = v
	case "id":
		ce.ID = v
	case "source":
		ce.Source = v
	case "type":
		ce.Type = v
	case "time":
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			ce.Time = t
		}
	default:
		if ce.Extensions == nil {
			ce.Extensions = map[string]string{}
		}
		ce.Extensions[attr] = v
	}
}
