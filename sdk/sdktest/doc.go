// Package sdktest runs a plugin's sdk.Handler behind a real gRPC server in
// the test process, for the plugin author's unit tests. Each call is a unary
// Handle call, from the bridge's side of the wire to the handler and back:
// the generated protocol code, the conversions on both sides, the message
// size limits and the error kinds (sdk.IsPermanent and sdk.RetryAfterOf work
// on the errors Handle returns), the bridge's bound on outputs
// (WithMaxOutputs) and its refusal of a header key that is not UTF-8. Only the process boundary and go-plugin's handshake are
// left out; the connection is an in-memory one.
//
// The bridge makes Handle calls only to a plugin that does not serve
// HandleStream, and for a call whose stream message would exceed the
// message limit (a record near the limit with its trace context); it sends
// every other call on the process's HandleStream stream, which sdktest does
// not use. What differs on the stream: an answer above the
// message limit becomes a permanent handler error naming
// plugins.<name>.max_message_bytes (sdk.IsPermanent), where sdktest
// returns a *CallError with RESOURCE_EXHAUSTED; a cancellation is a message
// on the stream rather than the end of the call's context on the client;
// and the stream's multiplexing and packing of calls are not exercised.
// (A record above the limit never reaches the plugin: the bridge refuses it
// with a permanent error, where sdktest returns a *CallError with
// RESOURCE_EXHAUSTED.)
//
//	srv := sdktest.NewServer(t, myHandler)
//	res, err := srv.Handle(ctx, &sdk.Message{Topic: "orders", Value: []byte(`{"id":1}`)})
package sdktest
