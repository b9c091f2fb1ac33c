package config

import (
	"strings"
	"testing"
)

func TestShownURL(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name   string
		url    string
		secret *bool
		want   string // "" when the path is hidden: then the shown URL is checked for the form
	}{
		{name: "plain", url: "https://billing.internal/hooks/orders?token=q", want: "https://billing.internal/hooks/orders"},
		{name: "user info", url: "https://u:p@billing.internal/hooks", want: "https://billing.internal/hooks"},
		{name: "slack", url: "https://hooks.slack.com/services/T01/B02/secret"},
		{name: "slack, told not secret", url: "https://hooks.slack.com/services/T01/B02/secret", secret: &no,
			want: "https://hooks.slack.com/services/T01/B02/secret"},
		{name: "discord", url: "https://discord.com/api/webhooks/123/secret"},
		{name: "discord, versioned", url: "https://discordapp.com/api/v10/webhooks/123/secret"},
		{name: "discord, not a webhook", url: "https://discord.com/api/users/secret", want: "https://discord.com/api/users/secret"},
		{name: "teams", url: "https://contoso.webhook.office.com/webhookb2/secret"},
		{name: "told secret", url: "http://127.0.0.1:8080/in/secret", secret: &yes},
		{name: "told secret, no path", url: "http://127.0.0.1:8080", secret: &yes, want: "http://127.0.0.1:8080"},
		{name: "unparsable", url: "http://h/%zz", want: "webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Webhook{URL: tt.url, SecretPath: tt.secret}
			got := w.ShownURL()
			if tt.want != "" {
				if got != tt.want {
					t.Errorf("ShownURL() = %q, want %q", got, tt.want)
				}
				return
			}
			host := tt.url[:strings.Index(tt.url[len("https://"):], "/")+len("https://")]
			if !strings.HasPrefix(got, host+"/REDACTED-") || len(got) != len(host)+len("/REDACTED-")+8 || strings.Contains(got, "secret") {
				t.Errorf("ShownURL() = %q, want %s/REDACTED-<8 hex digits>", got, host)
			}
		})
	}
	a := (&Webhook{URL: "https://hooks.slack.com/services/T01/B02/one"}).ShownURL()
	b := (&Webhook{URL: "https://hooks.slack.com/services/T01/B02/two"}).ShownURL()
	if a == b {
		t.Errorf("two secret paths of a host show the same: %q", a)
	}
}

// The default is filled in when the file is loaded: what validation and
// the running bridge see.
func TestSecretPathDefault(t *testing.T) {
	for url, want := range map[string]bool{
		"https://hooks.slack.com/services/T01/B02/secret": true,
		"https://billing.internal/hooks":                  false,
	} {
		w := &Webhook{URL: url}
		w.applyDefaults()
		if w.SecretPath == nil || *w.SecretPath != want {
			t.Errorf("%s: secret_path default %v, want %v", url, w.SecretPath, want)
		}
	}
}
