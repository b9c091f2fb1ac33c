package telemetry

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
)

// Every span attribute key, span name and span event name the bridge writes
// lives in this file. The messaging keys follow the OpenTelemetry messaging
// semantic conventions (status "Development" at the time of writing): when
// they change, they change here. docs/tracing.md lists them for operators.

// ScopeName is the instrumentation scope of every span the bridge starts.
const ScopeName = "github.com/hookbridge/hookbridge"

// Resource attribute keys.
const (
	KeyServiceName    = attribute.Key("service.name")
	KeyServiceVersion = attribute.Key("service.version")
)

// Messaging semantic-convention attribute keys.
const (
	KeyMessagingSystem            = attribute.Key("messaging.system")
	KeyMessagingOperationType     = attribute.Key("messaging.operation.type")
	KeyMessagingOperationName     = attribute.Key("messaging.operation.name")
	KeyMessagingDestinationName   = attribute.Key("messaging.destination.name")
	KeyMessagingConsumerGroupName = attribute.Key("messaging.consumer.group.name")
	KeyMessagingPartitionID       = attribute.Key("messaging.destination.partition.id") // a string
	KeyMessagingKafkaOffset       = attribute.Key("messaging.kafka.offset")             // an int
	KeyMessagingKafkaMessageKey   = attribute.Key("messaging.kafka.message.key")        // absent for a null key
	KeyMessagingMessageID         = attribute.Key("messaging.message.id")
	KeyMessagingMessageBodySize   = attribute.Key("messaging.message.body.size")
	KeyExceptionMessage           = attribute.Key("exception.message")
	// KeyErrorType is the semantic conventions' error.type, on a span whose
	// operation failed: a low-cardinality name of the failure.
	KeyErrorType = attribute.Key("error.type")
)

// Values of the messaging attributes.
const (
	MessagingSystemKafka          = "kafka"
	MessagingOperationTypeProcess = "process"
	MessagingOperationTypeSend    = "send"
	MessagingOperationNameProcess = "process"
	MessagingOperationNameSend    = "send"
	keyEncodingBase64             = "base64"
)

// Hookbridge's own attribute keys.
const (
	KeyRoute         = attribute.Key("hookbridge.route")
	KeyWebhookID     = attribute.Key("hookbridge.webhook.id")   // = messaging.message.id
	KeyAttempt       = attribute.Key("hookbridge.attempt")      // attempt span, retry event: 1, 2, ...
	KeyAttempts      = attribute.Key("hookbridge.attempts")     // process span: the attempt that delivered it, or the attempts a dead-lettered record spent
	KeyOutcome       = attribute.Key("hookbridge.outcome")      // process span: see Outcome*
	KeyErrorKind     = attribute.Key("hookbridge.error.kind")   // retryable | permanent | gone | canceled
	KeyErrorStatus   = attribute.Key("hookbridge.error.status") // HTTP status of a failure, when there was one
	KeyRetryWait     = attribute.Key("hookbridge.retry.wait")   // seconds (a double) before the next attempt
	KeyKeyEncoding   = attribute.Key("hookbridge.kafka.message.key.encoding")
	KeyBreakerTarget = attribute.Key("hookbridge.breaker.target")
	KeyBreakerState  = attribute.Key("hookbridge.breaker.state")
	KeyBatchID       = attribute.Key("hookbridge.batch.id")   // deliver (batch mode): the webhook-id of the batch request
	KeyBatchSize     = attribute.Key("hookbridge.batch.size") // deliver (batch mode): records in that request
)

// Values of hookbridge.outcome on the process span.
const (
	OutcomeDelivered    = "delivered"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeAbandoned    = "abandoned"
)

// Span name prefixes: "process <topic>", "send <topic>", "deliver <route>".
const (
	SpanProcessPrefix = "process "
	SpanSendPrefix    = "send "
	SpanAttemptPrefix = "deliver "
)

// Span event names, added to the process span.
const (
	EventRetry        = "retry"
	EventDelivered    = "delivered"
	EventDeadLettered = "dead_lettered"
	EventStuck        = "stuck"
	EventUnstuck      = "unstuck"
	EventBreakerWait  = "breaker_wait"
)

// ProcessAttrs are the attributes of the process span of one consumed record.
func ProcessAttrs(route, group, topic string, partition int32, offset int64, key []byte, valueSize int, id string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 14)
	attrs = append(attrs,
		KeyMessagingSystem.String(MessagingSystemKafka),
		KeyMessagingOperationType.String(MessagingOperationTypeProcess),
		KeyMessagingOperationName.String(MessagingOperationNameProcess),
		KeyMessagingDestinationName.String(topic),
		KeyMessagingConsumerGroupName.String(group),
		KeyMessagingPartitionID.String(strconv.FormatInt(int64(partition), 10)),
		KeyMessagingKafkaOffset.Int64(offset),
		KeyMessagingMessageID.String(id),
		KeyMessagingMessageBodySize.Int(valueSize),
		KeyRoute.String(route),
		KeyWebhookID.String(id),
	)
	return append(attrs, KeyAttrs(key)...)
}

// SendAttrs are the attributes of the producer span of one produced record,
// known before it is sent.
func SendAttrs(topic string, key []byte, valueSize int) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		KeyMessagingSystem.String(MessagingSystemKafka),
		KeyMessagingOperationType.String(MessagingOperationTypeSend),
		KeyMessagingOperationName.String(MessagingOperationNameSend),
		KeyMessagingDestinationName.String(topic),
		KeyMessagingMessageBodySize.Int(valueSize),
	}
	return append(attrs, KeyAttrs(key)...)
}

// SentAttrs are the attributes of a produced record known once the broker
// acknowledged it.
func SentAttrs(partition int32, offset int64) []attribute.KeyValue {
	return []attribute.KeyValue{
		KeyMessagingPartitionID.String(strconv.FormatInt(int64(partition), 10)),
		KeyMessagingKafkaOffset.Int64(offset),
	}
}

// KeyAttrs renders a record key: nothing for a null key, the key as is when
// it is valid UTF-8, else standard base64 (with padding) plus
// hookbridge.kafka.message.key.encoding=base64, the same rule as the
// kafka-key webhook header.
func KeyAttrs(key []byte) []attribute.KeyValue {
	if key == nil {
		return nil
	}
	if utf8.Valid(key) {
		return []attribute.KeyValue{KeyMessagingKafkaMessageKey.String(string(key))}
	}
	return []attribute.KeyValue{
		KeyMessagingKafkaMessageKey.String(base64.StdEncoding.EncodeToString(key)),
		KeyKeyEncoding.String(keyEncodingBase64),
	}
}
