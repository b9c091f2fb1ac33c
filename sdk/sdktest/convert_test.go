package sdktest

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

func TestRequestFromMessage(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		msg  *sdk.Message
		want *handlerpb.HandleRequest
	}{
		{"defaults", &sdk.Message{Topic: "t", Partition: 1, Offset: 2},
			&handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t", Partition: 1, Offset: 2}, Attempt: 1, Id: "t-1-2"}},
		{"full", &sdk.Message{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []sdk.Header{{Key: "h", Value: []byte("1")}},
			Timestamp: ts, Route: "r", Attempt: 3, ID: "custom"},
			&handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t", Key: []byte("k"), Value: []byte("v"),
				Headers: []*handlerpb.Header{{Key: "h", Value: []byte("1")}}, Timestamp: timestamppb.New(ts)}, Route: "r", Attempt: 3, Id: "custom"}},
		{"empty key stays present", &sdk.Message{Topic: "t", Key: []byte{}},
			&handlerpb.HandleRequest{Record: &handlerpb.Record{Topic: "t", Key: []byte{}}, Attempt: 1, Id: "t-0-0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := requestFromMessage(tc.msg)
			if !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if (got.Record.Key == nil) != (tc.msg.Key == nil) {
				t.Error("key presence lost")
			}
		})
	}
}

func TestResultFromProto(t *testing.T) {
	cases := []struct {
		name      string
		resp      *handlerpb.HandleResponse
		want      *sdk.Result
		err       string
		permanent bool
		after     time.Duration
	}{
		{"empty", &handlerpb.HandleResponse{}, &sdk.Result{}, "", false, 0},
		{"outputs", &handlerpb.HandleResponse{Outputs: []*handlerpb.Output{{Topic: "t", Key: []byte("k"), Value: []byte("v"),
			Headers: []*handlerpb.Header{{Key: "h", Value: []byte("1")}}}, {Value: []byte("w")}}},
			&sdk.Result{Outputs: []sdk.Output{{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []sdk.Header{{Key: "h", Value: []byte("1")}}},
				{Value: []byte("w")}}}, "", false, 0},
		{"unspecified kind is retryable", &handlerpb.HandleResponse{Error: &handlerpb.Error{Message: "x"}}, nil, "x", false, 0},
		{"unknown kind is retryable", &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: 99, Message: "x"}}, nil, "x", false, 0},
		{"permanent", &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "p"}}, nil, "p", true, 0},
		{"retry after", &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "r", RetryAfterMs: 250}},
			nil, "r", false, 250 * time.Millisecond},
		{"retry after past the longest duration", &handlerpb.HandleResponse{Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "r", RetryAfterMs: math.MaxInt64}},
			nil, "r", false, math.MaxInt64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resultFromProto(tc.resp)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if sdk.IsPermanent(err) != tc.permanent {
					t.Errorf("IsPermanent = %v", sdk.IsPermanent(err))
				}
				if d, _ := sdk.RetryAfterOf(err); d != tc.after {
					t.Errorf("RetryAfterOf = %v, want %v", d, tc.after)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if errorFromProto(&handlerpb.Error{}) == nil || errors.Unwrap(errorFromProto(&handlerpb.Error{})) != nil {
		t.Error("an error with no message is still a plain error")
	}
}
