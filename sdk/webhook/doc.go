// Package webhook is the receiving side of Hookbridge's webhook contract, for
// HTTP services written in Go. It needs nothing but the standard library.
//
// A Verifier checks the Standard Webhooks signature of a request
// (webhook-id, webhook-timestamp, webhook-signature) against one or more
// "whsec_" secrets: signatures are compared in constant time, the timestamp
// must be within a tolerance of now (five minutes unless WithTolerance says
// otherwise), and the body is read up to a cap (WithMaxBodyBytes).
//
// DecodeDelivery turns a verified single-record request into a Delivery: the
// Kafka coordinates (topic, partition, offset), the key (decoded from base64
// when kafka-key-encoding says so; nil for a null key), the forwarded record
// headers (kafka-header-*), the content type, the attempt number, the body,
// whether the value was null (kafka-tombstone) and the CloudEvents
// attributes (ce-*). DecodeBatch turns a batch request
// (Content-Type application/cloudevents-batch+json) into Events, with data
// or data_base64 decoded; a BatchResult answers which of them failed.
//
// Handler puts it together as an http.Handler: it verifies every request,
// skips records a Store has marked as handled (webhook-id is stable across
// retries and restarts, so it is the idempotency key), calls a function per
// record, single or batched, and answers the way the bridge understands:
//
//	v, err := webhook.NewVerifier([]string{os.Getenv("WEBHOOK_SECRET")})
//	if err != nil { ... }
//	h := &webhook.Handler{
//		Verifier: v,
//		Store:    webhook.NewMemoryStore(100_000, 24*time.Hour),
//		Func: func(ctx context.Context, d *webhook.Delivery) error {
//			// handle d.Body; return an error to have the record retried
//			return nil
//		},
//	}
//	http.Handle("/hooks/orders", h)
//
// Hookbridge delivers at least once: after a crash or a rebalance a record is
// delivered again with the same webhook-id. A Store makes the handler see it
// once per process (MemoryStore) or once across replicas (a Store of your own
// over a shared database).
//
// Sign produces a signature as the bridge does, for tests of a receiver.
//
// This package never imports the bridge; docs/receivers.md describes the
// contract it implements, and the tests under test/receiver prove that it
// decodes what the bridge sends.
package webhook
