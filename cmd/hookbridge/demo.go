package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge"
	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/kafka"
	"github.com/hookbridge/hookbridge/bridge/signing"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
)

// cmdDemo runs the whole path on one machine with nothing installed: an
// embedded broker, a signature-verifying webhook receiver that fails now and
// then, the bridge between them, and a producer. It prints every delivery and
// the dead-letter topic, then exits.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("records", 30, "records to produce (at least 1)")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	// The demo has no configuration file to name, so no -c hint.
	if unexpectedArgs(fs, "", usage, stderr) {
		return exitUsage
	}
	// A demo of no record would start everything, show nothing, and exit 0
	// as if it had worked.
	if *n < 1 {
		fmt.Fprintf(stderr, "hookbridge demo: --records must be at least 1, not %d\n%s", *n, usage)
		return exitUsage
	}
	if err := demo(ctx, *n, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitFailed
	}
	return exitOK
}

const demoPoison = 13 // the record the receiver rejects with 400

func demo(ctx context.Context, n int, out, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(raw)

	emb, err := kafka.StartEmbedded("", 3, "orders", "orders.dlq", "orders.enriched", "orders.enrich.dlq")
	if err != nil {
		return err
	}
	defer emb.Close()

	rcv, err := startDemoReceiver(raw, out)
	if err != nil {
		return err
	}
	defer rcv.close()

	fmt.Fprintf(out, "embedded Kafka on %v (in memory, demo only); webhook receiver on %s\n", emb.Addrs(), rcv.url)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	poison := fmt.Sprintf("400 to record #%d", demoPoison)
	if n < demoPoison {
		poison = fmt.Sprintf("400 to record #%d, which --records %d does not reach", demoPoison, n)
	}
	fmt.Fprintf(out, "route orders → webhook %s: signed, ordered per key; the receiver answers 503 to every 7th request that is a first attempt and %s\n", rcv.url, poison)
	fmt.Fprintf(out, "route orders-enrich → plugin enrich (a separate process over gRPC): adds total_with_tax, replies to orders.enriched\n\n")

	cfg := &config.Config{
		Kafka: config.Kafka{Brokers: emb.Addrs()},
		Admin: config.Admin{Listen: "127.0.0.1:0"},
		Log:   config.Log{Level: "warn", Format: "text"},
		Plugins: map[string]config.Plugin{
			"enrich": {Command: []string{exe, demoPluginCommand}, Instances: config.Instances{Min: 1, Max: 2}},
		},
		Routes: []config.Route{{
			Name:   "orders-enrich",
			Topics: []string{"orders"},
			Target: config.RouteTarget{Plugin: "enrich"},
			Reply:  config.Reply{Topic: "orders.enriched"},
			Retry: config.Retry{MaxAttempts: 3, InitialBackoff: config.Duration(100 * time.Millisecond),
				MaxBackoff: config.Duration(time.Second)},
			DeadLetter: config.DeadLetter{Topic: "orders.enrich.dlq"},
		}, {
			Name:   "orders",
			Topics: []string{"orders"},
			Target: config.RouteTarget{Webhook: &config.Webhook{URL: rcv.url, SigningSecrets: []string{secret}}},
			Retry: config.Retry{MaxAttempts: 3, InitialBackoff: config.Duration(100 * time.Millisecond),
				MaxBackoff: config.Duration(time.Second)},
			DeadLetter: config.DeadLetter{Topic: "orders.dlq"},
		}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	// As in run: spans are made and sampled without an exporter, so every
	// request carries a traceparent.
	stopTracing, ok := startTracing(ctx, cfg, log)
	if !ok {
		return errors.New("tracing setup failed")
	}
	defer stopTracing()
	ready := make(chan string, 1)
	b := bridge.New(cfg, bridge.Options{Version: versionString(), Logger: log, Plugins: pluginFactory(ctx, cfg, log),
		Ready: func(admin string, _ []string) { ready <- admin }})
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	var adminAddr string
	select {
	case adminAddr = <-ready:
	case err := <-runErr:
		return err
	}
	fmt.Fprintf(out, "bridge running; metrics at http://%s/metrics\n\n", adminAddr)

	replies, err := followDemoReplies(ctx, emb.Addrs(), out)
	if err != nil {
		return err
	}

	// Ctrl-C (the run's context ends): the bridge drains and stops as it
	// does on SIGINT, and the demo says so rather than leaving its output
	// cut off mid-stream.
	interrupted := func(produced int) error {
		if err := <-runErr; err != nil {
			return err
		}
		fmt.Fprintf(out, "\ninterrupted: %d of %d records produced; webhook: %d delivered; plugin: %d replies; bridge drained and stopped.\n",
			produced, n, rcv.accepted(), replies.Load())
		return nil
	}

	prod, err := sarama.NewSyncProducer(emb.Addrs(), demoProducerConfig())
	if err != nil {
		return err
	}
	defer prod.Close()
	for i := 1; i <= n; i++ {
		value := fmt.Sprintf(`{"order":%d,"amount":%d.%02d}`, i, 10+i*3, i%100)
		if i == demoPoison {
			value = `{"order":13,"amount":"not-a-number"}`
		}
		msg := &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder(fmt.Sprintf("customer-%d", i%4)),
			Value:   sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}}
		if _, _, err := prod.SendMessage(msg); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return interrupted(i)
		case <-time.After(80 * time.Millisecond):
		}
	}

	// Wait until every record has its outcome on both routes: delivered,
	// or, for the poison record when there is one, dead-lettered.
	want, wantDead := n, int64(0)
	if n >= demoPoison {
		want, wantDead = n-1, 1
	}
	client, err := sarama.NewClient(emb.Addrs(), sarama.NewConfig())
	if err != nil {
		return err
	}
	defer client.Close()
	deadline := time.After(60 * time.Second)
	for {
		dead, err := demoTopicRecords(client, "orders.dlq")
		if err != nil {
			return err
		}
		pdead, err := demoTopicRecords(client, "orders.enrich.dlq")
		if err != nil {
			return err
		}
		if rcv.accepted() >= want && replies.Load() >= int64(want) && dead >= wantDead && pdead >= wantDead {
			break
		}
		select {
		case <-ctx.Done():
			return interrupted(n)
		case <-deadline:
			return fmt.Errorf("after 60s: webhook: %d of %d records delivered, %d of %d dead-lettered; plugin: %d of %d replies, %d of %d dead-lettered",
				rcv.accepted(), want, dead, wantDead, replies.Load(), want, pdead, wantDead)
		case <-time.After(100 * time.Millisecond):
		}
	}
	dlq, err := readDemoDLQ(ctx, emb.Addrs(), "orders.dlq")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ndead-letter topic orders.dlq:\n")
	for _, m := range dlq {
		fmt.Fprintf(out, "  key=%s value=%s\n", m.Key, m.Value)
		for _, h := range m.Headers {
			if strings.HasPrefix(string(h.Key), "hookbridge-error") {
				fmt.Fprintf(out, "    %s: %s\n", h.Key, h.Value)
			}
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		return err
	}
	pdlq, err := readDemoDLQ(ctx, emb.Addrs(), "orders.enrich.dlq")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsummary: %d produced; webhook: %d delivered (%d requests incl. retries), %d dead-lettered; plugin: %d replies, %d dead-lettered; offsets committed, bridge drained and stopped.\n",
		n, rcv.accepted(), rcv.requests(), len(dlq), replies.Load(), len(pdlq))
	return nil
}

func demoProducerConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = kafka.NewMurmur2Partitioner
	return c
}

// demoTopicRecords is how many records topic holds: the sum of its
// partitions' end offsets (the demo's topics start empty, and only
// non-transactional producers write to them).
func demoTopicRecords(client sarama.Client, topic string) (int64, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		sum += end
	}
	return sum, nil
}

func readDemoDLQ(ctx context.Context, brokers []string, topic string) ([]*sarama.ConsumerMessage, error) {
	c, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	var msgs []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		if hwm == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		for m := range pc.Messages() {
			msgs = append(msgs, m)
			if m.Offset+1 >= hwm {
				break
			}
			if ctx.Err() != nil {
				break
			}
		}
		pc.AsyncClose()
	}
	return msgs, nil
}

type demoReceiver struct {
	url string
	srv *http.Server

	mu       sync.Mutex
	seen     map[string]bool
	reqs     int
	out      io.Writer
	keys     [][]byte
	accepted func() int
}

func startDemoReceiver(key []byte, out io.Writer) (*demoReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoReceiver{url: "http://" + ln.Addr().String() + "/hooks/orders", seen: map[string]bool{}, out: out,
		keys: [][]byte{key}}
	r.accepted = func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.seen)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *demoReceiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs
}

func (r *demoReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	id := req.Header.Get("webhook-id")
	sig := "signature ok"
	if err := signing.Verify(r.keys, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"),
		body, time.Now(), 5*time.Minute); err != nil {
		sig = "SIGNATURE BAD: " + err.Error()
	}
	attempt := req.Header.Get("hookbridge-attempt")
	r.mu.Lock()
	r.reqs++
	nreq := r.reqs
	dup := r.seen[id]
	r.mu.Unlock()

	status := http.StatusOK
	switch {
	case sig != "signature ok":
		status = http.StatusUnauthorized
	case string(body) == `{"order":13,"amount":"not-a-number"}`:
		status = http.StatusBadRequest
	case attempt == "1" && nreq%7 == 0:
		status = http.StatusServiceUnavailable
	}
	note := ""
	if dup {
		note = " (duplicate, deduped)"
	}
	trace := "none" // the trace id the bridge's traceparent carries, shortened
	if tp := req.Header.Get("traceparent"); len(tp) >= 35 {
		trace = tp[3:11]
	}
	fmt.Fprintf(r.out, "  webhook ← %-12s key=%-10s attempt=%s trace=%s  %s  → %d  %s%s\n",
		id, req.Header.Get("kafka-key"), attempt, trace, sig, status, body, note)
	if status == http.StatusOK {
		r.mu.Lock()
		r.seen[id] = true
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *demoReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

// followDemoReplies prints the plugin's replies as they arrive on
// orders.enriched and counts them.
func followDemoReplies(ctx context.Context, brokers []string, out io.Writer) (*atomic.Int64, error) {
	c, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		return nil, err
	}
	parts, err := c.Partitions("orders.enriched")
	if err != nil {
		c.Close()
		return nil, err
	}
	var n atomic.Int64
	for _, p := range parts {
		pc, err := c.ConsumePartition("orders.enriched", p, sarama.OffsetOldest)
		if err != nil {
			c.Close()
			return nil, err
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					pc.AsyncClose()
					return
				case m := <-pc.Messages():
					n.Add(1)
					fmt.Fprintf(out, "  plugin  → orders.enriched key=%-10s %s\n", m.Key, m.Value)
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	return &n, nil
}
