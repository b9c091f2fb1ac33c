package protocol

import (
	"testing"

	"google.golang.org/grpc/codes"
)

func TestCodeNameSpellsTheSpecificationsName(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK:                "OK",
		codes.Canceled:          "CANCELED",
		codes.DeadlineExceeded:  "DEADLINE_EXCEEDED",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.Unavailable:       "UNAVAILABLE",
		codes.Unauthenticated:   "UNAUTHENTICATED",
		codes.DataLoss:          "DATA_LOSS",
	} {
		if got := codeName(c); got != want {
			t.Errorf("codeName(%v) = %q, want %q", c, got, want)
		}
	}
}
