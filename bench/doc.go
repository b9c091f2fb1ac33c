// Package bench is Hookbridge's throughput harness (README.md, "Tests and benchmarks").
//
// In one run on one machine it starts a broker (franz-go's kfake in this
// process, or a real cluster), pre-loads one topic with N records, starts one
// counting HTTP receiver on 127.0.0.1, and then measures, for each scenario,
// the records per second it takes to drain the whole topic:
//
//	(a) sarama consume-only: the read limit
//	(b) HTTP-only POSTs of the same bodies to the receiver, at the route's
//	    concurrency: the HTTP limit
//	(bx) (b) with its client in a process of its own, as the bridge is;
//	    not in the issue
//	(h) (b) with the request headers of the webhook contract; not in the
//	    issue, it tells the cost of the contract from the cost of the bridge
//	(hx) the bridge's own webhook target (bridge/webhook) delivering every
//	    record from a process of its own, no Kafka, no dispatch chain; not
//	    in the issue: the bridge's HTTP path alone
//	(c) a hand-written sarama-to-net/http loop, one goroutine per partition
//	(cx) (c) in a process of its own, as the bridge is; not in the issue
//	(c2) (c) with the contract's headers, built by the same function as
//	    (h)'s from each record: the job the bridge does in (f), by hand
//	(ct) the loop of (c) delivering through the bridge's own webhook target,
//	    in a process of its own; not in the issue: what (f) would be if
//	    lanes, offsets and the dispatch chain cost nothing
//	(d) the hookbridge binary with ordering: none
//	(e) the hookbridge binary with ordering: key
//	(f) the hookbridge binary with ordering: partition
//	(g) the hookbridge binary in webhook batch mode (100 records per
//	    request), ordering: none; (g2) the same with ordering: key
//	(p) the hookbridge binary with examples/plugin-go (ENRICH_ACK_ONLY=1) as
//	    the target, ordering: none; counted through the bridge's /metrics.
//	    After the rounds, plugin cold starts are timed on a topic of their own
//
// Every consumer scenario reads the same topic with a consumer group of its
// own, so each starts from the oldest offset; only the drain is timed, never
// the pre-load. Figures are reported as ratios to (a) and (b) of the same run,
// so they compare across machines as well as anything can.
//
// The harness asserts nothing about time. BenchmarkDrain reports the figures
// through testing.B; cmd/drain prints the table for a human; a small test
// runs every scenario over a few thousand records and checks that every
// record arrived.
package bench
