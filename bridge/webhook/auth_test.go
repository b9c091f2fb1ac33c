package webhook

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/signing"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// waitFor polls cond until it holds, failing the test after limit. The limit
// only bounds a hang; nothing asserts how long anything took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeSecret(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBearerToken(t *testing.T) {
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.BearerToken = "static-token" })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer static-token" {
		t.Errorf("Authorization = %q", got)
	}
}

// The token file is read again when it changes; a 401 makes the target read
// it again at once and retry with the new token.
func TestBearerTokenFile(t *testing.T) {
	var mu sync.Mutex
	accept := "Bearer one"
	srv, reqs := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != accept {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	path := filepath.Join(t.TempDir(), "token")
	writeSecret(t, path, "one\n")
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.BearerTokenFile = path })

	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer one" {
		t.Fatalf("Authorization = %q", got)
	}

	// Rotated: a different size, so the change is seen whatever the clock.
	writeSecret(t, path, "token-two\n")
	mu.Lock()
	accept = "Bearer token-two"
	mu.Unlock()
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer token-two" {
		t.Fatalf("after rotation Authorization = %q", got)
	}

	// Rotated with the same size and modification time: the first request
	// gets a 401, the file is read again and the retry carries the new token.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	writeSecret(t, path, "token-3ee\n")
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	accept = "Bearer token-3ee"
	mu.Unlock()
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer token-two" {
		t.Fatalf("first attempt Authorization = %q, want the cached token", got)
	}
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer token-3ee" {
		t.Fatalf("retry Authorization = %q", got)
	}

	// The file is gone: a retryable failure that names the file, not the token.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = deliver(t, t.Context(), tg, record())
	if target.KindOf(err) != target.Retryable || !strings.Contains(err.Error(), "bearer_token_file") || strings.Contains(err.Error(), "token-3ee") {
		t.Fatalf("error %v, want a retryable bearer_token_file failure", err)
	}
}

func TestBearerTokenFileMissingAtStart(t *testing.T) {
	_, err := New(Options{Route: "r", Config: config.Webhook{URL: "https://h/x", BearerTokenFile: filepath.Join(t.TempDir(), "none")}})
	if err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
		t.Fatalf("New = %v, want a bearer_token_file error", err)
	}
}

// tokenServer is an OAuth 2.0 token endpoint issuing "tok-N" tokens that
// expire after expiresIn seconds (0: no expiry).
type tokenServer struct {
	*httptest.Server
	mu        sync.Mutex
	calls     int
	expiresIn int
	secret    string // the client secret it accepts
	forms     []map[string]string
}

func newTokenServer(t *testing.T, secret string, expiresIn int) *tokenServer {
	t.Helper()
	return startTokenServer(t, secret, expiresIn, (*httptest.Server).Start)
}

// startTokenServer is newTokenServer started by start (StartTLS: https).
func startTokenServer(t *testing.T, secret string, expiresIn int, start func(*httptest.Server)) *tokenServer {
	t.Helper()
	ts := &tokenServer{secret: secret, expiresIn: expiresIn}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		form := map[string]string{"client_id": id}
		for k := range r.PostForm {
			if k != "client_secret" {
				form[k] = r.PostForm.Get(k)
			}
		}
		ts.forms = append(ts.forms, form)
		w.Header().Set("Content-Type", "application/json")
		if id != "hookbridge" || secret != ts.secret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"bad credentials"}`))
			return
		}
		ts.calls++
		answer := map[string]any{"access_token": "tok-" + strconv.Itoa(ts.calls), "token_type": "bearer"}
		if ts.expiresIn != 0 {
			answer["expires_in"] = ts.expiresIn
		}
		_ = json.NewEncoder(w).Encode(answer)
	}))
	start(ts.Server)
	t.Cleanup(ts.Close)
	return ts
}

// refusingReceiver is a receiver that answers 401 to the Authorization
// values refused, and to those refuse adds later.
func refusingReceiver(t *testing.T, refused ...string) (*httptest.Server, <-chan request, func(...string)) {
	t.Helper()
	var mu sync.Mutex
	set := map[string]bool{}
	refuse := func(values ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range values {
			set[v] = true
		}
	}
	refuse(refused...)
	srv, reqs := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if set[r.Header.Get("Authorization")] {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	return srv, reqs, refuse
}

func (ts *tokenServer) issued() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.calls
}

func oauthConfig(ts *tokenServer, secret string) config.OAuth2 {
	return config.OAuth2{TokenURL: ts.URL + "/token", ClientID: "hookbridge", ClientSecret: secret}
}

func TestOAuth2CachesTheToken(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = oauthConfig(ts, "client-secret")
		o.Config.OAuth2.Scopes = []string{"hooks.write", "hooks.read"}
		o.Config.OAuth2.Audience = "https://receiver.example"
		o.Config.OAuth2.EndpointParams = map[string]string{"resource": "orders"}
	})
	for range 3 {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-1" {
			t.Fatalf("Authorization = %q", got)
		}
	}
	if n := ts.issued(); n != 1 {
		t.Fatalf("token endpoint issued %d tokens, want 1", n)
	}
	form := ts.forms[0]
	want := map[string]string{"client_id": "hookbridge", "grant_type": "client_credentials", "scope": "hooks.write hooks.read",
		"audience": "https://receiver.example", "resource": "orders"}
	for k, v := range want {
		if form[k] != v {
			t.Errorf("token request %s = %q, want %q", k, form[k], v)
		}
	}
}

// Concurrent requests without a token share one token request.
func TestOAuth2OneFetchForConcurrentRequests(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, _ := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() { _, errs[i] = deliver(t, t.Context(), tg, record()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.issued(); n != 1 {
		t.Fatalf("token endpoint issued %d tokens for concurrent requests, want 1", n)
	}
}

// A token that expires is replaced before it does: with expires_in 1 the
// target fetches again, and the receiver sees the new token.
func TestOAuth2RefreshesBeforeExpiry(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 1)
	var mu sync.Mutex
	seen := map[string]bool{}
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Authorization")] = true
		mu.Unlock()
	})
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	waitFor(t, 20*time.Second, "a second token to reach the receiver", func() bool {
		if _, err := deliver(t, t.Context(), tg, record()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen["Bearer tok-2"]
	})
	if !seen["Bearer tok-1"] || ts.issued() < 2 {
		t.Fatalf("receiver saw %v; token endpoint issued %d", seen, ts.issued())
	}
}

// A 401 from the receiver drops the token: the request is sent once more
// with a new one. A second 401 stands (retryable: the credentials', not the
// record's).
func TestOAuth2RefreshOn401(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	srv, reqs, refuse := refusingReceiver(t, "Bearer tok-1")
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = oauthConfig(ts, "client-secret") })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	first, retry := next(t, reqs), next(t, reqs)
	if first.header.Get("Authorization") != "Bearer tok-1" || retry.header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("requests carried %q then %q", first.header.Get("Authorization"), retry.header.Get("Authorization"))
	}
	if string(retry.body) != string(record().Value) || retry.header.Get("webhook-id") != first.header.Get("webhook-id") {
		t.Errorf("the retry is not the same request: body %q", retry.body)
	}

	refuse("Bearer tok-2", "Bearer tok-3")
	_, err := deliver(t, t.Context(), tg, record())
	wantKind(t, err, target.Retryable, http.StatusUnauthorized) // the credentials', not the record's
	next(t, reqs)
	next(t, reqs)
	select {
	case r := <-reqs:
		t.Fatalf("a third request was sent: %q", r.header.Get("Authorization"))
	default:
	}
}

// The client secret file is read at every token request, so it can be
// rotated; a refused client is a retryable failure that shows no secret.
func TestOAuth2ClientSecretFile(t *testing.T) {
	ts := newTokenServer(t, "secret-one", 3600)
	srv, reqs, refuse := refusingReceiver(t)
	path := filepath.Join(t.TempDir(), "client-secret")
	writeSecret(t, path, "secret-one\n")
	cfg := config.OAuth2{TokenURL: ts.URL, ClientID: "hookbridge", ClientSecretFile: path}
	tg := newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = cfg })
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	next(t, reqs)

	// Rotated: the receiver refuses the old token, the target fetches a new
	// one with the secret now in the file.
	writeSecret(t, path, "secret-two\n")
	ts.mu.Lock()
	ts.secret = "secret-two"
	ts.mu.Unlock()
	refuse("Bearer tok-1")
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatalf("after rotating the client secret: %v", err)
	}
	next(t, reqs)
	if got := next(t, reqs).header.Get("Authorization"); got != "Bearer tok-2" {
		t.Fatalf("Authorization = %q", got)
	}

	// The endpoint refuses the client: a retryable failure naming the
	// endpoint's answer, never the secret.
	ts.mu.Lock()
	ts.secret = "secret-three"
	ts.mu.Unlock()
	tg = newTarget(t, srv.URL, func(o *Options) { o.Config.OAuth2 = cfg })
	_, err := deliver(t, t.Context(), tg, record())
	if target.KindOf(err) != target.Retryable {
		t.Fatalf("error %v, want retryable", err)
	}
	for _, s := range []string{"secret-two", "secret-three"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows the client secret: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "401") {
		t.Errorf("error %q does not say what the token endpoint answered", err)
	}
	select {
	case r := <-reqs:
		t.Fatalf("the receiver saw a request without a token: %q", r.header.Get("Authorization"))
	default:
	}
}

func TestSigningSecretsFile(t *testing.T) {
	inline := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	fromFile := secretOfLen(t, 32)
	path := filepath.Join(t.TempDir(), "secrets")
	writeSecret(t, path, "# rotated 2025-01-01\n\n  "+fromFile+"  \n")
	srv, reqs := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.SigningSecrets = []string{inline}
		o.Config.SigningSecretsFile = path
	})
	if _, err := deliver(t, t.Context(), tg, record()); err != nil {
		t.Fatal(err)
	}
	r := next(t, reqs)
	sigs := strings.Fields(r.header.Get("webhook-signature"))
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature %q, want two signatures", r.header.Get("webhook-signature"))
	}
	for _, s := range []string{inline, fromFile} {
		key, err := signing.ParseSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.Verify([][]byte{key}, r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"),
			r.header.Get("webhook-signature"), r.body, fixedNow, 0); err != nil {
			t.Errorf("a secret does not verify: %v", err)
		}
	}

	writeSecret(t, path, "# nothing but comments\n")
	_, err := New(Options{Route: "r", Config: config.Webhook{URL: srv.URL, SigningSecretsFile: path}})
	if err == nil || !strings.Contains(err.Error(), "signing_secrets_file") {
		t.Fatalf("New = %v, want a signing_secrets_file error", err)
	}
	bad := fromFile[:6+20] // 15 bytes: too short
	writeSecret(t, path, bad+"\n")
	_, err = New(Options{Route: "r", Config: config.Webhook{URL: srv.URL, SigningSecretsFile: path}})
	if err == nil || strings.Contains(err.Error(), bad[6:]) {
		t.Fatalf("New = %v, want an error that does not show the secret", err)
	}
}

// secretOfLen is a whsec_ secret of n bytes.
func secretOfLen(t *testing.T, n int) string {
	t.Helper()
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", n)))
}

// User info in the URL is sent as HTTP Basic authentication, as curl and
// net/http's Client send it, on plain HTTP and over TLS; nothing else of it
// goes out, and no error or log shows the password.
func TestURLCredentialsAreBasicAuth(t *testing.T) {
	type seen struct {
		user, pass string
		ok         bool
		uri        string
	}
	got := make(chan seen, 4)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got <- seen{u, p, ok, r.RequestURI}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	plain, secure := httptest.NewServer(handler), httptest.NewTLSServer(handler)
	t.Cleanup(plain.Close)
	t.Cleanup(secure.Close)
	for _, srv := range []*httptest.Server{plain, secure} {
		u, _ := url.Parse(srv.URL)
		u.User, u.Path, u.RawQuery = url.UserPassword("svc", "p@ss:w0rd"), "/hook", "a=1"
		var logs bytes.Buffer
		tg := newTarget(t, u.String(), func(o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			if srv == secure {
				o.Transport = srv.Client().Transport // trusts the test certificate
			}
		})
		_, err := deliver(t, t.Context(), tg, record())
		wantKind(t, err, target.Retryable, 503)
		s := <-got
		if !s.ok || s.user != "svc" || s.pass != "p@ss:w0rd" || s.uri != "/hook?a=1" {
			t.Errorf("%s: Basic %v %q:%q, request URI %q", srv.URL, s.ok, s.user, s.pass, s.uri)
		}
		if strings.Contains(err.Error()+logs.String(), "w0rd") {
			t.Errorf("%s: the password shows in %q or the log", srv.URL, err)
		}
	}
}

func TestAuthConflicts(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Webhook
		msg  string
	}{
		{"two sources", config.Webhook{BearerToken: "a", OAuth2: config.OAuth2{TokenURL: "http://t", ClientID: "c", ClientSecret: "s"}}, "only one of"},
		{"authorization header", config.Webhook{BearerToken: "a", Headers: map[string]string{"authorization": "Basic x"}}, "Authorization conflicts"},
		{"control character", config.Webhook{BearerToken: "a\nb"}, "control character"},
		{"url credentials and a token", config.Webhook{URL: "https://u:p@h/x", BearerToken: "a"}, "only one of url credentials"},
		{"url credentials and a header", config.Webhook{URL: "https://u:p@h/x", Headers: map[string]string{"Authorization": "Basic x"}}, "Authorization conflicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.URL == "" {
				tt.cfg.URL = "https://h/x"
			}
			_, err := New(Options{Route: "r", Config: tt.cfg})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.msg)
			}
		})
	}
}

// A token endpoint that answers with a redirect is not followed: a 307 or
// 308 would have the client secret (in the form, or as basic auth a
// redirect to another host drops but the form keeps) sent again to wherever
// it points. The answer is the token request's failure, retryable, and the
// other host hears nothing.
func TestOAuth2TokenRedirectIsNotFollowed(t *testing.T) {
	ts := newTokenServer(t, "client-secret", 3600)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	srv, _ := receiver(t, nil)
	tg := newTarget(t, srv.URL, func(o *Options) {
		o.Config.OAuth2 = oauthConfig(ts, "client-secret")
		o.Config.OAuth2.TokenURL = redirect.URL + "/token"
	})
	_, err := deliver(t, t.Context(), tg, record())
	if err == nil || target.KindOf(err) != target.Retryable {
		t.Fatalf("delivery with a redirecting token endpoint: %v, want a retryable failure", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d token requests, the client secret with them", n)
	}
}
