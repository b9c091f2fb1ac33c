// Package scenario is the bridge's black-box scenario suite: real hookbridge
// subprocesses consume from a Kafka broker over TCP and deliver to HTTP
// receivers run by the test. The broker is franz-go's in-process kfake by
// default, or the real cluster named by HOOKBRIDGE_TEST_KAFKA (make e2e).
// Assertions are on data (every id delivered, per-key order, dead-letter
// contents, committed offsets), never on time.
package scenario
