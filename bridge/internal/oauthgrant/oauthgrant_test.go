package oauthgrant

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestRefreshAt(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name   string
		expiry time.Time
		want   time.Time
	}{
		{"no expiry: never", time.Time{}, time.Time{}},
		{"an hour: a minute before", now.Add(time.Hour), now.Add(time.Hour - time.Minute)},
		{"ten seconds: one before", now.Add(10 * time.Second), now.Add(9 * time.Second)},
		{"expired on arrival: RefreshRetry later", now.Add(-time.Minute), now.Add(RefreshRetry)},
		{"expiring as it arrives: RefreshRetry later", now, now.Add(RefreshRetry)},
	} {
		if got := RefreshAt(&oauth2.Token{Expiry: c.expiry}, now); !got.Equal(c.want) {
			t.Errorf("%s: RefreshAt = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestError(t *testing.T) {
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 401, Status: "401 forged\nreason"},
		ErrorCode: "invalid_client", ErrorDescription: "line\n" + strings.Repeat("d", 1000)}
	got := Error(re).Error()
	want := `token endpoint answered 401 Unauthorized: "invalid_client" ("line\n` + strings.Repeat("d", errorText-len("line\n")) + `")`
	if got != want {
		t.Errorf("Error = %q\nwant    %q", got, want)
	}
	ue := &url.Error{Op: "Post", URL: "https://idp.example/token?key=s3cr3t", Err: errors.New("connection refused")}
	if got := Error(ue).Error(); got != "connection refused" {
		t.Errorf("Error of a url.Error = %q, want the cause without the URL", got)
	}
}
