package kafka

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// The OAUTHBEARER token request ignores HTTP_PROXY and HTTPS_PROXY, as every
// request Hookbridge makes does unless asked (docs/security.md#proxies): a
// proxy meant for other programs must not get the client secret, nor decide
// whether the identity provider can be reached. net/http reads the
// environment once per process, so the request is made by a child process
// of this test with the proxy in its environment.
func TestOAuthBearerTokenRequestIgnoresEnvironmentProxy(t *testing.T) {
	if os.Getenv("HOOKBRIDGE_TEST_ENV_PROXY_CHILD") != "" {
		p := newTokenProvider(config.OAuth2{TokenURL: "http://idp.hookbridge.invalid/token", ClientID: "hookbridge", ClientSecret: "client-secret"}, nil)
		_, _ = p.Token() // fails without the proxy: the host does not resolve
		return
	}
	var mu sync.Mutex
	var through []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		through = append(through, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"from-the-proxy","token_type":"bearer","expires_in":3600}`))
	}))
	t.Cleanup(proxy.Close)

	cmd := exec.Command(os.Args[0], "-test.run=^TestOAuthBearerTokenRequestIgnoresEnvironmentProxy$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOOKBRIDGE_TEST_ENV_PROXY_CHILD=1",
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL, "NO_PROXY=", "no_proxy=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(through) > 0 {
		t.Errorf("the token request went through the environment's proxy: %q", through)
	}
}
