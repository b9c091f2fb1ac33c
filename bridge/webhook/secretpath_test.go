package webhook

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/target"
)

// A URL whose path is its secret (secret_path, or a Slack, Discord or Teams
// host) shows as scheme://host/REDACTED-<fingerprint> in every error, and
// so in logs and dead-letter headers, while the request still goes to the
// real path.
func TestSecretPathIsNotShown(t *testing.T) {
	const secret = "T0001/B0002/XXXXsecretXXXX"
	srv, reqs := receiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("down"))
	})
	yes := true
	tg := newTarget(t, srv.URL+"/services/"+secret+"?token=q", func(o *Options) { o.Config.SecretPath = &yes })
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, 500)
	if got := next(t, reqs); got.path != "/services/"+secret {
		t.Fatalf("request path %q, want the configured one", got.path)
	}
	msg := err.Error()
	if strings.Contains(msg, "secret") || strings.Contains(msg, "services") {
		t.Errorf("error %q shows the secret path", msg)
	}
	if !strings.HasPrefix(msg, "webhook: POST "+srv.URL+"/REDACTED-") {
		t.Errorf("error %q does not name the host and the path's fingerprint", msg)
	}
}
