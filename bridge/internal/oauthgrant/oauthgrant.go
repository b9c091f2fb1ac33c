// Package oauthgrant holds what the two users of the OAuth 2.0
// client-credentials grant share: a webhook's oauth2 block and Kafka's SASL
// OAUTHBEARER. It makes the grant from the configuration, says when a token
// is due for refresh, and words the error of a failed token request.
package oauthgrant

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
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
