// Package handlerpb is the Go code generated from
// sdk/proto/hookbridge/handler/v1/handler.proto (run `make proto`): the
// messages and the gRPC client and server of the hookbridge.handler.v1
// Handler service. It holds generated code only; the SDK and the host
// convert to and from their own types at one place each.
package handlerpb
