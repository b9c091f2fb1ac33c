// Package dispatch holds the layers of the delivery chain that sits between a
// partition's lanes and a target: tracing, dead-lettering, reply production,
// retry with backoff, the target's circuit breaker, and one span per attempt.
// Each layer is a target.Layer with one concern, unit-tested against a fake
// target.
//
// The chain, outermost first:
//
//	trace → deadletter → reply → retry → breaker → attempt trace → target
//
// A call through the chain returns nil only for a terminal outcome (delivered,
// or durably written to the dead-letter topic); any error means the record was
// abandoned (its context ended) and must not be acknowledged.
package dispatch
