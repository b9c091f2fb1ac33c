package kafka

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"

	"github.com/hookbridge/hookbridge/bridge/internal/logevery"
)

// throttleMetric is the prefix of the histogram, one per broker, in which
// sarama records how long that broker throttled one of its answers (a client
// quota, KIP-219: the broker answers at once, and sarama waits the time out
// before its next request to that broker). It is the only place sarama
// reports it: nothing is logged, and no request fails.
const throttleMetric = "throttle-time-in-ms-for-broker-"

// throttleLogEvery bounds the throttle lines of one client: a quota
// throttles most answers while it lasts.
const throttleLogEvery = time.Minute

// ReportThrottles makes the clients built from sc report each answer a broker
// throttled: count gets the time (for a metric), and a warning names the
// broker, at most once a minute per sc (the answers throttled in between
// are counted in the next line). It replaces sc's metric registry with one
// that sarama fills as before.
func ReportThrottles(sc *sarama.Config, log *slog.Logger, count func(time.Duration)) {
	notes := &throttleNotes{log: log, count: count, clientID: sc.ClientID}
	notes.lines.Every = throttleLogEvery
	sc.MetricRegistry = &throttleRegistry{Registry: metrics.NewRegistry(), notes: notes}
}

// throttleRegistry hands sarama's brokers a throttle histogram that also
// tells notes.
type throttleRegistry struct {
	metrics.Registry
	notes *throttleNotes
}

func (r *throttleRegistry) GetOrRegister(name string, m any) any {
	id, ok := strings.CutPrefix(name, throttleMetric)
	newHistogram, isFunc := m.(func() metrics.Histogram)
	if !ok || !isFunc {
		return r.Registry.GetOrRegister(name, m)
	}
	broker, err := strconv.ParseInt(id, 10, 32)
	if err != nil {
		broker = -1
	}
	return r.Registry.GetOrRegister(name, func() metrics.Histogram {
		return throttleHistogram{Histogram: newHistogram(), notes: r.notes, broker: int32(broker)}
	})
}

// throttleHistogram is sarama's histogram of one broker's throttle times.
type throttleHistogram struct {
	metrics.Histogram
	notes  *throttleNotes
	broker int32
}

// Update is sarama's report of one throttled answer, in milliseconds (only
// answers with a throttle time are reported).
func (h throttleHistogram) Update(ms int64) {
	h.Histogram.Update(ms)
	h.notes.note(h.broker, time.Duration(ms)*time.Millisecond)
}

// throttleNotes counts and logs the throttled answers of the clients of one
// configuration.
type throttleNotes struct {
	log      *slog.Logger
	count    func(time.Duration)
	clientID string
	lines    logevery.Throttle
}

func (n *throttleNotes) note(broker int32, d time.Duration) {
	if d <= 0 {
		return
	}
	if n.count != nil {
		n.count(d)
	}
	n.lines.Note(func(repeated int, within time.Duration) {
		args := []any{"broker", broker, "client_id", n.clientID, "throttle", d.String()}
		if repeated > 0 {
			args = append(args, "repeated", repeated, "within", within.String())
		}
		n.log.Warn("broker throttles this client (client quota)", args...)
	})
}
