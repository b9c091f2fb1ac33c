package sdk

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// The plugin side of the wire: requests in, responses out. One function per
// message; package sdktest holds the other direction.

// messageFromProto converts a HandleRequest, record included.
func messageFromProto(req *handlerpb.HandleRequest) *Message {
	r := req.GetRecord()
	return &Message{
		Topic:     r.GetTopic(),
		Partition: r.GetPartition(),
		Offset:    r.GetOffset(),
		Key:       r.GetKey(), // nil when absent (a null key), non-nil when present
		Value:     r.GetValue(),
		Headers:   headersFromProto(r.GetHeaders()),
		Timestamp: timeFromProto(r.GetTimestamp()),
		Route:     req.GetRoute(),
		Attempt:   int(req.GetAttempt()),
		ID:        req.GetId(),
	}
}

// timeFromProto converts a timestamp; an absent one is the zero time.
func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// headersFromProto converts headers; none is nil.
func headersFromProto(hs []*handlerpb.Header) []Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.GetKey(), Value: h.GetValue()}
	}
	return out
}

// headersToProto converts headers; none is nil.
func headersToProto(hs []Header) []*handlerpb.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*handlerpb.Header, len(hs))
	for i, h := range hs {
		out[i] = &handlerpb.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// responseToProto converts what Handle returned. An error wins over the
// result, whose outputs are then dropped.
func responseToProto(res *Result, err error) *handlerpb.HandleResponse {
	if err != nil {
		return &handlerpb.HandleResponse{Error: errorToProto(err)}
	}
	resp := &handlerpb.HandleResponse{}
	if res == nil {
		return resp
	}
	resp.Outputs = make([]*handlerpb.Output, len(res.Outputs))
	for i := range res.Outputs {
		o := &res.Outputs[i]
		// Strings on the wire must be UTF-8: one that is not would fail
		// the whole message, and on a stream end the stream and every
		// call on it.
		if !utf8.ValidString(o.Topic) {
			return responseToProto(nil, Permanent(fmt.Errorf("sdk: output %d: its topic is not valid UTF-8", i)))
		}
		for j := range o.Headers {
			if !utf8.ValidString(o.Headers[j].Key) {
				return responseToProto(nil, Permanent(fmt.Errorf("sdk: output %d: the key of its header %d is not valid UTF-8", i, j)))
			}
		}
		resp.Outputs[i] = outputToProto(o)
	}
	return resp
}

// outputToProto converts an output; a nil key stays absent on the wire
// (the original record's key).
func outputToProto(o *Output) *handlerpb.Output {
	return &handlerpb.Output{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: headersToProto(o.Headers)}
}

// errorToProto classifies a handler error; nil is nil.
func errorToProto(err error) *handlerpb.Error {
	if err == nil {
		return nil
	}
	e := &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRYABLE, Message: errorMessage(err)}
	switch d, ok := RetryAfterOf(err); {
	case IsPermanent(err):
		e.Kind = handlerpb.ErrorKind_ERROR_KIND_PERMANENT
	case ok:
		e.Kind = handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER
		e.RetryAfterMs = protocol.CeilMillis(d) // 1µs is not "no wait"
	}
	return e
}

// maxErrorMessage bounds the message of a handler's error on the wire. An
// error that quotes a large record or downstream answer would otherwise
// make the answer exceed the message limit, and fail as permanent whatever
// its kind. (The bridge keeps the first 1 KiB in a dead letter's header.)
const maxErrorMessage = 16 << 10

// errorMessage is err's message as it goes on the wire: UTF-8 (a string on
// the wire must be, and handlers quote record bytes in their errors), and
// cut after maxErrorMessage bytes, at a character's start, saying so.
func errorMessage(err error) string {
	return protocol.CutMessage(strings.ToValidUTF8(err.Error(), "\uFFFD"), maxErrorMessage)
}
