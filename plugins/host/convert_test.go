package host

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/sdk/handlerpb"
)

func TestRequestFromDelivery(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &target.Delivery{Route: "r", Attempt: 4, Record: &target.Record{Topic: "orders", Partition: 2, Offset: 9, Value: []byte("v"), Timestamp: ts}}
	want := &handlerpb.HandleRequest{
		Record: &handlerpb.Record{Topic: "orders", Partition: 2, Offset: 9, Value: []byte("v"), Timestamp: timestamppb.New(ts)},
		Route:  "r", Attempt: 4, Id: "orders-2-9",
	}
	if got := requestFromDelivery(d); !proto.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRecordToProto(t *testing.T) {
	cases := []struct {
		name string
		r    *target.Record
		want *handlerpb.Record
	}{
		{"null key, no timestamp", &target.Record{Topic: "t"}, &handlerpb.Record{Topic: "t"}},
		{"empty key", &target.Record{Topic: "t", Key: []byte{}}, &handlerpb.Record{Topic: "t", Key: []byte{}}},
		{"empty value", &target.Record{Topic: "t", Value: []byte{}}, &handlerpb.Record{Topic: "t", Value: []byte{}}},
		{"headers in order", &target.Record{Topic: "t", Key: []byte("k"), Headers: []target.Header{{Key: "a", Value: []byte("1")}, {Key: "a"}}},
			&handlerpb.Record{Topic: "t", Key: []byte("k"), Headers: []*handlerpb.Header{{Key: "a", Value: []byte("1")}, {Key: "a"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := recordToProto(tc.r)
			if !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// Presence survives the wire: null and empty keys differ.
			b, _ := proto.Marshal(got)
			var back handlerpb.Record
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if (back.Key == nil) != (tc.r.Key == nil) {
				t.Errorf("key nil after the wire = %v, want %v", back.Key == nil, tc.r.Key == nil)
			}
			if (back.Value == nil) != (tc.r.Value == nil) {
				t.Errorf("value nil after the wire = %v, want %v", back.Value == nil, tc.r.Value == nil)
			}
		})
	}
}

func TestHeadersFromProto(t *testing.T) {
	if got := headersFromProto(nil); got != nil {
		t.Errorf("none = %v, want nil", got)
	}
	got := headersFromProto([]*handlerpb.Header{{Key: "a", Value: []byte("1")}, {Key: "b"}})
	want := []target.Header{{Key: "a", Value: []byte("1")}, {Key: "b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestOutputFromProto(t *testing.T) {
	cases := []struct {
		name string
		o    *handlerpb.Output
		want target.Output
	}{
		{"original key", &handlerpb.Output{Value: []byte("v")}, target.Output{Value: []byte("v")}},
		{"own key, topic, headers", &handlerpb.Output{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []*handlerpb.Header{{Key: "h", Value: []byte("x")}}},
			target.Output{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: []target.Header{{Key: "h", Value: []byte("x")}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := outputFromProto(tc.o); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// An output's value keeps its presence across the wire: absent is a null
// value (a tombstone), present and empty an empty one. A plugin generated
// before the field was optional sends an empty value as absent.
func TestOutputValuePresence(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("v")} {
		b, err := proto.Marshal(&handlerpb.Output{Value: v})
		if err != nil {
			t.Fatal(err)
		}
		var back handlerpb.Output
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got := outputFromProto(&back)
		if (got.Value == nil) != (v == nil) || string(got.Value) != string(v) {
			t.Errorf("value %q (nil %v) came back as %q (nil %v)", v, v == nil, got.Value, got.Value == nil)
		}
	}
	// Field 3 as a plain proto3 bytes field: an empty value is not written.
	var back handlerpb.Output
	if err := proto.Unmarshal(nil, &back); err != nil || outputFromProto(&back).Value != nil {
		t.Errorf("an output without field 3: value %q, %v; want nil (null)", back.Value, err)
	}
}

func TestResultFromProto(t *testing.T) {
	res, err := resultFromProto("p", &handlerpb.HandleResponse{Outputs: []*handlerpb.Output{{Value: []byte("1")}, {Value: []byte("2")}}}, 2)
	if err != nil || len(res.Outputs) != 2 || string(res.Outputs[1].Value) != "2" {
		t.Errorf("got %+v, %v", res, err)
	}
	res, err = resultFromProto("p", &handlerpb.HandleResponse{}, 2)
	if err != nil || res == nil || res.Outputs != nil {
		t.Errorf("empty response: got %+v, %v; want an empty result", res, err)
	}
	_, err = resultFromProto("p", &handlerpb.HandleResponse{Outputs: []*handlerpb.Output{{}}, Error: &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "x"}}, 2)
	if target.KindOf(err) != target.Permanent {
		t.Errorf("error response: %v, want the error to win", err)
	}
}

func TestErrorFromProto(t *testing.T) {
	cases := []struct {
		name  string
		e     *handlerpb.Error
		kind  target.Kind
		after time.Duration
		msg   string
	}{
		{"retryable", &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRYABLE, Message: "flaky"}, target.Retryable, 0, "plugin p: flaky"},
		{"unspecified", &handlerpb.Error{Message: "x"}, target.Retryable, 0, "plugin p: x"},
		{"unknown kind", &handlerpb.Error{Kind: 42, Message: "x"}, target.Retryable, 0, "plugin p: x"},
		{"permanent", &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_PERMANENT, Message: "bad"}, target.Permanent, 0, "plugin p: bad"},
		{"retry after", &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, Message: "later", RetryAfterMs: 2500}, target.Retryable, 2500 * time.Millisecond, "plugin p: later"},
		{"negative wait", &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, RetryAfterMs: -5}, target.Retryable, 0, "plugin p: handler failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := errorFromProto("p", tc.e)
			if target.KindOf(err) != tc.kind || target.RetryAfterOf(err) != tc.after || err.Error() != tc.msg {
				t.Errorf("got %q kind %v after %v; want %q kind %v after %v", err, target.KindOf(err), target.RetryAfterOf(err), tc.msg, tc.kind, tc.after)
			}
			if strings.Contains(err.Error(), "rpc error") {
				t.Errorf("%q: a handler's error is not a transport error", err)
			}
		})
	}
}

// A plugin in any language may ask for a wait too long for a Duration in
// milliseconds (retry_after_ms is an int64): it gets the longest wait, which
// dispatch caps at max_backoff, and not a wrapped negative one, which was
// ignored.
func TestRetryAfterSaturates(t *testing.T) {
	for ms, want := range map[int64]time.Duration{
		-5:                   0,
		1500:                 1500 * time.Millisecond,
		math.MaxInt64 / 1000: math.MaxInt64,
		9223372036855:        math.MaxInt64,
		math.MaxInt64:        math.MaxInt64,
	} {
		err := errorFromProto("p", &handlerpb.Error{Kind: handlerpb.ErrorKind_ERROR_KIND_RETRY_AFTER, RetryAfterMs: ms})
		if got := target.RetryAfterOf(err); got != want {
			t.Errorf("retry_after_ms %d: RetryAfter = %v, want %v", ms, got, want)
		}
	}
}
