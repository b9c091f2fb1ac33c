// Package signing implements Standard Webhooks signatures
// (https://www.standardwebhooks.com): the webhook-id, webhook-timestamp and
// webhook-signature headers every Hookbridge webhook request carries.
//
// A secret is written "whsec_" followed by the standard base64 encoding of 24
// to 64 random bytes. The signature of a request is
//
//	v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>
//
// where timestamp is the decimal unix time in seconds that is also sent as
// webhook-timestamp. During a rotation the sender holds two secrets and sends
// one signature per secret, separated by a space; a receiver that holds either
// secret accepts the request.
//
// Sign and Signer are the sending side; Verify is the receiving side, used by
// tests and by receivers written in Go. Any Standard Webhooks library (the
// Python standardwebhooks package, for one) verifies what Signer produces.
//
// Nothing in this package logs, and no error it returns contains a secret.
package signing
