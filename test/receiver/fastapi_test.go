package receiver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/sdk/webhook"
	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// Environment of the e2e tier (test/e2e.sh sets them).
const (
	envPython     = "HOOKBRIDGE_TEST_PYTHON"      // python of the venv test/python/setup.sh makes
	envJaeger     = "HOOKBRIDGE_TEST_JAEGER"      // optional: Jaeger query API host:port
	envJaegerOTLP = "HOOKBRIDGE_TEST_JAEGER_OTLP" // optional: OTLP/gRPC URL of that Jaeger
)

// e2ePython returns the venv's python, or skips the test unless Kafka is
// configured too.
func e2ePython(t *testing.T) string {
	t.Helper()
	if os.Getenv(testkit.EnvKafka) == "" {
		testkit.E2ESkipf(t, "FastAPI receiver e2e test: set %s (Kafka brokers) and %s (python of a venv with "+
			"examples/receiver-fastapi/requirements.txt, made by test/python/setup.sh); `make e2e` does both",
			testkit.EnvKafka, envPython)
	}
	return fastAPIPython(t)
}

// fastAPIPython returns the venv's python, or skips the test: for tests of
// the app alone, without Kafka.
func fastAPIPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv(envPython)
	if py == "" {
		testkit.E2ESkipf(t, "FastAPI receiver test: set %s (python of a venv with "+
			"examples/receiver-fastapi/requirements.txt, made by test/python/setup.sh); `make e2e` does", envPython)
	}
	return py
}

// ---- the FastAPI app ---------------------------------------------------------

// fastAPI is examples/receiver-fastapi/app.py running under uvicorn.
type fastAPI struct {
	url string
	cmd *exec.Cmd
	log *testkit.LockedBuffer
}

// fastAPIStats is what GET /stats answers.
type fastAPIStats struct {
	Requests        int              `json:"requests"`
	Rejected        int              `json:"rejected"`
	Batches         int              `json:"batches"`
	MaxBatch        int              `json:"max_batch"`
	Received        int              `json:"received"`
	Accepted        int              `json:"accepted"`
	Duplicates      int              `json:"duplicates"`
	Failed          int              `json:"failed"`
	OrderViolations int              `json:"order_violations"`
	Keys            int              `json:"keys"`
	Order           map[string][]int `json:"order"`
}

// startFastAPI runs uvicorn with the app on a free loopback port, with env
// added to the test's environment, and waits for GET /healthz. It is
// stopped at the end of the test (SIGTERM, then SIGKILL), by its PID.
func startFastAPI(t *testing.T, python string, env ...string) *fastAPI {
	return startFastAPIWith(t, python, nil, env...)
}

// startFastAPIWith is startFastAPI with more uvicorn arguments.
func startFastAPIWith(t *testing.T, python string, args []string, env ...string) *fastAPI {
	t.Helper()
	dir, err := filepath.Abs("../../examples/receiver-fastapi")
	if err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreePort(t)
	host, port, _ := strings.Cut(addr, ":")
	a := &fastAPI{url: "http://" + addr, log: &testkit.LockedBuffer{}}
	a.cmd = exec.Command(python, append([]string{"-m", "uvicorn", "app:app", "--app-dir", dir, "--host", host, "--port", port,
		"--log-level", "warning", "--no-access-log"}, args...)...)
	a.cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "ORDER_LOG=1")
	if otlp := os.Getenv(envJaegerOTLP); otlp != "" {
		a.cmd.Env = append(a.cmd.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp)
	}
	a.cmd.Env = append(a.cmd.Env, env...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting uvicorn: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = a.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("uvicorn log:\n%s", testkit.Tail(a.log.String(), 40))
		}
	})
	testkit.WaitFor(t, 60*time.Second, "uvicorn to answer /healthz", func() bool {
		select {
		case <-done:
			t.Fatalf("uvicorn exited:\n%s", a.log.String())
		default:
		}
		resp, err := http.Get(a.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return a
}

func (a *fastAPI) stats(t *testing.T) fastAPIStats {
	t.Helper()
	var s fastAPIStats
	a.get(t, "/stats", &s)
	return s
}

func (a *fastAPI) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(a.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// ---- a recording proxy -------------------------------------------------------

// proxy stands between the bridge and the app and records, per webhook-id,
// the answers the app gave and the traceparent the bridge sent: the test's
// own observation of (re)deliveries. A request it has read is forwarded even
// when the bridge goes away meanwhile (kill -9), so every request that
// reached the app is counted.
type proxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	ok     map[string]int // webhook-id -> 2xx answers
	other  map[int]int    // non-2xx status -> count
	parent map[string]string
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	p := &proxy{ok: map[string]int{}, other: map[int]int{}, parent: map[string]string{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the bridge went away before the request was whole: nothing reached the app
		}
		out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, upstream+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		id := r.Header.Get(webhook.HeaderID)
		p.mu.Lock()
		if resp.StatusCode/100 == 2 {
			p.ok[id]++
		} else {
			p.other[resp.StatusCode]++
		}
		if tp := r.Header.Get("traceparent"); tp != "" {
			p.parent[id] = tp
		}
		p.mu.Unlock()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// observed returns the 2xx answers in total, the distinct ids answered 2xx,
// and a copy of the non-2xx counts.
func (p *proxy) observed() (total, unique int, other map[int]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.ok {
		total += n
	}
	other = map[int]int{}
	for k, v := range p.other {
		other[k] = v
	}
	return total, len(p.ok), other
}

// ---- records -----------------------------------------------------------------

// jsonRecords makes n JSON records over keys keys; the first traced ones
// carry a traceparent of the test's own (a producer's context).
func jsonRecords(n, keys, traced int) []testkit.Message {
	out := make([]testkit.Message, n)
	seq := map[string]int{}
	for i := range out {
		k := "k" + strconv.Itoa(i%keys)
		v, _ := json.Marshal(map[string]any{"key": k, "seq": seq[k]})
		seq[k]++
		out[i] = testkit.Message{Key: []byte(k), Value: v,
			Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}
		if i < traced {
			out[i].Headers = append(out[i].Headers, sarama.RecordHeader{Key: []byte("traceparent"),
				Value: []byte(fmt.Sprintf("00-%032x-%016x-01", 0xab000000+i, 0xcd000000+i))})
		}
	}
	return out
}

// checkOrder asserts that the app handled each key's records exactly in
// the order they were produced (first deliveries).
func checkOrder(t *testing.T, s fastAPIStats, produced []testkit.Produced) {
	t.Helper()
	want := map[string][]int{}
	for _, p := range produced {
		lane := fmt.Sprintf("%s/%d/%s", p.Topic, p.Partition, p.Key)
		want[lane] = append(want[lane], int(p.Offset))
	}
	if s.OrderViolations != 0 {
		t.Errorf("the app saw %d per-key order violations", s.OrderViolations)
	}
	if len(s.Order) != len(want) {
		t.Fatalf("the app saw %d keys, %d were produced", len(s.Order), len(want))
	}
	for lane, offsets := range want {
		if !slices.Equal(s.Order[lane], offsets) {
			t.Fatalf("key %s: handled offsets %v, produced %v", lane, s.Order[lane], offsets)
		}
	}
}

func webhookRoute(t *testing.T, topic, url, extra string) string {
	return fmt.Sprintf(`  - name: fastapi
    topics: [%s]
    group: %s
    ordering: key
    concurrency: 32
    target:
      webhook:
        url: %s
        timeout: 10s
        signing_secrets: [%q, %q]
%s    retry: {max_attempts: 50, initial_backoff: 20ms, max_backoff: 500ms}
`, topic, testkit.TopicName(t, "g"), url, oldSecret, newSecret, extra)
}

// ---- tests -------------------------------------------------------------------

// The FastAPI example, which has no Kafka consumer, gets 1,000 records
// through hookbridge and verifies every one with the standardwebhooks
// package; rejects requests signed with a wrong key or too old; continues
// the bridge's trace; and after a kill -9 of the bridge in the middle of
// another 1,000 records counts exactly the redeliveries the test observed
// as duplicates.
func TestFastAPIReceiver(t *testing.T) {
	py := e2ePython(t)
	b := testkit.NewBroker(t)
	topic := testkit.TopicName(t, "in")
	b.CreateTopic(t, topic, 6)
	app := startFastAPI(t, py, "WEBHOOK_SECRETS="+newSecret)
	px := newProxy(t, app.url)

	extraCfg := ""
	if otlp := os.Getenv(envJaegerOTLP); otlp != "" {
		extraCfg = "telemetry: {otlp_endpoint: " + strconv.Quote(otlp) + "}\n"
	}
	cfg := b.Config(t, webhookRoute(t, topic, px.srv.URL+"/webhook/orders", ""))
	if extraCfg != "" {
		appendFile(t, cfg, extraCfg)
	}
	bridge := testkit.StartBridge(t, bridgeBin, cfg)

	// Phase 1: 1,000 records, all verified by the app's own check.
	const n = 1000
	first := b.Produce(t, topic, jsonRecords(n, 50, 10))
	testkit.WaitFor(t, 3*time.Minute, "1000 records accepted", func() bool {
		_, unique, _ := px.observed() // the proxy records an answer just after the app gave it
		return app.stats(t).Accepted >= n && unique >= n
	})
	s := app.stats(t)
	total, unique, other := px.observed()
	if s.Rejected != 0 || s.Accepted != n || len(other) != 0 {
		t.Fatalf("phase 1: rejected %d, accepted %d (want 0, %d); non-2xx answers %v", s.Rejected, s.Accepted, n, other)
	}
	if s.Received != total || unique != n || s.Duplicates != total-unique {
		t.Fatalf("phase 1: app received %d, %d duplicates; the test saw %d deliveries of %d records", s.Received, s.Duplicates, total, unique)
	}
	t.Logf("phase 1: %d records, %d requests, all verified by standardwebhooks", n, s.Requests)

	t.Run("trace continues from the bridge", func(t *testing.T) {
		var traces map[string]struct {
			TraceID      string `json:"trace_id"`
			ParentSpanID string `json:"parent_span_id"`
		}
		app.get(t, "/traces", &traces)
		px.mu.Lock()
		defer px.mu.Unlock()
		for i, p := range first[:10] {
			got, ok := traces[p.ID()]
			if !ok {
				t.Fatalf("no trace recorded for %s", p.ID())
			}
			wantTrace := fmt.Sprintf("%032x", 0xab000000+i)
			parts := strings.Split(px.parent[p.ID()], "-") // the bridge's traceparent: 00-trace-span-flags
			if len(parts) != 4 || parts[1] != wantTrace {
				t.Fatalf("%s: the bridge sent traceparent %q, want trace %s", p.ID(), px.parent[p.ID()], wantTrace)
			}
			if got.TraceID != wantTrace || got.ParentSpanID != parts[2] || parts[2] == fmt.Sprintf("%016x", 0xcd000000+i) {
				t.Fatalf("%s: the app's span is in trace %s under %s; want trace %s under the bridge's span %s",
					p.ID(), got.TraceID, got.ParentSpanID, wantTrace, parts[2])
			}
		}
		if q := os.Getenv(envJaeger); q != "" && os.Getenv(envJaegerOTLP) != "" {
			checkJaeger(t, q, fmt.Sprintf("%032x", 0xab000000), px.parent[first[0].ID()])
		}
	})

	t.Run("wrong key and stale timestamp rejected", func(t *testing.T) {
		body := []byte(`{"key":"k0","seq":-1}`)
		wrong := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not the secret of this route!!!!"))
		now := time.Now().Unix()
		for _, tc := range []struct {
			name, secret string
			ts           int64
		}{
			{"re-signed with a wrong key", wrong, now},
			{"right key, timestamp an hour old", newSecret, now - 3600},
		} {
			id := topic + "-0-999999"
			sig, err := webhook.Sign(tc.secret, id, tc.ts, body)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, app.url+"/webhook/orders", bytes.NewReader(body))
			for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": strconv.FormatInt(tc.ts, 10),
				"webhook-signature": sig, "content-type": "application/json", "kafka-topic": topic,
				"kafka-partition": "0", "kafka-offset": "999999", "kafka-key": "k0", "hookbridge-attempt": "1"} {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", tc.name, resp.StatusCode)
			}
		}
		if s := app.stats(t); s.Rejected != 2 || s.Accepted != n {
			t.Fatalf("after two bad requests: rejected %d, accepted %d", s.Rejected, s.Accepted)
		}
	})

	// Phase 2: kill -9 the bridge in the middle of another 1,000 records,
	// restart it, and compare the app's duplicate count with what the test
	// saw.
	second := b.Produce(t, topic, jsonRecords(n, 50, 0))
	testkit.WaitFor(t, 3*time.Minute, "some of the second 1000 accepted", func() bool { return app.stats(t).Accepted >= n+200 })
	bridge.Kill()
	atKill := app.stats(t).Accepted
	bridge = testkit.StartBridge(t, bridgeBin, cfg)
	testkit.WaitFor(t, 3*time.Minute, "2000 records accepted", func() bool { return app.stats(t).Accepted >= 2*n })
	if code := bridge.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
	s = app.stats(t)
	total, unique, other = px.observed()
	redeliveries := total - unique
	t.Logf("phase 2: kill -9 after %d of %d accepted; %d redeliveries observed, app counted %d duplicates",
		atKill, 2*n, redeliveries, s.Duplicates)
	if s.Accepted != 2*n || unique != 2*n {
		t.Fatalf("accepted %d, the test saw %d distinct records answered 2xx; want %d", s.Accepted, unique, 2*n)
	}
	if s.Rejected != 2 || len(other) != 0 {
		t.Fatalf("rejected %d (want only the test's 2), non-2xx answers to the bridge %v", s.Rejected, other)
	}
	if s.Duplicates != s.Received-s.Accepted || s.Duplicates != redeliveries || s.Received != total {
		t.Fatalf("app: received %d, accepted %d, duplicates %d; test: %d deliveries, %d redeliveries",
			s.Received, s.Accepted, s.Duplicates, total, redeliveries)
	}
	checkOrder(t, s, append(first, second...))
}

// Batch mode: 500 records in batches of at most 50; the app fails the first
// delivery of every record whose offset is a multiple of 7 and answers them
// in "failed"; every record is accepted once, the failed ones after exactly
// one retry, per-key order kept.
func TestFastAPIReceiverBatch(t *testing.T) {
	py := e2ePython(t)
	b := testkit.NewBroker(t)
	topic := testkit.TopicName(t, "in")
	b.CreateTopic(t, topic, 6)
	const nth = 7
	app := startFastAPI(t, py, "WEBHOOK_SECRETS="+newSecret, "FAIL_EVERY_NTH="+strconv.Itoa(nth))
	cfg := b.Config(t, webhookRoute(t, topic, app.url+"/webhook/batch",
		"        batch: {max_messages: 25, max_wait: 20ms}\n"))
	bridge := testkit.StartBridge(t, bridgeBin, cfg)

	const n = 500
	produced := b.Produce(t, topic, jsonRecords(n, 100, 0))
	wantFailed := 0
	for _, p := range produced {
		if p.Offset%nth == 0 {
			wantFailed++
		}
	}
	testkit.WaitFor(t, 3*time.Minute, "500 records accepted", func() bool { return app.stats(t).Accepted >= n })
	if code := bridge.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
	s := app.stats(t)
	t.Logf("%d records in %d batch requests (largest %d); %d failed once", n, s.Batches, s.MaxBatch, s.Failed)
	if s.Rejected != 0 || s.Accepted != n || s.Duplicates != 0 {
		t.Fatalf("rejected %d, accepted %d, duplicates %d; want 0, %d, 0", s.Rejected, s.Accepted, s.Duplicates, n)
	}
	if s.Failed != wantFailed || s.Received != n+wantFailed {
		t.Fatalf("failed %d, received %d; want %d failed once and so %d received", s.Failed, s.Received, wantFailed, n+wantFailed)
	}
	if s.MaxBatch < 2 || s.MaxBatch > 25 || s.Batches >= s.Received {
		t.Fatalf("%d batches for %d records, largest %d: not batching within max_messages 25", s.Batches, s.Received, s.MaxBatch)
	}
	checkOrder(t, s, produced)
}

// uvicorn closes a keep-alive connection after --timeout-keep-alive seconds
// of idleness (5 by default): the bridge's next request must not be lost,
// doubled or counted as a failed attempt because it found the pooled
// connection closed. Each record waits past the timeout after the previous
// one was accepted.
func TestFastAPIReceiverClosesIdleConnections(t *testing.T) {
	py := e2ePython(t)
	b := testkit.NewBroker(t)
	topic := testkit.TopicName(t, "in")
	b.CreateTopic(t, topic, 1)
	app := startFastAPIWith(t, py, []string{"--timeout-keep-alive", "1"}, "WEBHOOK_SECRETS="+newSecret)
	bridge := testkit.StartBridge(t, bridgeBin, b.Config(t, webhookRoute(t, topic, app.url+"/webhook/orders", "")))

	const n = 4
	for i := range n {
		b.Produce(t, topic, jsonRecords(1, 1, 0))
		testkit.WaitFor(t, time.Minute, fmt.Sprintf("record %d accepted", i+1), func() bool { return app.stats(t).Accepted >= i+1 })
		if i < n-1 {
			time.Sleep(1500 * time.Millisecond) // setup, not an assertion: let uvicorn's keep-alive timeout pass
		}
	}
	failed := testkit.MetricSum(bridge.Admin(), "hookbridge_records_failed_total")
	if code := bridge.Stop(); code != 0 {
		t.Fatalf("hookbridge exited with %d", code)
	}
	if s := app.stats(t); s.Accepted != n || s.Received != n || s.Rejected != 0 {
		t.Fatalf("accepted %d, received %d, rejected %d; want %d, %d, 0", s.Accepted, s.Received, s.Rejected, n, n)
	}
	if failed != 0 {
		t.Errorf("hookbridge_records_failed_total = %v, want 0: a closed idle connection must not fail an attempt", failed)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// checkJaeger asserts, when the e2e tier runs Jaeger, that the app's server
// span was exported under the bridge's HTTP client span in one trace.
func checkJaeger(t *testing.T, query, traceID, bridgeTraceparent string) {
	t.Helper()
	parts := strings.Split(bridgeTraceparent, "-")
	if len(parts) != 4 {
		t.Fatalf("traceparent %q", bridgeTraceparent)
	}
	var found bool
	var last string
	testkit.WaitFor(t, time.Minute, "the receiver's span in Jaeger", func() bool {
		resp, err := http.Get("http://" + query + "/api/v3/traces/" + traceID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		last = string(body)
		var r struct {
			Result struct {
				ResourceSpans []struct {
					Resource struct {
						Attributes []struct {
							Key   string `json:"key"`
							Value struct {
								StringValue string `json:"stringValue"`
							} `json:"value"`
						} `json:"attributes"`
					} `json:"resource"`
					ScopeSpans []struct {
						Spans []struct {
							SpanID       string `json:"spanId"`
							ParentSpanID string `json:"parentSpanId"`
						} `json:"spans"`
					} `json:"scopeSpans"`
				} `json:"resourceSpans"`
			} `json:"result"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil {
			return false
		}
		for _, rs := range r.Result.ResourceSpans {
			service := ""
			for _, kv := range rs.Resource.Attributes {
				if kv.Key == "service.name" {
					service = kv.Value.StringValue
				}
			}
			if service != "receiver-fastapi" {
				continue
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if otlpID(sp.ParentSpanID) == parts[2] {
						found = true
					}
				}
			}
		}
		return found
	})
	if !found {
		t.Fatalf("no receiver-fastapi span under the bridge's span %s in trace %s:\n%s", parts[2], traceID, last)
	}
}

// otlpID turns an OTLP JSON span id (hex, or base64 as protobuf JSON has it)
// into hex.
func otlpID(s string) string {
	if _, err := hex.DecodeString(s); err == nil && len(s) == 16 {
		return strings.ToLower(s)
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 8 {
		return hex.EncodeToString(b)
	}
	return s
}
