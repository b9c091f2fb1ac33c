// Package sdk is what a Hookbridge plugin author imports. A plugin is a
// program that handles Kafka records the bridge delivers to it: implement
// Handler and call Serve from main.
//
//	func main() {
//		h := sdk.HandlerFunc(func(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
//			// ... handle msg.Value ...
//			return &sdk.Result{}, nil
//		})
//		if err := sdk.Serve(h); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// Hookbridge starts the program (plugins.<name>.command in its
// configuration), keeps a pool of its processes, and calls Handle
// concurrently, once per delivery attempt. The transport (go-plugin over
// gRPC with automatic mutual TLS, the handshake, health checks, message
// limits) is hidden behind Serve.
//
// Errors decide what happens to a record: a nil error means delivered; a
// plain error is retried with backoff; Permanent(err) dead-letters the
// record at once; RetryAfter(d, err) retries it no sooner than d. Outputs in
// the Result are produced to the route's reply topic (or to the topic an
// Output names).
//
// A handler's log goes to the bridge's log when it is written with the
// logger NewLogger returns (or any JSON logger in go-plugin's format on
// stderr). Trace context arrives with each call: spans started from the ctx
// passed to Handle sit under the bridge's delivery span, and lines logged
// with that ctx (InfoContext and the like) carry its trace_id and span_id.
//
// Package sdk/sdktest runs a Handler over the real gRPC path in-process,
// for unit tests; package sdk/handlerpb is the generated wire protocol that
// plugins in other languages implement (see docs/plugins.md).
package sdk
