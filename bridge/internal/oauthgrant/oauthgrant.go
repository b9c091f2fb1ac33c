// Package oauthgrant holds what the two users of the OAuth 2.0
// client-credentials grant share: a webhook's oauth2 block and Kafka's SASL
// OAUTHBEARER. It makes the grant from the configuration, says when a token
// is due for refresh, and words the error of a failed token request.
package oauthgrant

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/excerpt"
)

// RefreshRetry is how long a token serves, when it cannot be replaced when
// due (the token endpoint down) or expired when it arrived, before the next
// token request.
const RefreshRetry = 5 * time.Second

// errorText bounds each field of a token endpoint's error quoted in ours.
const errorText = 200

// Grant is the client-credentials grant of o. The caller sets ClientSecret
// from o.ClientSecretFile, when set, before each request for a token.
func Grant(o config.OAuth2) *clientcredentials.Config {
	params := url.Values{}
	for k, v := range o.EndpointParams {
		params.Set(k, v)
	}
	if o.Audience != "" {
		params.Set("audience", o.Audience)
	}
	return &clientcredentials.Config{
		ClientID:       o.ClientID,
		ClientSecret:   o.ClientSecret,
		TokenURL:       o.TokenURL,
		Scopes:         append([]string(nil), o.Scopes...),
		EndpointParams: params,
	}
}

// RefreshAt is when tok, fetched at now, should be replaced: a tenth of its
// lifetime, at most a minute, before it expires; zero when it does not
// expire. A token expired when it arrived (a negative expires_in, or the
// token endpoint's clock ahead) serves until it is refused, and is replaced
// RefreshRetry later: not one token request per use.
func RefreshAt(tok *oauth2.Token, now time.Time) time.Time {
	if tok.Expiry.IsZero() {
		return time.Time{}
	}
	life := tok.Expiry.Sub(now)
	if life <= 0 {
		return now.Add(RefreshRetry)
	}
	return tok.Expiry.Add(-min(life/10, time.Minute))
}

// Due reports whether at (a token's refresh point or expiry) has come by
// now, by the wall clock or by the monotonic one, whichever says so first.
// A token's expiry is a time on the wall clock, which its audience checks
// it against; but times from time.Now compare by their monotonic readings,
// and the monotonic clock stands still while the machine is suspended (a VM
// paused and resumed): by it alone, a token refused since would be served
// for as long as the machine slept. The monotonic reading still counts when
// the wall clock is stepped back.
func Due(at, now time.Time) bool {
	return !now.Before(at) || !now.Round(0).Before(at.Round(0))
}

// Expiry is when tok expires: as its expires_in says, or, when the answer
// had none, as the exp claim says of an access token that is a JWT (RFC
// 7519; its signature is not checked, only the time is taken). A Kafka
// broker refuses an OAUTHBEARER token from its exp on, so a token cached
// without an expiry would serve until the bridge restarts. Zero when
// neither tells.
func Expiry(tok *oauth2.Token) time.Time {
	if !tok.Expiry.IsZero() {
		return tok.Expiry
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp >= 1<<40 { // not a NumericDate this side of year 30000
		return time.Time{}
	}
	return time.Unix(int64(exp), 0)
}

// Error words the error of a failed token request: the status, and the
// OAuth 2.0 error code and description quoted and clipped (the rest of the
// body is not repeated); any other error without the *url.Error wrapper,
// whose message holds the full token URL, query included.
func Error(err error) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		msg := "token endpoint answered"
		if re.Response != nil {
			msg += " " + strconv.Itoa(re.Response.StatusCode)
			if text := http.StatusText(re.Response.StatusCode); text != "" {
				msg += " " + text
			}
		}
		if code := excerpt.Quote([]byte(re.ErrorCode), errorText); code != "" {
			msg += ": " + code
			if d := excerpt.Quote([]byte(re.ErrorDescription), errorText); d != "" {
				msg += " (" + d + ")"
			}
		}
		return errors.New(msg)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
