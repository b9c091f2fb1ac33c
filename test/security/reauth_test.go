package security

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// envReauth names the broker's connections.max.reauth.ms (KIP-368) on the
// SASL_SSL listener; the re-authentication tests run only when it is set,
// as test/e2e.sh does by starting the broker with KAFKA_EXTRA_PROPS.
const envReauth = "HOOKBRIDGE_TEST_KAFKA_REAUTH_MS"

// reauthSoak is how long records flow while the broker forces
// re-authentication: two or three sessions of every connection.
const reauthSoak = 25 * time.Second

// reauthEnv returns the broker's session lifetime, or skips.
func reauthEnv(t *testing.T) time.Duration {
	t.Helper()
	ms, err := strconv.Atoi(os.Getenv(envReauth))
	if err != nil || ms <= 0 {
		testkit.E2ESkipf(t, "needs a SASL_SSL listener that forces re-authentication: start the broker with "+
			"KAFKA_EXTRA_PROPS='connections.max.reauth.ms=12000' and set %s=12000", envReauth)
	}
	return time.Duration(ms) * time.Millisecond
}

// TestReauthSCRAMSoak runs the bridge over SCRAM-SHA-512 against a broker
// that closes every SASL session not re-authenticated within
// connections.max.reauth.ms, while records flow for several sessions and
// the receiver refuses one in ten (dead-lettered). Every record ends
// delivered or dead-lettered, none twice, the group is joined once, the
// bridge logs no warning or error, and /readyz stays ready.
func TestReauthSCRAMSoak(t *testing.T) {
	b := saslEnv(t)
	reauthEnv(t)
	sasl := fmt.Sprintf("  sasl:\n    mechanism: SCRAM-SHA-512\n    username: %q\n    password: \"${KAFKA_PASSWORD}\"\n", b.user)
	reauthSoakRun(t, b, sasl, []string{"KAFKA_PASSWORD=" + b.password})
}

// TestReauthOAuthBearerSoak is TestReauthSCRAMSoak over OAUTHBEARER with
// tokens that live 15 s: each session ends at its token's expiry, and the
// bridge re-authenticates with a new token in place.
func TestReauthOAuthBearerSoak(t *testing.T) {
	b := saslEnv(t)
	reauthEnv(t)
	var mu sync.Mutex
	issued := 0
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An unsecured JWS (alg none), which the broker's default
		// OAUTHBEARER validator accepts, valid for 15 s.
		now := time.Now()
		enc := base64.RawURLEncoding.EncodeToString
		claims, _ := json.Marshal(map[string]any{"sub": b.user, "iat": now.Unix(), "exp": now.Add(15 * time.Second).Unix()})
		tok := enc([]byte(`{"alg":"none"}`)) + "." + enc(claims) + "."
		mu.Lock()
		issued++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 15})
	}))
	t.Cleanup(idp.Close)
	sasl := fmt.Sprintf("  sasl:\n    mechanism: OAUTHBEARER\n    oauthbearer: {token_url: %q, client_id: hookbridge, client_secret: \"${IDP_SECRET}\"}\n", idp.URL+"/token")
	reauthSoakRun(t, b, sasl, []string{"IDP_SECRET=idp-secret"})
	mu.Lock()
	defer mu.Unlock()
	if issued < 2 {
		t.Errorf("the token endpoint issued %d tokens over %s, want a new one as each expired", issued, reauthSoak)
	}
}

// reauthSoakRun runs the soak with the kafka.sasl section sasl.
func reauthSoakRun(t *testing.T, b saslBroker, sasl string, env []string) {
	// sarama's debug log tells each session's lifetime: the test's own
	// client shows that the broker does force re-authentication.
	var debug syncBuffer
	old := sarama.DebugLogger
	sarama.DebugLogger = log.New(&debug, "", 0)
	t.Cleanup(func() { sarama.DebugLogger = old })
	c := b.client(t)
	suffix := strconv.Itoa(rand.IntN(1e9))
	topic, dlq := "security-reauth-"+suffix, "security-reauth-dlq-"+suffix
	b.createTopic(t, c, topic, 3)
	b.createTopic(t, c, dlq, 1)

	var mu sync.Mutex
	deliveries := map[string]int{} // value: times the receiver took it
	refused := map[string]bool{}   // value: refused (400) at least once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var v struct{ N int }
		_ = json.Unmarshal(body, &v)
		mu.Lock()
		defer mu.Unlock()
		if v.N%10 == 3 {
			refused[string(body)] = true
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		deliveries[string(body)]++
	}))
	t.Cleanup(srv.Close)

	admin := testkit.FreePort(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "hookbridge.yaml", fmt.Sprintf(`kafka:
  brokers: [%q]
  client_id: security-reauth
  tls: {enabled: true, ca_file: %q}
%sadmin: {listen: %q}
log: {level: info, format: text}
shutdown_timeout: 10s
routes:
  - name: reauth
    topics: [%q]
    target:
      webhook: {url: %q}
    retry: {max_attempts: 2, initial_backoff: 10ms, max_backoff: 10ms}
    dead_letter: {topic: %q}
`, b.addr, b.ca, sasl, admin, topic, srv.URL+"/hook", dlq))
	p := start(t, env, "run", "-c", cfg)
	ready := func() int {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 90*time.Second, "/readyz ok", func() bool {
		select {
		case <-p.done:
			t.Fatalf("hookbridge exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		return ready() == http.StatusOK
	})

	// Produce steadily through the soak, and sample /readyz meanwhile.
	producer, err := sarama.NewSyncProducerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(t.Context(), reauthSoak)
	defer cancel()
	notReady := map[int]int{} // status: samples
	go func() {
		for ctx.Err() == nil {
			if code := ready(); code != http.StatusOK {
				mu.Lock()
				notReady[code]++
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	n := 0
	for ctx.Err() == nil {
		for range 10 {
			msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(n%7)),
				Value: sarama.StringEncoder(fmt.Sprintf(`{"n":%d}`, n))}
			if _, _, err := producer.SendMessage(msg); err != nil {
				t.Fatalf("produce record %d: %v", n, err)
			}
			n++
		}
		time.Sleep(250 * time.Millisecond)
	}
	want, wantDLQ := n-(n+6)/10, (n+6)/10
	waitFor(t, 90*time.Second, fmt.Sprintf("%d records delivered", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) >= want
	})

	// The dead letters, read back over SASL.
	dead := map[string]int{}
	cons, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(dlq, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	waitFor(t, 90*time.Second, fmt.Sprintf("%d dead letters", wantDLQ), func() bool {
		for {
			select {
			case m := <-pc.Messages():
				dead[string(m.Value)]++
				continue
			default:
			}
			return len(dead) >= wantDLQ
		}
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}

	sessions := strings.Count(debug.String(), "Session expiration in")
	if sessions == 0 {
		t.Fatalf("the broker gave the test's client no session lifetime: is connections.max.reauth.ms set? (%s)", envReauth)
	}
	mu.Lock()
	defer mu.Unlock()
	var lost, dup []int
	for i := range n {
		v := fmt.Sprintf(`{"n":%d}`, i)
		got := deliveries[v] + dead[v]
		if i%10 == 3 && (dead[v] != 1 || deliveries[v] != 0) || i%10 != 3 && (deliveries[v] == 0 || dead[v] != 0) {
			lost = append(lost, i)
		}
		if got > 1 {
			dup = append(dup, i)
		}
	}
	t.Logf("%d records over %s: %d delivered, %d dead-lettered, %d duplicates; %d SASL sessions of the test's client",
		n, reauthSoak, len(deliveries), len(dead), len(dup), sessions)
	if len(lost) > 0 {
		t.Errorf("records not delivered or dead-lettered as they should be: %v", lost)
	}
	if len(dup) > 0 {
		t.Errorf("records delivered or dead-lettered more than once: %v", dup)
	}
	if len(notReady) > 0 {
		t.Errorf("/readyz was not ready during the soak (status: samples): %v", notReady)
	}
	logs := p.stderr.String() + p.stdout.String()
	if joins := strings.Count(logs, `msg="joined group"`); joins != 1 {
		t.Errorf("the bridge joined its group %d times, want 1 (a rebalance at a re-authentication)", joins)
	}
	var bad []string
	for _, line := range strings.Split(logs, "\n") {
		if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) &&
			!strings.Contains(line, "msg=dead-lettered") && !strings.Contains(line, `msg="configuration advice"`) {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d warnings or errors in the bridge's log:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}
