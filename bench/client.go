package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/target"
	"github.com/hookbridge/hookbridge/bridge/telemetry"
	"github.com/hookbridge/hookbridge/bridge/webhook"
	"go.opentelemetry.io/otel"
)

// clientEnv is the environment variable that makes a process the client of
// a scenario run in a process of its own, (bx), (hx), (cx) or (ct); it holds
// the clientSpec as JSON. See RunClientIfAsked.
const clientEnv = "HOOKBRIDGE_BENCH_CLIENT"

// clientSpec is what a client of (b), (h), (c) or (c2) does in this process,
// or a client of (bx), (hx), (cx), (ct), (cw) or (cw2) in a process of its
// own.
type clientSpec struct {
	// Mode is "post" ((b), (h): POST every record, then exit), "target" ((hx):
	// deliver every record through the bridge's own webhook target, then
	// exit), "loop" ((c), (c2): consume the topic with group Group and POST
	// each record, until SIGTERM), "loop-target" ((ct): the same loop,
	// delivering each record through the bridge's own webhook target) or
	// "loop-wire" ((cw), (cw2): the same loop, each partition's POSTs on a
	// connection of its own, without net/http's Transport; see wireLoop).
	Mode     string
	Contract bool // send the webhook contract's headers ((h), (c2), (cw2))
	URL      string
	Brokers  []string
	Topic    string
	Group    string

	Records, RecordSize, Partitions, Keys, Concurrency int
}

// clientSpec describes a client of this Env in mode; group is the consumer
// group of mode "loop".
func (e *Env) clientSpec(mode, group string, contract bool) clientSpec {
	return clientSpec{Mode: mode, Contract: contract, URL: e.rcv.url, Brokers: e.broker.addrs, Topic: e.broker.topic,
		Group: group, Records: e.opts.Records, RecordSize: e.opts.RecordSize, Partitions: e.opts.Partitions,
		Keys: e.opts.Keys, Concurrency: e.opts.Concurrency}
}

// run does the client's job until it is done (post) or ctx ends.
func (s clientSpec) run(ctx context.Context) error {
	switch s.Mode {
	case "post":
		s.postRecords(ctx)
		return nil
	case "target":
		return s.deliverRecords(ctx)
	case "loop":
		client := s.loopClient()
		defer client.CloseIdleConnections()
		return s.consumeGroup(ctx, s.handLoop(client))
	case "loop-target":
		return s.targetLoop(ctx)
	case "loop-wire":
		return s.wireLoop(ctx)
	}
	return fmt.Errorf("bench client: unknown mode %q", s.Mode)
}

// RunClientIfAsked turns this process into a scenario's client when the
// harness started it as one (it set HOOKBRIDGE_BENCH_CLIENT): it does the
// client's job and exits. Otherwise it returns at once. Programs that run the
// harness (cmd/drain, the package's tests) call it first thing, because the
// harness starts its out-of-process clients from its own executable.
func RunClientIfAsked() {
	v, ok := os.LookupEnv(clientEnv)
	if !ok {
		return
	}
	var s clientSpec
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		fmt.Fprintf(os.Stderr, "bench client: %s: %v\n", clientEnv, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := s.run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// consumeGroup runs consumeGroup for a looping client, logging to stderr.
func (s clientSpec) consumeGroup(ctx context.Context, handle func(context.Context, *sarama.ConsumerMessage) error) error {
	return consumeGroup(ctx, s.Brokers, s.Group, s.Topic, handle,
		func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench client: "+format+"\n", args...) })
}

// runClientProc is (bx), (hx), (cx), (ct), (cw) and (cw2): the client of
// (b), the bridge's webhook target, the client of (c), the loop of (c) with
// the bridge's webhook target, or the loop of (c) on connections of its own,
// in a process of its own started from this executable, the way the bridge
// runs, so that every request crosses from one process to another as the
// bridge's do. The clock and the count are the same as in (b) and (c). mode
// is a clientSpec mode; contract has the client send the contract's headers.
func (e *Env) runClientProc(ctx context.Context, letter, mode string, contract bool) (Result, error) {
	group := ""
	if mode == "loop" || mode == "loop-target" || mode == "loop-wire" {
		group = e.group(letter)
	}
	spec, err := json.Marshal(e.clientSpec(mode, group, contract))
	if err != nil {
		return Result{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return Result{}, fmt.Errorf("finding this executable to run the client: %w", err)
	}
	t := newTally(e.opts.Records)
	e.rcv.count(t)
	defer e.rcv.count(nil)

	logs := &tailBuffer{max: 16 << 10}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), clientEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = logs, logs
	cpu0 := selfCPU()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("starting the client: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	err = t.await(ctx, e.opts.Stall, exited)
	harness := selfCPU() - cpu0
	// A looping client is still running: read its CPU time before stopping
	// it. A posting one may have exited: its process state has it, and its
	// context switches are gone with it.
	cpu, cpuErr := processCPU(cmd.Process.Pid)
	switches, _ := contextSwitches(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(exitWait):
		_ = cmd.Process.Kill()
		<-exited
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w\nclient log (tail):\n%s", err, logs.String())
	}
	if cpuErr != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	r := Result{HarnessCPU: harness, ClientCPU: cpu, ClientSwitches: switches}
	t.fill(&r, start)
	return r, nil
}

// deliverRecords delivers records [0, Records) through the bridge's own
// webhook target from Concurrency workers, each until it is accepted: the
// bridge's HTTP path with the contract, and none of Kafka or the dispatch
// chain.
func (s clientSpec) deliverRecords(ctx context.Context) error {
	ctx, tg, done, err := s.webhookTarget(ctx)
	if err != nil {
		return err
	}
	defer done()
	s.eachRecord(func(i int) error {
		return deliver(ctx, tg, &target.Record{Topic: s.Topic, Partition: int32(i % s.Partitions),
			Offset: int64(i / s.Partitions), Key: []byte(keyOf(i, s.Keys)), Value: value(i, s.RecordSize),
			Timestamp: time.Now()})
	})
	return nil
}

// targetLoop is the client of (ct): the claim loop of (c), one goroutine per
// partition, delivering each record through the bridge's own webhook target
// until it is accepted. It is the ceiling of (f): the bridge's HTTP path with
// the contract and Kafka, without lanes, budget, offset tracker, dispatch
// chain, two of its three spans and metrics.
func (s clientSpec) targetLoop(ctx context.Context) error {
	ctx, tg, done, err := s.webhookTarget(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.consumeGroup(ctx, func(ctx context.Context, m *sarama.ConsumerMessage) error {
		return deliver(ctx, tg, &target.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
			Key: m.Key, Value: m.Value, Timestamp: m.Timestamp})
	})
}

// webhookTarget is the bridge's webhook target for the receiver, as a route
// with default settings and no signing secret builds it, with the tracing the
// bridge sets up without an exporter. done closes both. The context it
// returns carries a span from that setup, the parent of every delivery: in
// the bridge a delivery's context carries its attempt span, from which the
// target starts its client span and takes the traceparent it sends; with no
// span there the target would do neither.
func (s clientSpec) webhookTarget(ctx context.Context) (_ context.Context, tg *webhook.Target, done func(), err error) {
	shutdown, err := telemetry.SetupTracing(ctx, config.Telemetry{}, "bench")
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := config.Config{Routes: []config.Route{{Name: "bench", Target: config.RouteTarget{
		Webhook: &config.Webhook{URL: s.URL}}}}}
	cfg.ApplyDefaults()
	tg, err = webhook.New(webhook.Options{Route: "bench", Group: "bench", Config: *cfg.Routes[0].Target.Webhook,
		Version: "bench"})
	if err != nil {
		_ = shutdown(context.WithoutCancel(ctx))
		return nil, nil, nil, err
	}
	ctx, span := otel.Tracer("github.com/hookbridge/hookbridge/bench").Start(ctx, "bench")
	return ctx, tg, func() {
		span.End()
		_ = tg.Close(context.WithoutCancel(ctx))
		_ = shutdown(context.WithoutCancel(ctx))
	}, nil
}

// deliver delivers rec through tg until it is accepted; it fails only when
// ctx ends.
func deliver(ctx context.Context, tg *webhook.Target, rec *target.Record) error {
	for {
		if _, err := tg.Deliver(ctx, &target.Delivery{Route: "bench", Record: rec, Attempt: 1}); err == nil {
			return nil
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}
