package config

import (
	"net/url"
	"time"

	"github.com/IBM/sarama"
)

// Defaults of the fields whose zero value means "default"; the field
// comments in config.go document them.
const (
	DefaultShutdownTimeout        = Duration(25 * time.Second)
	DefaultClientID               = "hookbridge"
	DefaultKafkaVersion           = "3.0.0"
	DefaultInitialOffset          = "oldest"
	DefaultSessionTimeout         = Duration(10 * time.Second)
	DefaultBalance                = "cooperative-sticky"
	DefaultEmbeddedPartitions     = 6
	DefaultAdminListen            = "127.0.0.1:9464"
	DefaultServiceName            = "hookbridge"
	DefaultSampleRatio            = 1.0
	DefaultLogLevel               = "info"
	DefaultLogFormat              = "json"
	DefaultConcurrencyPerInstance = 16
	DefaultIdleTimeout            = Duration(60 * time.Second)
	DefaultPluginTimeout          = Duration(10 * time.Second)
	DefaultPluginStartTimeout     = Duration(30 * time.Second)
	DefaultMaxInstances           = 4
	DefaultPluginMaxMessageBytes  = ByteSize(4 << 20)
	DefaultPluginMaxOutputs       = 1000
	DefaultOrdering               = OrderingKey
	DefaultConcurrency            = 64
	DefaultMaxInFlightBytes       = ByteSize(64 << 20)
	DefaultMaxAttempts            = 10
	DefaultInitialBackoff         = Duration(200 * time.Millisecond)
	DefaultMaxBackoff             = Duration(60 * time.Second)
	DefaultFailureRatio           = 0.5
	DefaultMinRequests            = 20
	DefaultConsecutiveFailures    = 5
	DefaultOpenTimeout            = Duration(15 * time.Second)
	DefaultWebhookTimeout         = Duration(10 * time.Second)
	DefaultBatchMaxBytes          = ByteSize(1 << 20)
	DefaultBatchMaxWait           = Duration(20 * time.Millisecond)
)

// AdminOff is the admin.listen value that disables the admin endpoint.
const AdminOff = "off"

// ApplyDefaults sets every zero value that has a default to that default.
// Route.Group stays empty: Route.GroupID derives it. Parse and Load call
// ApplyDefaults; code that builds a Config itself calls it before Validate.
func (c *Config) ApplyDefaults() {
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Kafka.applyDefaults()
	setDefault(&c.Admin.Listen, DefaultAdminListen)
	c.Telemetry.applyDefaults()
	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)
	for name, p := range c.Plugins {
		p.applyDefaults()
		c.Plugins[name] = p
	}
	for i := range c.Routes {
		c.Routes[i].applyDefaults()
	}
}

// setDefault sets *v to def when *v is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (k *Kafka) applyDefaults() {
	setDefault(&k.EmbeddedPartitions, DefaultEmbeddedPartitions)
	setDefault(&k.ClientID, DefaultClientID)
	setDefault(&k.Version, DefaultKafkaVersion)
	setDefault(&k.InitialOffset, DefaultInitialOffset)
	setDefault(&k.SessionTimeout, DefaultSessionTimeout)
	if k.Balance == "" {
		// Cooperative rebalancing needs brokers of Kafka 2.4 or later.
		k.Balance = DefaultBalance
		if v, err := sarama.ParseKafkaVersion(k.Version); err == nil && !v.IsAtLeast(sarama.V2_4_0_0) {
			k.Balance = "sticky"
		}
	}
}

func (t *Telemetry) applyDefaults() {
	setDefault(&t.ServiceName, DefaultServiceName)
	if t.SampleRatio == nil {
		ratio := DefaultSampleRatio
		t.SampleRatio = &ratio
	}
}

func (p *Plugin) applyDefaults() {
	setDefault(&p.Instances.Max, DefaultMaxInstances)
	setDefault(&p.ConcurrencyPerInstance, DefaultConcurrencyPerInstance)
	setDefault(&p.IdleTimeout, DefaultIdleTimeout)
	setDefault(&p.Timeout, DefaultPluginTimeout)
	setDefault(&p.StartTimeout, DefaultPluginStartTimeout)
	setDefault(&p.MaxMessageBytes, DefaultPluginMaxMessageBytes)
	setDefault(&p.MaxOutputs, DefaultPluginMaxOutputs)
}

func (r *Route) applyDefaults() {
	setDefault(&r.Ordering, DefaultOrdering)
	setDefault(&r.Concurrency, DefaultConcurrency)
	setDefault(&r.MaxInFlightBytes, DefaultMaxInFlightBytes)
	setDefault(&r.Retry.MaxAttempts, DefaultMaxAttempts)
	setDefault(&r.Retry.InitialBackoff, DefaultInitialBackoff)
	setDefault(&r.Retry.MaxBackoff, DefaultMaxBackoff)
	setDefault(&r.Breaker.FailureRatio, DefaultFailureRatio)
	setDefault(&r.Breaker.MinRequests, DefaultMinRequests)
	setDefault(&r.Breaker.ConsecutiveFailures, DefaultConsecutiveFailures)
	setDefault(&r.Breaker.OpenTimeout, DefaultOpenTimeout)
	if r.Target.Webhook != nil {
		r.Target.Webhook.applyDefaults()
	}
}

func (w *Webhook) applyDefaults() {
	setDefault(&w.Timeout, DefaultWebhookTimeout)
	if w.ForwardHeaders == nil {
		forward := true
		w.ForwardHeaders = &forward
	}
	if w.SecretPath == nil {
		secret := false
		if u, err := url.Parse(w.URL); err == nil {
			secret = SecretPathHost(u)
		}
		w.SecretPath = &secret
	}
	setDefault(&w.Batch.MaxBytes, DefaultBatchMaxBytes)
	setDefault(&w.Batch.MaxWait, DefaultBatchMaxWait)
}
