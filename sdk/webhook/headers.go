package webhook

// Header names of the webhook contract. HTTP header names are
// case-insensitive; these are the spellings of the contract.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	HeaderAttempt   = "hookbridge-attempt"
	// HeaderBatchSize carries the number of events in a batch request.
	HeaderBatchSize = "hookbridge-batch-size"

	HeaderKafkaTopic       = "kafka-topic"
	HeaderKafkaPartition   = "kafka-partition"
	HeaderKafkaOffset      = "kafka-offset"
	HeaderKafkaKey         = "kafka-key"
	HeaderKafkaKeyEncoding = "kafka-key-encoding"
	// HeaderKafkaTombstone is "true" on the request of a record whose value
	// is null (a tombstone); a record with an empty value has none.
	HeaderKafkaTombstone = "kafka-tombstone"
	// HeaderKafkaHeaderPrefix starts a forwarded record header:
	// kafka-header-<name>.
	HeaderKafkaHeaderPrefix = "kafka-header-"
	// HeaderKafkaBase64Headers lists, comma-separated, the record header
	// names whose kafka-header-<name> values are all base64.
	HeaderKafkaBase64Headers = "kafka-base64-headers"

	// HeaderCEPrefix starts a CloudEvents attribute in binary mode (ce-id,
	// ce-source, ...).
	HeaderCEPrefix = "ce-"
)

// BatchContentType is the Content-Type of a batch request.
const BatchContentType = "application/cloudevents-batch+json"

// encodingBase64 is the only encoding the bridge uses (standard, padded).
const encodingBase64 = "base64"
