package webhook

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/dispatch"
	"github.com/hookbridge/hookbridge/bridge/internal/excerpt"
	"github.com/hookbridge/hookbridge/bridge/internal/keypair"
	"github.com/hookbridge/hookbridge/bridge/internal/logevery"
	"github.com/hookbridge/hookbridge/bridge/internal/memo"
	"github.com/hookbridge/hookbridge/bridge/signing"
	"github.com/hookbridge/hookbridge/bridge/target"
)

// DefaultTimeout bounds one request, response body included, when
// config.Webhook.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MaxResponseBody is the most of a response body the target reads. Without
// reply capture the rest of a longer body is dropped with its connection;
// with capture a longer 2xx body is a permanent failure.
const MaxResponseBody = 1 << 20

// Connection pool of one Target. A route sends to one host, so the per-host
// limit is the pool: it keeps a connection per record in flight for routes up
// to this concurrency instead of dialling anew (Go's default keeps 2).
const (
	maxIdleConns          = 256
	idleConnTimeout       = 90 * time.Second
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	maxResponseHeaderSize = 1 << 20
)

// errorBodySnippet is how much of a failed response's body an error quotes.
const errorBodySnippet = 200

// Options configure a Target.
type Options struct {
	// Route is the name of the route the target serves; it labels logs.
	Route string
	// Group is the route's consumer group; it labels logs.
	Group string
	// Config is the route's webhook configuration. URL is required.
	Config config.Webhook
	// Version is the bridge version, sent as User-Agent: hookbridge/<Version>.
	// Default "" sends User-Agent: hookbridge.
	Version string
	// CaptureReply turns a non-empty 2xx response body into the delivery's
	// single output record (see Target.Deliver). Set it when the route has a
	// reply topic. Default false: the body is read and dropped.
	CaptureReply bool
	// Logger receives debug messages. Default: logs are discarded.
	Logger *slog.Logger
	// Transport replaces the pooled transport the target builds, for tests.
	// It is still wrapped for tracing. Default nil: the target's own.
	Transport http.RoundTripper
	// Now is the clock of webhook-timestamp and Retry-After dates.
	// Default time.Now.
	Now func() time.Time
	// Limiter, when set, paces requests: each waits for a token first. It is
	// shared by every route that posts to the same URL.
	Limiter *rate.Limiter
	// RateLimited, when set, is told of every wait the limiter imposed,
	// when it ends, with the time waited: a wait cut short by the stop or
	// the delivery's context counts as long as it lasted.
	RateLimited func(waited time.Duration)
}

// Target POSTs records to one webhook URL, one record per request. It holds
// one pooled HTTP client; Deliver is safe for concurrent use.
//
// Redirects are not followed: a 3xx answer is a permanent failure, as the
// contract allows no redirect and a receiver that moved must be reconfigured.
type Target struct {
	url            string // as configured; requests go here
	safeURL        string // for errors and spans: no user info, no query, no secret path (config.Webhook.ShownURL)
	timeout        time.Duration
	client         http.RoundTripper
	idle           interface{ CloseIdleConnections() } // the pool under the tracing wrapper
	signer         *signing.Signer
	headers        http.Header      // configured headers, canonical names
	now            func() time.Time // Options.Now; nil: the real clock (see timeNow)
	log            *slog.Logger
	capture        bool
	forwardHeaders bool
	userAgent      string
	limiter        *rate.Limiter
	rateLimited    func(time.Duration)
	batch          *batcher      // nil in single-record mode
	clientCert     *keypair.Pair // tls.cert_file and key_file; nil: none
	// refused throttles the line of a batch refused as a whole: a receiver
	// that refuses every batch (a schema it no longer accepts) would
	// otherwise log one per batch for as long as it does.
	refused logevery.Throttle

	// The configured fields but Content-Type as header lines, whether they
	// hold a User-Agent, and the Content-Type of records without one (the
	// configured one, or application/octet-stream): the only contract
	// fields that may be configured.
	headerLines  []byte
	configuredUA bool
	contentType  string
	sources      memo.Last // see ceSource

	spans *tracingTransport // the client spans of requests (t.client is one)
	// The direct path (see deliverDirect), when direct is not nil: the
	// connection pool, its address for the URL, and the request line and
	// Host field of every request.
	direct *h1Transport
	addr   string
	head   string
}

var (
	_ target.Target = (*Target)(nil)
	_ target.Closer = (*Target)(nil)
)

// New builds the target of one route. It checks the URL, the signing secrets
// and the configured headers, reporting every problem at once; no error
// contains a secret, a header value or the URL's query. It starts no
// goroutines and opens no connections.
func New(opts Options) (*Target, error) {
	cfg := opts.Config
	var errs []error

	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		errs = append(errs, errors.New("url is required"))
	case err != nil:
		errs = append(errs, errors.New("url does not parse"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url scheme %q: want http or https", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("url has no host"))
	}

	var signer *signing.Signer
	secrets, serr := cfg.SigningSecretsFrom()
	if serr != nil {
		errs = append(errs, fmt.Errorf("signing_secrets_file: %w", serr))
	} else if len(secrets) > 0 {
		if signer, err = signing.NewSigner(secrets); err != nil {
			errs = append(errs, fmt.Errorf("signing_secrets: %w", err))
		}
	}

	headers := make(http.Header, len(cfg.Headers))
	for name, value := range cfg.Headers {
		switch {
		case !validToken(name):
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", name))
		case reservedHeader(name):
			errs = append(errs, fmt.Errorf("headers: %q is set by the bridge and cannot be configured", name))
		case !validHeaderValue(value):
			errs = append(errs, fmt.Errorf("headers: the value of %q holds a control character", name))
		default:
			headers.Set(name, value)
		}
	}

	if cfg.Batch.MaxMessages > 0 && opts.CaptureReply {
		errs = append(errs, errBatchReply)
	}

	sec, secErrs := newSecurity(cfg)
	errs = append(errs, secErrs...)

	if len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("webhook: route %q: %w", opts.Route, e)
		}
		return nil, errors.Join(errs...)
	}

	bare := *u
	bare.User = nil // sent as an Authorization header (newCredential)
	t := &Target{
		url:            bare.String(),
		safeURL:        cfg.ShownURL(),
		timeout:        cfg.Timeout.D(),
		signer:         signer,
		headers:        headers,
		now:            opts.Now,
		log:            opts.Logger,
		capture:        opts.CaptureReply,
		forwardHeaders: cfg.ForwardHeaders == nil || *cfg.ForwardHeaders,
		userAgent:      "hookbridge",
		limiter:        opts.Limiter,
		rateLimited:    opts.RateLimited,
	}
	t.clientCert = sec.cert
	t.headerLines = headerLines(headers)
	t.configuredUA, t.contentType = headers.Get("User-Agent") != "", headers.Get("Content-Type")
	if t.contentType == "" {
		t.contentType = defaultContentType
	}
	if t.timeout <= 0 {
		t.timeout = DefaultTimeout
	}
	if cfg.Batch.MaxMessages > 0 {
		t.batch = newBatcher(t, cfg.Batch)
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With(slog.String("route", opts.Route), slog.String("group", opts.Group))
	if opts.Version != "" {
		t.userAgent += "/" + opts.Version
	}

	base := opts.Transport
	switch {
	case base != nil:
	case u.Scheme == "http" && sec.proxy == nil && isASCII(u.Host):
		h1 := newH1Transport(sec.dialContext())
		base = h1
		if sec.auth == nil && validHeaderValue(u.Host) {
			t.direct, t.addr = h1, canonicalAddr(u)
			t.head = "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
		}
	default:
		tr := newTransport()
		sec.configure(tr)
		base = &h2Replay{next: tr}
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		t.idle = c
		if t.clientCert != nil {
			// A renewed client certificate: the pooled connections still
			// send the one before. Close them now, and once more when the
			// requests in flight now have ended (see clientCertProblem).
			t.clientCert.OnChange(func() {
				c.CloseIdleConnections()
				time.AfterFunc(2*t.timeout, c.CloseIdleConnections)
			})
		}
	}
	// Requests go straight to the round tripper, not through an
	// http.Client: redirects are never followed (a 3xx comes back as is),
	// there are no cookies, the context bounds the request, and the client's
	// per-request header copy for redirects is saved. The client span is a
	// child of the span in the request's context; the global propagator
	// injects its traceparent (nothing when none is set).
	_, port, _ := net.SplitHostPort(canonicalAddr(u))
	t.spans = newTracingTransport(sec.wrap(base, t.pace, t.resign), t.safeURL, u.Hostname(), port)
	t.client = t.spans
	return t, nil
}

// newTransport is the pooled transport of one Target. It takes no proxy from
// the environment: a proxy would bypass address checks made when dialling.
// It asks for no compression (net/http would add Accept-Encoding: gzip and
// decode the answer): a request carries the contract's fields only, and an
// answer is read as sent, as on the direct path. The webhook's tls, proxy
// and deny_private_networks settings are applied to it afterwards (see
// security.configure).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:              nil,
		DisableCompression: true,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConns,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderSize,
	}
}

// resign sets the webhook-timestamp of a request with header h and body to
// now, and signs it again: the request is sent again after a 401.
func (t *Target) resign(h http.Header, body []byte) {
	ts := t.timeNow().Unix()
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	if t.signer != nil {
		h.Set(HeaderWebhookSignature, t.signer.Header(h.Get(HeaderWebhookID), ts, body))
	}
}

// timeNow is the time of webhook-timestamp and of Retry-After dates:
// Options.Now when given, else the real time.
func (t *Target) timeNow() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Deliver POSTs the record (README.md, "The webhook contract") and classifies the answer:
//
//   - 2xx: delivered. With CaptureReply a non-empty body (at most
//     MaxResponseBody bytes) becomes the one output, with the response's
//     Content-Type as its content-type header; an empty body gives no output;
//     a longer body is a Permanent failure ("reply body over 1 MiB"), since
//     truncating it would produce a corrupt reply.
//   - 408, 429, 5xx, 401, 403, 407, connection errors and the request timeout:
//     Retryable, with Retry-After (seconds or an HTTP date) as the error's
//     RetryAfter.
//   - 410: Gone.
//   - 3xx (not followed) and other 4xx: Permanent; but a 4xx is Retryable
//     while the client certificate (tls.cert_file) is expired or not yet
//     valid, and the error says so.
//   - a dial refused by deny_private_networks (a *BlockedAddressError):
//     Permanent, since a security setting does not heal by retrying, unless
//     an allowed address of the name was dialled too (the receiver is down).
//
// Failures are *target.Error values carrying the HTTP status. When ctx is
// canceled the error wraps context.Canceled instead, so that target.KindOf
// reports Canceled; when ctx's deadline passes it is Retryable, like the
// request timeout. Error messages name the URL without user info or query.
func (t *Target) Deliver(ctx context.Context, d *target.Delivery) (*target.Result, error) {
	if d == nil || d.Record == nil {
		return nil, target.NewPermanent(errors.New("webhook: delivery without a record"))
	}
	if ctx.Err() != nil {
		return nil, t.contextError(ctx, nil)
	}
	if t.batch != nil {
		return t.batch.deliver(ctx, d)
	}
	if err := t.pace(ctx); err != nil {
		return nil, err
	}
	if t.direct != nil {
		return t.deliverDirect(ctx, d)
	}
	rec := d.Record
	// Room for every header at once (the contract's, the configured ones,
	// the record's and the trace context), so the map never grows. It is
	// built before the request's time starts (see deliverDirect).
	header := make(http.Header, headerRoom+len(t.headers)+2*len(rec.Headers))
	t.header(ctx, &mapSink{h: header}, rec, d.Attempt, t.timeNow().Unix())

	reqCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, t.url, bytes.NewReader(rec.Value))
	if err != nil {
		return nil, target.NewPermanent(fmt.Errorf("webhook: POST %s: %w", t.safeURL, unwrapURLError(err)))
	}
	req.Header = header
	markReplayable(req)

	resp, err := t.client.RoundTrip(req)
	if err != nil {
		return nil, t.failure(ctx, reqCtx, 0, err)
	}
	defer resp.Body.Close()
	return t.response(ctx, reqCtx, resp)
}

// markReplayable lets net/http send req once more, on a new connection,
// when a reused connection fails before any answer (the receiver closed it
// as the request went out), as the direct path does: an Idempotency-Key
// entry with no value marks a POST replayable and is not sent. A delivery
// may reach the receiver twice anyway; webhook-id is what it dedupes on.
// An Idempotency-Key the route's headers configure is kept: it marks the
// request by itself, and is sent.
func markReplayable(req *http.Request) {
	if _, ok := req.Header["Idempotency-Key"]; !ok {
		req.Header["Idempotency-Key"] = nil
	}
}

// pace waits for the rate limiter's token, if there is a limiter. Like a
// retry backoff, the wait ends when the bridge begins to stop (see
// dispatch.WithStop): nothing was sent, and the record, canceled, is
// delivered again after the restart instead of holding the shutdown.
func (t *Target) pace(ctx context.Context) error {
	if t.limiter == nil {
		return nil
	}
	r := t.limiter.Reserve()
	wait := r.Delay()
	if wait == 0 {
		return nil
	}
	if t.rateLimited != nil {
		start := time.Now()
		defer func() { t.rateLimited(time.Since(start)) }()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return t.contextError(ctx, nil)
	case <-dispatch.Stopping(ctx):
		r.Cancel()
		// Canceled, as ErrStopping is.
		return fmt.Errorf("webhook: POST %s: not sent: waiting for rate_limit when the bridge began to stop: %w", t.safeURL, dispatch.ErrStopping)
	}
}

// Close closes the idle connections of the pool and logs the refused
// batches counted and not logged yet. Call it after the last Deliver
// returned; it does not wait for anything.
func (t *Target) Close(ctx context.Context) error {
	t.refused.Close()
	if t.idle != nil {
		t.idle.CloseIdleConnections()
	}
	return nil
}

// response classifies an answer and reads (at most MaxResponseBody of) its
// body, so that the connection can be reused.
func (t *Target) response(ctx, reqCtx context.Context, resp *http.Response) (*target.Result, error) {
	status := resp.StatusCode
	if status < 200 {
		// net/http reads the other 1xx answers itself and returns 101
		// Switching Protocols, whose body is then the connection itself,
		// which neither the request's timeout nor its context bounds any
		// more: it is closed unread (the caller closes the body).
		return nil, &target.Error{Kind: target.Retryable, Status: status,
			Err: fmt.Errorf("webhook: POST %s: unexpected %s", t.safeURL, statusText(status))}
	}
	if status >= 200 && status < 300 {
		if !t.capture {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBody))
			return &target.Result{}, nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
		if err != nil {
			return nil, t.failure(ctx, reqCtx, status, fmt.Errorf("reading the reply: %w", err))
		}
		if len(body) > MaxResponseBody {
			return nil, &target.Error{
				Kind:   target.Permanent,
				Status: status,
				Err:    fmt.Errorf("webhook: POST %s: %s: reply body over 1 MiB", t.safeURL, statusText(status)),
			}
		}
		if len(body) == 0 {
			return &target.Result{}, nil
		}
		out := target.Output{Value: body}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			out.Headers = []target.Header{{Key: recordContentType, Value: []byte(ct)}}
		}
		return &target.Result{Outputs: []target.Output{out}}, nil
	}

	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if refusesCredentials(status) {
		body = nil // it may quote the credential refused: not shown
	}
	e := &target.Error{Kind: classify(status), Status: status}
	e.Err = fmt.Errorf("webhook: POST %s: %s%s", t.safeURL, statusText(status), snippet(body))
	if problem := t.clientCertProblem(); problem != "" && status >= 400 && status < 500 {
		// A receiver that checks client certificates refuses this one, and
		// may do so after the handshake with a bare 400 (nginx's "The SSL
		// certificate error"): the bridge's credential is refused, not the
		// record, as with a 401. Retryable, so that the breaker pauses the
		// route instead of dead-lettering every record until the
		// certificate is renewed.
		if e.Kind == target.Permanent {
			e.Kind = target.Retryable
		}
		e.Err = fmt.Errorf("webhook: POST %s: %s%s; %s", t.safeURL, statusText(status), snippet(body), problem)
	}
	if e.Kind == target.Retryable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), t.timeNow())
	}
	return nil, e
}

// classify maps a non-2xx status to the kind of failure. 401 and 403 refuse
// the bridge's credentials, not the record: retryable, and counted against
// the breaker, so that a revoked token or a key rotation pauses the route
// instead of dead-lettering every record. So does 407, a proxy refusing the
// bridge's proxy credentials (a forward proxy answers an http:// webhook's
// request itself; for an https:// one the refused CONNECT is a connection
// error, retryable too).
func classify(status int) target.Kind {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500,
		refusesCredentials(status):
		return target.Retryable
	case status == http.StatusGone:
		return target.Gone
	case status >= 300 && status < 500:
		return target.Permanent
	}
	return target.Retryable // 1xx as a final answer: a broken receiver, try again
}

// refusesCredentials reports whether status refuses the bridge's credentials
// (401, 403, or a proxy's 407) rather than the record. Such an answer's body
// is not quoted: it may echo the credential.
func refusesCredentials(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusProxyAuthRequired
}

// failure classifies an error that left no status to go by (or, with status
// set, one that happened while reading a 2xx body). A final 101, which the
// bridge's HTTP/1.1 client refuses as an error, keeps its status.
func (t *Target) failure(ctx, reqCtx context.Context, status int, err error) error {
	err = unwrapURLError(err)
	if status == 0 && errors.Is(err, errSwitchingProtocols) {
		status = http.StatusSwitchingProtocols
	}
	if ctx.Err() != nil {
		return t.contextError(ctx, err)
	}
	msg := "webhook: POST %s: %w"
	if timedOut(reqCtx, err) {
		msg = "webhook: POST %s: no response within " + t.timeout.String() + ": %w"
		if !errors.Is(err, context.DeadlineExceeded) {
			err = &timeoutError{err}
		}
	}
	e := fmt.Errorf(msg, t.safeURL, err)
	if problem := t.clientCertProblem(); problem != "" {
		e = fmt.Errorf("%w; %s", e, problem) // a receiver may refuse it in the handshake with a vague alert
	}
	return &target.Error{Kind: failureKind(err), Status: status, Err: e}
}

// clientCertProblem says why the client certificate (tls.cert_file) is not
// valid now, as the receiver's TLS stack would judge it, or "" when it is,
// or when there is none. The files are loaded again when they change, so a
// renewed certificate ends the problem; one that does not load is named.
//
// A connection opened before a renewal keeps the certificate it was opened
// with: after one, a certificate that was not valid is still reported for
// twice the request timeout, by which time the connections in use then
// have ended or gone back to the pool, which New has closed by then.
func (t *Target) clientCertProblem() string {
	if t.clientCert == nil {
		return ""
	}
	now := time.Now() // the handshake's clock, not Options.Now
	if problem := certProblem(t.clientCert.Leaf(), now); problem != "" {
		if err := t.clientCert.Err(); err != nil {
			problem += "; the files on disk do not load: " + err.Error()
		}
		return problem
	}
	if prev, at := t.clientCert.Renewal(); prev != nil && now.Sub(at) < 2*t.timeout {
		if problem := certProblem(prev, now); problem != "" {
			return problem + "; renewed on disk at " + at.UTC().Format(time.RFC3339) + ", which new connections send"
		}
	}
	return ""
}

// certProblem says why c is not valid at now, or "" when it is.
func certProblem(c *x509.Certificate, now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return "the client certificate (tls.cert_file) expired at " + c.NotAfter.UTC().Format(time.RFC3339) + "; renew it"
	case now.Before(c.NotBefore):
		return "the client certificate (tls.cert_file) is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// contextError reports that the caller's context ended: canceled (KindOf
// gives Canceled) or past its deadline (Retryable, like a timeout).
func (t *Target) contextError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("webhook: POST %s: %w", t.safeURL, ctx.Err())
	}
	if err == nil {
		err = ctx.Err()
	}
	return &target.Error{Kind: target.Retryable, Err: fmt.Errorf("webhook: POST %s: %w", t.safeURL, err)}
}

// unwrapURLError drops the *url.Error wrapper the client adds, whose message
// holds the full URL, query included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP date, into
// a wait from now; 0 when absent, malformed or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxSecs = uint64(1<<63-1) / uint64(time.Second)
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(secs, maxSecs)) * time.Second
	} else if errors.Is(err, strconv.ErrRange) {
		return time.Duration(maxSecs) * time.Second // digits only, more than any wait
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// statusText renders "503 Service Unavailable" from the code alone; the
// receiver's reason phrase is not trusted.
func statusText(status int) string {
	if text := http.StatusText(status); text != "" {
		return strconv.Itoa(status) + " " + text
	}
	return strconv.Itoa(status)
}

// snippet quotes the start of a failed response's body for the error message
// (and so the dead-letter headers), after ": ".
func snippet(body []byte) string {
	if q := excerpt.Quote(body, errorBodySnippet); q != "" {
		return ": " + q
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
