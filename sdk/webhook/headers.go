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
	// HeaderKafkaHeaderPrefix starts a forwarded record header:
	// kafka-header-<name>. A value sent as base64 is flagged by
	// kafka-header-<name>-encoding: base64.
	HeaderKafkaHeaderPrefix = "kafka-header-"

	// HeaderCEPrefix starts a CloudEvents attribute in binary mode (ce-id,
	// ce-source, ...).
	HeaderCEPrefix = "ce-"
)

// BatchContentType is the Content-Type of a batch request.
const BatchContentType = "application/cloudevents-batch+json"

// encodingSuffix flags the encoding of the header it is appended to;
// encodingBase64 is the only encoding the bridge uses (standard, padded).
const (
	encodingSuffix = "-encoding"
	encodingBase64 = "base64"
)
