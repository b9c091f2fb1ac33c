package testkit

import (
	"slices"
	"testing"
)

func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`{"msg":"leaving the consumer group","route":"r","group":"g","group":"g","error":"x"}`, []string{"group"}},
		{`{"msg":"m","a":{"b":1,"b":2},"c":[1,2]}`, nil}, // nested objects are the attribute's own
		{`{"msg":"m","route":"r","claims":{"t":[0,1]},"route":"r","route":"r"}`, []string{"route", "route"}},
		{`panic: boom`, nil},
		{`{"msg":"cut short`, nil},
	} {
		if got := duplicateKeys(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("duplicateKeys(%s) = %v, want %v", tc.line, got, tc.want)
		}
	}
}
