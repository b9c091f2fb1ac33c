// Package sdktest runs a plugin's sdk.Handler behind a real gRPC server in
// the test process, for the plugin author's unit tests. Calls take the path
// they take in production, from the bridge's side of the wire to the
// handler and back: the generated protocol code, the conversions on both
// sides, the message size limits and the error kinds (sdk.IsPermanent and
// sdk.RetryAfterOf work on the errors Handle returns). Only the process
// boundary and go-plugin's handshake are left out; the connection is an
// in-memory one.
//
//	srv := sdktest.NewServer(t, myHandler)
//	res, err := srv.Handle(ctx, &sdk.Message{Topic: "orders", Value: []byte(`{"id":1}`)})
package sdktest
