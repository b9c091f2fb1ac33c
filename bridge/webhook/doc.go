// Package webhook is the HTTP target: it POSTs each record to a route's URL as
// the webhook contract of README.md describes, and classifies the answer
// into the error kinds of package target.
//
// A request carries the record value as its body (binary content mode) and:
//
//   - Content-Type: the record's content-type header, else a configured
//     Content-Type, else application/octet-stream;
//   - webhook-id (<topic>-<partition>-<offset>), webhook-timestamp (unix
//     seconds of the attempt) and, when secrets are configured,
//     webhook-signature (Standard Webhooks, see package signing);
//   - CloudEvents binary mode headers: a record's Kafka-binding ce_* headers
//     become ce-* (values percent-encoded only where the HTTP binding demands
//     it; a ce_ header whose rest is not an attribute's name, letters and
//     digits, is forwarded as any other); attributes the record lacks get
//     ce-specversion 1.0, ce-id = the webhook-id, ce-source "/kafka/<topic>",
//     ce-type "dev.hookbridge.kafka.record" and, for a record without
//     ce_specversion, ce-time = the record timestamp (RFC 3339, UTC);
//   - kafka-topic, kafka-partition, kafka-offset and kafka-key (absent for a
//     null key; standard base64 plus kafka-key-encoding: base64 for a key that
//     is not valid UTF-8 or would not survive as a header value);
//   - kafka-header-<name> for every other record header unless
//     forward_headers is false (a byte of a name that cannot be in an HTTP
//     token, and '%', go percent-encoded); every value of a name goes as
//     base64 when one is not a valid header value, and kafka-base64-headers
//     lists those names;
//   - traceparent/tracestate of the HTTP client span, a child of the span in
//     the delivery's context (the record's own trace headers are not copied);
//   - hookbridge-attempt (from 1), User-Agent hookbridge/<version>, and the
//     configured headers, which cannot replace any of the above except two:
//     a configured User-Agent replaces ours, and a configured Content-Type
//     is the default for records without one.
//
// Answers: 2xx is delivered; 408, 429, 5xx, connection errors and timeouts
// are retryable (Retry-After honoured), and so are 401, 403 and a proxy's
// 407, which refuse the bridge's credentials, not the record (their bodies
// are not quoted);
// 410 is Gone; 3xx (redirects are never followed) and other 4xx are
// permanent, but a 4xx is retryable while the client certificate
// (tls.cert_file) has expired. At most 1 MiB of a response body is
// read. Header values are never logged.
//
// Batch mode (batch.max_messages > 0) gathers the records of concurrent
// deliveries into one application/cloudevents-batch+json request: one
// structured CloudEvent per record, with the extensions topic, partition,
// offset and key. The batch has its own webhook-id and signature; each record
// keeps its own outcome, and a 2xx answer {"failed": ["<webhook-id>", ...]}
// fails just those records (they are retried alone).
//
// A shared rate limiter (rate_limit) paces requests, one token per request.
//
// Security settings (docs/security.md) shape the target's one pooled
// transport: tls (a CA bundle, a client certificate for mutual TLS,
// server_name), a proxy (proxy.url, or use_env_proxy; the environment is
// ignored otherwise), and deny_private_networks, which refuses loopback,
// private, link-local, CGNAT, unique-local, multicast and reserved addresses
// in net.Dialer.ControlContext, on the resolved address, as a permanent
// failure (*BlockedAddressError) unless an allowed address of the name was
// tried too. bearer_token, bearer_token_file (read again when it
// changes) or an OAuth 2.0 client-credentials grant (cached, refreshed before
// expiry) set Authorization; a 401 renews the credential and the request is
// sent once more. signing_secrets_file adds secrets to signing_secrets.
package webhook
