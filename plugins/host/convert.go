package host

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// The host side of the wire: engine types to requests, responses to engine
// types. One function per message.

// requestFromDelivery converts a delivery attempt, record included.
func requestFromDelivery(d *target.Delivery) *handlerpb.HandleRequest {
	return &handlerpb.HandleRequest{
		Record:  recordToProto(d.Record),
		Route:   d.Route,
		Attempt: int32(d.Attempt),
		Id:      d.Record.ID(),
	}
}

// recordToProto converts a record. A nil key stays absent on the wire (a
// null key); an empty one is sent as present and empty. A zero timestamp is
// left out.
func recordToProto(r *target.Record) *handlerpb.Record {
	pr := &handlerpb.Record{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   headersToProto(r.Headers),
	}
	if !r.Timestamp.IsZero() {
		pr.Timestamp = timestamppb.New(r.Timestamp)
	}
	return pr
}

// headersToProto converts headers; none is nil.
func headersToProto(hs []target.Header) []*handlerpb.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*handlerpb.Header, len(hs))
	for i, h := range hs {
		out[i] = &handlerpb.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// badHeaderKey returns the index of the first header whose key is not UTF-8,
// or -1. A key is a string on the wire, and proto3 strings must be UTF-8:
// gRPC refuses to marshal such a request, and on a stream that ends the
// stream with every call on it, not only the record's. (A producer other
// than Java's may write any bytes as a key.)
func badHeaderKey(hs []target.Header) int {
	for i, h := range hs {
		if !utf8.ValidString(h.Key) {
			return i
		}
	}
	return -1
}

// headersFromProto converts headers; none is nil.
func headersFromProto(hs []*handlerpb.Header) []target.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]target.Header, len(hs))
	for i, h := range hs {
		out[i] = target.Header{Key: h.GetKey(), Value: h.GetValue()}
	}
	return out
}

// resultFromProto converts a response of the plugin named plugin: the
// handler's classified error, or its result. A result with more than
// maxOutputs outputs is a permanent error: each output is a record to
// produce, which takes far more memory than its bytes on the wire (an empty
// output takes two), and the message limit alone lets one answer carry two
// million of them.
func resultFromProto(plugin string, resp *handlerpb.HandleResponse, maxOutputs int) (*target.Result, error) {
	if e := resp.GetError(); e != nil {
		return nil, errorFromProto(plugin, e)
	}
	if n := len(resp.GetOutputs()); n > maxOutputs {
		return nil, target.NewPermanent(fmt.Errorf("plugin %s: the answer has %d outputs, more than %d (plugins.%s.max_outputs)",
			plugin, n, maxOutputs, plugin))
	}
	res := &target.Result{}
	if outs := resp.GetOutputs(); len(outs) > 0 {
		res.Outputs = make([]target.Output, len(outs))
		for i, o := range outs {
			res.Outputs[i] = outputFromProto(o)
		}
	}
	return res, nil
}

// outputFromProto converts an output; an absent key stays nil (the
// original record's key).
func outputFromProto(o *handlerpb.Output) target.Output {
	return target.Output{Topic: o.GetTopic(), Key: o.GetKey(), Value: o.GetValue(), Headers: headersFromProto(o.GetHeaders())}
}

// maxHandlerError bounds the message of a handler's error as the bridge
// keeps it, and that of a call's failure the plugin wrote (its gRPC status,
// a stream's refusal of a call): see protocol.CutMessage.
const maxHandlerError = protocol.MaxMessage

// errorFromProto maps a handler's error onto the target error kinds:
// RETRYABLE (and an unspecified or unknown kind) is retryable, PERMANENT
// permanent, RETRY_AFTER retryable after the wait it names.
func errorFromProto(plugin string, e *handlerpb.Error) error {
	msg := e.GetMessage()
	if msg == "" {
		msg = "handler failed"
	}
	err := fmt.Errorf("plugin %s: %w", plugin, errors.New(protocol.CutMessage(msg, maxHandlerError)))
	switch e.GetKind() {
	case handlerpb.ErrorKind_ERROR_KIND_PERMANENT:
		return target.NewPermanent(err)
	case handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER:
		return target.NewRetryAfter(protocol.RetryAfter(e.GetRetryAfterMs()), err)
	}
	return &target.Error{Kind: target.Retryable, Err: err}
}
