package bridge

import (
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// throttleAnswers makes the cluster answer the route's next two heartbeats
// itself, each throttled for 150 ms, and the first write to orders.dlq with
// a retriable refusal throttled for 300 ms, as a broker throttles a client
// over its quota (KIP-219): the answer comes at once, with the time the
// client must wait before its next request.
func throttleAnswers(heartbeats, writes *atomic.Int32) func(*kfake.Cluster) {
	return func(c *kfake.Cluster) {
		c.ControlKey(int16(kmsg.Heartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if heartbeats.Add(1) > 2 {
				return nil, nil, false
			}
			resp := kreq.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ThrottleMillis = 150
			return resp, nil, true
		})
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			req := kreq.(*kmsg.ProduceRequest)
			if len(req.Topics) == 0 || req.Topics[0].Topic != "orders.dlq" || writes.Add(1) > 1 {
				return nil, nil, false
			}
			resp := refusedWrite(req, kerr.NotEnoughReplicas.Code)
			resp.ThrottleMillis = 300
			return resp, nil, true
		})
	}
}

// A broker that throttles the bridge's requests (a client quota) slows it
// down and fails nothing, and sarama says so only in its metrics registry:
// the operator saw lag grow with no cause in the bridge's metrics or log.
// The time is counted in hookbridge_kafka_throttle_seconds_total, by client
// (a route's fetches and group requests, or the producer of dead letters and
// replies), and each client logs it, once a minute at most.
func TestKafkaThrottlesAreCountedAndLogged(t *testing.T) {
	var heartbeats, writes atomic.Int32
	rig := newAccountingRig(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(string(body), "bad") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}, throttleAnswers(&heartbeats, &writes), nil)
	const name = "hookbridge_kafka_throttle_seconds_total"
	producer := map[string]string{"client": "producer"}
	consumer := map[string]string{"client": "consumer", "route": "orders-billing", "group": "hookbridge.orders-billing"}

	rig.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("ka"), Value: []byte("bad-1")},
		&kgo.Record{Topic: "orders", Partition: 1, Key: []byte("kb"), Value: []byte("ok-1")})
	waitUntil(t, "the dead letter and the delivery", func() bool {
		return rig.sum(t, "hookbridge_records_dead_lettered_total") == 1 && rig.sum(t, "hookbridge_records_delivered_total") == 1
	})
	waitUntil(t, "two throttled heartbeats", func() bool { return heartbeats.Load() > 2 })

	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if got := metricSum(t, rig.m, name, producer); !near(got, 0.3) {
		t.Errorf("producer's throttle time = %v s, want 0.3", got)
	}
	if got := metricSum(t, rig.m, name, consumer); !near(got, 0.3) {
		t.Errorf("route's throttle time = %v s, want 0.3 (two heartbeats of 150 ms)", got)
	}

	lines := rig.logs.lines(t, "broker throttles this client (client quota)")
	var routeLines, producerLines int
	for _, l := range lines {
		switch {
		case l["route"] == "orders-billing" && l["throttle"] == "150ms":
			routeLines++
		case l["client"] == "producer" && l["throttle"] == "300ms":
			producerLines++
		default:
			t.Errorf("unexpected line %v", l)
		}
		if l["broker"] == nil || l["client_id"] != "hookbridge" {
			t.Errorf("line %v does not name the broker and the client id", l)
		}
	}
	if routeLines != 1 || producerLines != 1 {
		t.Errorf("%d lines of the route and %d of the producer, want 1 each (the second heartbeat within the minute is held): %v",
			routeLines, producerLines, lines)
	}
}
