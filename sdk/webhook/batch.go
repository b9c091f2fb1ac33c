package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Event is one record of a batch request: a structured CloudEvent with the
// Kafka coordinates as the extensions topic, partition, offset and key.
type Event struct {
	// CloudEvent holds specversion, id, source, type, time and every
	// extension other than the Kafka coordinates. Its ID is the record's
	// webhook-id unless the record carried a ce_id header of its own.
	CloudEvent CloudEvent
	// Topic, Partition and Offset are the record's Kafka coordinates.
	Topic     string
	Partition int32
	Offset    int64
	// Key is the record key, decoded from base64 when keyencoding says so;
	// nil for a null key.
	Key []byte
	// DataContentType is the record's content type ("" when it had none).
	DataContentType string
	// Data is the record value: the JSON of data as the batch carries it (the
	// record's bytes as they are, but for white space around the value,
	// which JSON does not keep: equal as JSON, not always byte for byte), or
	// data_base64 decoded; nil when the event has neither (a null or empty
	// value: Tombstone tells which).
	Data []byte
	// Tombstone reports a record whose value is null (the tombstone
	// extension), not empty.
	Tombstone bool
}

// RecordID is the record's webhook-id, "<topic>-<partition>-<offset>": the
// idempotency key, and the id to name in a BatchResult.
func (e *Event) RecordID() string {
	return recordID(e.Topic, e.Partition, e.Offset)
}

func recordID(topic string, partition int32, offset int64) string {
	return topic + "-" + strconv.FormatInt(int64(partition), 10) + "-" + strconv.FormatInt(offset, 10)
}

// IsBatch reports whether a request is a batch: its Content-Type is
// application/cloudevents-batch+json and it has a hookbridge-batch-size
// header. The Content-Type alone does not tell: a single record's request
// carries the record's own content-type header, which may be that one.
func IsBatch(h http.Header) bool {
	if h.Get(HeaderBatchSize) == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == BatchContentType
}

// DecodeBatch decodes the verified body of a batch request into its events,
// in the order the bridge sent them. It fails with ErrDecode when the body is
// not a JSON array of objects or an event lacks its Kafka coordinates.
func DecodeBatch(body []byte) ([]Event, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: batch body is not a JSON array of objects: %v", ErrDecode, err)
	}
	out := make([]Event, len(raw))
	for i, m := range raw {
		if err := out[i].decode(m); err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrDecode, i, err)
		}
	}
	return out, nil
}

// decode fills e from one event object.
func (e *Event) decode(m map[string]json.RawMessage) error {
	str := func(name string) (string, bool, error) {
		v, ok := m[name]
		if !ok || bytes.Equal(v, []byte("null")) {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("%s is not a string", name)
		}
		return s, true, nil
	}
	var err error
	var ok bool
	if e.Topic, ok, err = str("topic"); err != nil {
		return err
	} else if !ok || e.Topic == "" {
		return fmt.Errorf("topic is missing")
	}
	var p int32
	if v, ok := m["partition"]; !ok || json.Unmarshal(v, &p) != nil || p < 0 {
		return fmt.Errorf("partition is missing or not a partition number")
	}
	e.Partition = p
	var o int64
	if v, ok := m["offset"]; !ok || json.Unmarshal(v, &o) != nil || o < 0 {
		return fmt.Errorf("offset is missing or not an offset")
	}
	e.Offset = o

	key, hasKey, err := str("key")
	if err != nil {
		return err
	}
	encoding, _, err := str("keyencoding")
	if err != nil {
		return err
	}
	if hasKey {
		if e.Key, err = decodeValue(key, encoding); err != nil {
			return fmt.Errorf("key: %v", err)
		}
	}
	if e.DataContentType, _, err = str("datacontenttype"); err != nil {
		return err
	}
	if d, ok := m["data"]; ok {
		e.Data = []byte(d)
	}
	if b64, ok, err := str("data_base64"); err != nil {
		return err
	} else if ok {
		if e.Data != nil {
			return fmt.Errorf("both data and data_base64")
		}
		if e.Data, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return fmt.Errorf("data_base64 is not standard base64")
		}
	}

	for name, v := range m {
		switch name {
		case "topic", "partition", "offset", "key", "keyencoding", "datacontenttype", "data", "data_base64":
			continue
		case "tombstone":
			if bytes.Equal(v, []byte("true")) {
				e.Tombstone = true
				continue
			}
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v) // a non-string extension keeps its JSON text
		}
		e.CloudEvent.set(name, s)
	}
	return nil
}

// BatchResult is the answer to a batch request: {"failed": [ids]}. The
// bridge retries exactly the records named (by webhook-id, see
// Event.RecordID) and takes every other record of the batch as delivered.
// The zero value means every record was handled.
type BatchResult struct {
	Failed []string `json:"failed"`
}

// Fail names the record of e as failed.
func (r *BatchResult) Fail(e *Event) { r.Failed = append(r.Failed, e.RecordID()) }

// FailID names a record as failed by its webhook-id.
func (r *BatchResult) FailID(id string) { r.Failed = append(r.Failed, id) }

// MarshalJSON writes {"failed": [...]}, an empty array when nothing failed.
func (r BatchResult) MarshalJSON() ([]byte, error) {
	failed := r.Failed
	if failed == nil {
		failed = []string{}
	}
	return json.Marshal(struct {
		Failed []string `json:"failed"`
	}{failed})
}

// Write answers the batch request: 200 with the JSON of r.
func (r *BatchResult) Write(w http.ResponseWriter) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// delivery turns an event of the batch request h into a Delivery.
func (e *Event) delivery(h http.Header) *Delivery {
	d := &Delivery{
		ID:          e.RecordID(),
		Topic:       e.Topic,
		Partition:   e.Partition,
		Offset:      e.Offset,
		Key:         e.Key,
		ContentType: e.DataContentType,
		Body:        e.Data,
		Tombstone:   e.Tombstone,
		Attempt:     1,
		CloudEvent:  e.CloudEvent,
		BatchID:     h.Get(HeaderID),
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get(HeaderAttempt))); err == nil && n > 0 {
		d.Attempt = n
	}
	if ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64); err == nil {
		d.Timestamp = time.Unix(ts, 0)
	}
	return d
}
