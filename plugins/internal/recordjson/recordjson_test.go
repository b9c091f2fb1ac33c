package recordjson

import (
	"testing"

	"github.com/hookbridge/hookbridge/sdk"
)

func TestHeaders(t *testing.T) {
	hs := []sdk.Header{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: "a", Value: []byte("1")},
		{Key: "a", Value: []byte{0xff}},
		{Key: "n", Value: []byte("x\x00y")},
		{Key: "k\x00", Value: []byte("v")},
		{Key: "empty"},
	}
	for _, tc := range []struct {
		noNUL bool
		want  string
	}{
		{false, `[{"key":"content-type","value":"application/json"},{"key":"a","value":"1"},{"key":"a","value_base64":"/w=="},` +
			`{"key":"n","value":"x\u0000y"},{"key":"k\u0000","value":"v"},{"key":"empty"}]`},
		{true, `[{"key":"content-type","value":"application/json"},{"key":"a","value":"1"},{"key":"a","value_base64":"/w=="},` +
			`{"key":"n","value_base64":"eAB5"},{"key":"k` + "\uFFFD" + `","value":"v"},{"key":"empty"}]`},
	} {
		if got := Headers(hs, tc.noNUL); got != tc.want {
			t.Errorf("noNUL %v:\n got %s\nwant %s", tc.noNUL, got, tc.want)
		}
	}
	if got := Headers(nil, false); got != "[]" {
		t.Errorf("no headers: %s, want []", got)
	}
}
