package sdktest

import (
	"errors"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// The bridge's side of the wire, written against the SDK's types: requests
// out, responses in. One function per message; package sdk holds the other
// direction.

// requestFromMessage converts a Message to a HandleRequest, record included.
func requestFromMessage(m *sdk.Message) *handlerpb.HandleRequest {
	attempt := m.Attempt
	if attempt == 0 {
		attempt = 1
	}
	id := m.ID
	if id == "" {
		id = m.Topic + "-" + strconv.FormatInt(int64(m.Partition), 10) + "-" + strconv.FormatInt(m.Offset, 10)
	}
	req := &handlerpb.HandleRequest{
		Record: &handlerpb.Record{
			Topic:     m.Topic,
			Partition: m.Partition,
			Offset:    m.Offset,
			Key:       m.Key,
			Value:     m.Value,
			Headers:   headersToProto(m.Headers),
		},
		Route:   m.Route,
		Attempt: int32(attempt),
		Id:      id,
	}
	if !m.Timestamp.IsZero() {
		req.Record.Timestamp = timestamppb.New(m.Timestamp)
	}
	return req
}

// headersToProto converts headers; none is nil.
func headersToProto(hs []sdk.Header) []*handlerpb.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*handlerpb.Header, len(hs))
	for i, h := range hs {
		out[i] = &handlerpb.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// headersFromProto converts headers; none is nil.
func headersFromProto(hs []*handlerpb.Header) []sdk.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]sdk.Header, len(hs))
	for i, h := range hs {
		out[i] = sdk.Header{Key: h.GetKey(), Value: h.GetValue()}
	}
	return out
}

// resultFromProto converts a HandleResponse: the handler's error, or its
// result.
func resultFromProto(resp *handlerpb.HandleResponse) (*sdk.Result, error) {
	if e := resp.GetError(); e != nil {
		return nil, errorFromProto(e)
	}
	res := &sdk.Result{}
	if outs := resp.GetOutputs(); len(outs) > 0 {
		res.Outputs = make([]sdk.Output, len(outs))
		for i, o := range outs {
			res.Outputs[i] = outputFromProto(o)
		}
	}
	return res, nil
}

// outputFromProto converts an output; an absent key stays nil.
func outputFromProto(o *handlerpb.Output) sdk.Output {
	return sdk.Output{Topic: o.GetTopic(), Key: o.GetKey(), Value: o.GetValue(), Headers: headersFromProto(o.GetHeaders())}
}

// errorFromProto rebuilds a handler's error with its kind; an unknown kind
// is retryable, as the bridge treats it.
func errorFromProto(e *handlerpb.Error) error {
	err := errors.New(e.GetMessage())
	switch e.GetKind() {
	case handlerpb.ErrorKind_ERROR_KIND_PERMANENT:
		return sdk.Permanent(err)
	case handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER:
		return sdk.RetryAfter(protocol.RetryAfter(e.GetRetryAfterMs()), err)
	}
	return err
}
