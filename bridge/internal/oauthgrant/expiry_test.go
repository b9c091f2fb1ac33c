package oauthgrant

import (
	"encoding/base64"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestExpiry(t *testing.T) {
	enc := func(payload string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	given := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name string
		tok  oauth2.Token
		want time.Time
	}{
		{"expires_in wins", oauth2.Token{AccessToken: enc(`{"exp":1}`), Expiry: given}, given},
		{"a JWT's exp", oauth2.Token{AccessToken: enc(`{"exp":1767323045}`)}, time.Unix(1767323045, 0)},
		{"a fractional exp", oauth2.Token{AccessToken: enc(`{"exp":1767323045.5}`)}, time.Unix(1767323045, 0)},
		{"padded base64", oauth2.Token{AccessToken: base64.URLEncoding.EncodeToString([]byte(`{}`)) + "." +
			base64.URLEncoding.EncodeToString([]byte(`{"exp":1767323045}`)) + ".sig"}, time.Unix(1767323045, 0)},
		{"an opaque token", oauth2.Token{AccessToken: "opaque-token"}, time.Time{}},
		{"no exp", oauth2.Token{AccessToken: enc(`{"sub":"x"}`)}, time.Time{}},
		{"exp not a number", oauth2.Token{AccessToken: enc(`{"exp":"soon"}`)}, time.Time{}},
		{"a negative exp", oauth2.Token{AccessToken: enc(`{"exp":-5}`)}, time.Time{}},
		{"an exp out of range", oauth2.Token{AccessToken: enc(`{"exp":1e300}`)}, time.Time{}},
		{"a payload that is not JSON", oauth2.Token{AccessToken: enc(`exp=5`)}, time.Time{}},
		{"a payload that is not base64", oauth2.Token{AccessToken: "a.!!!.c"}, time.Time{}},
	} {
		if got := Expiry(&c.tok); !got.Equal(c.want) {
			t.Errorf("%s: Expiry = %v, want %v", c.name, got, c.want)
		}
	}
}
