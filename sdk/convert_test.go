package sdk

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

func TestMessageFromProto(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	cases := []struct {
		name string
		req  *handlerpb.HandleRequest
		want *Message
	}{
		{"full", &handlerpb.HandleRequest{
			Record: &handlerpb.Record{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
				Headers:   []*handlerpb.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}},
				Timestamp: timestamppb.New(ts)},
			Route: "r", Attempt: 2, Id: "orders-3-42",
		}, &Message{Topic: "orders", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
			Headers: []Header{{"a", []byte("1")}, {"a", []byte("2")}}, Timestamp: ts, Route: "r", Attempt: 2, ID: "orders-3-42"}},
		{"null key, no timestamp", &handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t"}, Attempt: 1},
			&Message{Topic: "t", Attempt: 1}},
		{"empty key", &handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t", Key: []byte{}}},
			&Message{Topic: "t", Key: []byte{}}},
		{"empty value", &handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t", Value: []byte{}}},
			&Message{Topic: "t", Value: []byte{}}},
		{"no record", &handlerpb.HandleRequest{Id: "x"}, &Message{ID: "x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Through the wire encoding, as the server sees it.
			b, err := proto.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var req handlerpb.HandleRequest
			if err := proto.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			got := messageFromProto(&req)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
			if (got.Key == nil) != (tc.want.Key == nil) {
				t.Errorf("key nil = %v, want %v (null and empty keys differ)", got.Key == nil, tc.want.Key == nil)
			}
			if (got.Value == nil) != (tc.want.Value == nil) {
				t.Errorf("value nil = %v, want %v (null and empty values differ)", got.Value == nil, tc.want.Value == nil)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	cases := []struct {
		name string
		sdk  []Header
		pb   []*handlerpb.Header
	}{
		{"none", nil, nil},
		{"repeated keys keep their order", []Header{{"a", []byte("1")}, {"b", nil}, {"a", []byte("2")}},
			[]*handlerpb.Header{{Key: "a", Value: []byte("1")}, {Key: "b"}, {Key: "a", Value: []byte("2")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := headersToProto(tc.sdk); !reflect.DeepEqual(got, tc.pb) {
				t.Errorf("headersToProto = %v, want %v", got, tc.pb)
			}
			if got := headersFromProto(tc.pb); !reflect.DeepEqual(got, tc.sdk) {
				t.Errorf("headersFromProto = %v, want %v", got, tc.sdk)
			}
		})
	}
}

func TestOutputToProto(t *testing.T) {
	cases := []struct {
		name string
		in   Output
		want *handlerpb.Output
	}{
		{"original key", Output{Value: []byte("v")}, &handlerpb.Output{Value: []byte("v")}},
		{"own key and topic", Output{Topic: "t2", Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"h", []byte("x")}}},
			&handlerpb.Output{Topic: "t2", Key: []byte("k"), Value: []byte("v"), Headers: []*handlerpb.Header{{Key: "h", Value: []byte("x")}}}},
		{"empty key", Output{Key: []byte{}}, &handlerpb.Output{Key: []byte{}}},
		{"null value", Output{}, &handlerpb.Output{}},
		{"empty value", Output{Value: []byte{}}, &handlerpb.Output{Value: []byte{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := outputToProto(&tc.in)
			if !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// Through the wire encoding, as the host sees it.
			b, err := proto.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var back handlerpb.Output
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if (back.Key == nil) != (tc.want.Key == nil) {
				t.Errorf("key presence %v, want %v", back.Key != nil, tc.want.Key != nil)
			}
			if (back.Value == nil) != (tc.want.Value == nil) {
				t.Errorf("value presence %v, want %v", back.Value != nil, tc.want.Value != nil)
			}
		})
	}
}

func TestErrorToProto(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		name string
		err  error
		want *handlerpb.Error
	}{
		{"nil", nil, nil},
		{"plain is retryable", base, &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRYABLE, Message: "boom"}},
		{"permanent", Permanent(base), &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "boom"}},
		{"wrapped permanent", errWrap(Permanent(base)), &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "ctx: boom"}},
		{"retry after", RetryAfter(1500*time.Millisecond, base),
			&handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "boom", RetryAfterMs: 1500}},
		{"retry after rounds up", RetryAfter(time.Microsecond, base),
			&handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "boom", RetryAfterMs: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorToProto(tc.err); !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func errWrap(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "ctx: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestResponseToProto(t *testing.T) {
	cases := []struct {
		name string
		res  *Result
		err  error
		want *handlerpb.HandleResponse
	}{
		{"nil result", nil, nil, &handlerpb.HandleResponse{}},
		{"outputs in order", &Result{Outputs: []Output{{Value: []byte("1")}, {Topic: "t", Value: []byte("2")}}}, nil,
			&handlerpb.HandleResponse{Outputs: []*handlerpb.Output{{Value: []byte("1")}, {Topic: "t", Value: []byte("2")}}}},
		{"error drops outputs", &Result{Outputs: []Output{{Value: []byte("1")}}}, Permanent(errors.New("bad")),
			&handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "bad"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := responseToProto(tc.res, tc.err); !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
