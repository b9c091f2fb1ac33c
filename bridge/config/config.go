// Package config holds Hookbridge's configuration: plain data loaded from YAML,
// with `${VAR}` expansion, defaults for every zero value, and validation that
// reports every problem at once with its file position.
//
// The comments on each field are the user documentation of the key; the README's
// config reference is checked against them.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	Kafka     Kafka     `yaml:"kafka"`
	Admin     Admin     `yaml:"admin"`
	Telemetry Telemetry `yaml:"telemetry"`
	Log       Log       `yaml:"log"`
	// Plugins are out-of-process handlers, by name; routes refer to them.
	Plugins map[string]Plugin `yaml:"plugins"`
	// Routes bind topics to one target each. At least one is required.
	Routes []Route `yaml:"routes"`
	// ShutdownTimeout bounds how long in-flight records may take to finish
	// after SIGTERM/SIGINT; at most 596h (plus 15s it is the consumer
	// groups' rebalance timeout, which Kafka carries in 32-bit
	// milliseconds). Default 25s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// File is the path the config was loaded from (not a YAML key).
	File string `yaml:"-"`
	// Advice is what Load or Parse found valid but likely not what was
	// meant, with positions (not a YAML key). It refuses nothing:
	// `hookbridge validate` prints it and `run` logs it.
	Advice Errors `yaml:"-"`
}

// Kafka is the connection to the cluster.
type Kafka struct {
	// Brokers are host:port bootstrap addresses. Required unless Embedded.
	Brokers []string `yaml:"brokers"`
	// Embedded starts an in-process Kafka-protocol broker (for demos and
	// tests only) and creates every topic the config names. Default false.
	Embedded bool `yaml:"embedded"`
	// EmbeddedPartitions is the partition count of topics the embedded
	// broker creates. Default 6.
	EmbeddedPartitions int `yaml:"embedded_partitions"`
	// ClientID is sent to the brokers. Default "hookbridge".
	ClientID string `yaml:"client_id"`
	// ClientRack is where this replica runs (an availability zone), named
	// as the brokers' broker.rack names theirs: with the brokers'
	// replica.selector.class set to RackAwareReplicaSelector, the routes
	// fetch from a replica in the same rack rather than from the leader
	// (KIP-392: brokers 2.4 or later, kafka.version 2.3.0 or later).
	// Default "": the leader.
	ClientRack string `yaml:"client_rack"`
	// Version is the Kafka protocol version to speak. Default "3.0.0".
	Version string `yaml:"version"`
	TLS     TLS    `yaml:"tls"`
	SASL    SASL   `yaml:"sasl"`
	// InitialOffset is where a group with no committed offset of a topic
	// starts on it: "oldest" or "newest". A partition without one of a
	// topic the group has committed offsets of starts at its oldest record.
	// Default "oldest".
	InitialOffset string `yaml:"initial_offset"`
	// SessionTimeout is the consumer group session timeout: more than
	// 100ms, at most 596h (Kafka carries it in 32-bit milliseconds).
	// Default 10s.
	SessionTimeout Duration `yaml:"session_timeout"`
	// Balance is the partition assignment strategy: "cooperative-sticky"
	// (incremental rebalances, Kafka 2.4 or later), "sticky", "range" or
	// "roundrobin". Default "cooperative-sticky", or "sticky" when Version
	// is below 2.4.
	Balance string `yaml:"balance"`
	// GroupInstanceID makes this replica a static member (KIP-345) of every
	// route's group under this id: restarted within session_timeout, it
	// gets its partitions back without a rebalance, and a shutdown does not
	// leave the groups. Each replica needs its own id, the same across its
	// restarts (a StatefulSet pod's name). Kafka 2.3 or later. Default "":
	// dynamic membership; an id that comes out empty from ${VAR} is refused
	// (${VAR:-} asks for dynamic membership when VAR is unset or empty).
	GroupInstanceID string `yaml:"group_instance_id"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled  bool   `yaml:"enabled"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify disables certificate verification. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ServerName is the name the brokers' certificates must carry. Default
	// "": the host of the address dialled.
	ServerName string `yaml:"server_name"`
}

// SASL configures SASL authentication to the brokers.
type SASL struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" or
	// "OAUTHBEARER". Default "" (none).
	Mechanism string `yaml:"mechanism"`
	// Username is required by PLAIN and SCRAM.
	Username string `yaml:"username"`
	// Password is required by PLAIN and SCRAM. It is never logged.
	Password string `yaml:"password"`
	// OAuthBearer is the OAuth 2.0 client-credentials grant that supplies
	// the OAUTHBEARER token; required by, and only used with, that mechanism.
	OAuthBearer OAuth2 `yaml:"oauthbearer"`
	// AllowInsecure permits SASL without kafka.tls.enabled, which sends the
	// PLAIN password or the OAUTHBEARER token in the clear and leaves every
	// session unprotected. Default false: SASL without TLS is refused.
	AllowInsecure bool `yaml:"allow_insecure"`
}

// Admin is the HTTP endpoint for health and metrics.
type Admin struct {
	// Listen is the address of GET /livez, /readyz and /metrics.
	// Default "127.0.0.1:9464"; "off" disables the endpoint.
	Listen string `yaml:"listen"`
}

// Telemetry configures traces and metrics.
type Telemetry struct {
	// ServiceName is the OpenTelemetry service.name. Default "hookbridge".
	ServiceName string `yaml:"service_name"`
	// OTLPEndpoint is the URL of an OTLP/gRPC collector, e.g.
	// http://127.0.0.1:4317. Default "" (the OTEL_EXPORTER_OTLP_* variables, else no export).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the fraction of traces sampled, 0 to 1. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// Log configures the process log.
type Log struct {
	// Level is "debug", "info", "warn" or "error". Default "info".
	Level string `yaml:"level"`
	// Format is "json" or "text". Default "json".
	Format string `yaml:"format"`
}

// Plugin is an out-of-process handler started and supervised by the bridge.
type Plugin struct {
	// Command is the executable and its arguments. Required.
	Command []string `yaml:"command"`
	// SHA256 is the expected checksum of the executable, hex. Optional.
	SHA256 string `yaml:"sha256"`
	// Env is added to the plugin's environment.
	Env       map[string]string `yaml:"env"`
	Instances Instances         `yaml:"instances"`
	// ConcurrencyPerInstance bounds calls in flight to one process. Default 16.
	ConcurrencyPerInstance int `yaml:"concurrency_per_instance"`
	// IdleTimeout is how long an instance above Min may sit idle before it
	// is stopped. Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Timeout bounds one call. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// StartTimeout bounds each step of a process's start: the handshake,
	// the health check and the wait for its stream's ready message.
	// Default 30s.
	StartTimeout Duration `yaml:"start_timeout"`
	// MaxMessageBytes is the largest gRPC message either side sends: a
	// record (with its headers) above it is dead-lettered as a permanent
	// error, and so is a reply above it. Default 4MiB.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// MaxOutputs bounds the outputs of one answer: an answer with more is a
	// permanent error (the record is dead-lettered). Each output becomes a
	// record to produce, which costs far more memory than its bytes on the
	// wire (an empty output takes two). Default 1000.
	MaxOutputs int `yaml:"max_outputs"`
}

// Instances bounds a plugin's process pool.
type Instances struct {
	// Min processes kept running; 0 = scale to zero when idle. Default 0.
	Min int `yaml:"min"`
	// Max processes. Default 4.
	Max int `yaml:"max"`
}

// Ordering values.
const (
	OrderingPartition = "partition"
	OrderingKey       = "key"
	OrderingNone      = "none"
)

// Route binds topics to one target.
type Route struct {
	// Name identifies the route in metrics, logs and the dead-letter headers.
	// Required, unique, [A-Za-z0-9._-].
	Name string `yaml:"name"`
	// Topics to consume. Required.
	Topics []string `yaml:"topics"`
	// Group is the consumer group id. Default "hookbridge.<name>".
	Group string `yaml:"group"`
	// Ordering is "partition" (one record at a time per partition), "key"
	// (in order per key, keys concurrently) or "none". Default "key".
	Ordering string `yaml:"ordering"`
	// Concurrency bounds records in flight for the route. Default 64.
	Concurrency int `yaml:"concurrency"`
	// MaxInFlightBytes bounds the bytes of records held for the route;
	// consumption pauses above it. Default 64MiB.
	MaxInFlightBytes ByteSize `yaml:"max_in_flight_bytes"`
	// Filter selects records; records that do not match are acknowledged
	// without delivery. Default: every record matches.
	Filter     Filter      `yaml:"filter"`
	Target     RouteTarget `yaml:"target"`
	Retry      Retry       `yaml:"retry"`
	Breaker    Breaker     `yaml:"breaker"`
	DeadLetter DeadLetter  `yaml:"dead_letter"`
	Reply      Reply       `yaml:"reply"`
}

// GroupID returns the consumer group id of the route.
func (r *Route) GroupID() string {
	if r.Group != "" {
		return r.Group
	}
	return "hookbridge." + r.Name
}

// Filter selects records by header values and key prefix. All conditions must hold.
type Filter struct {
	// Headers maps a header name to the value it must have.
	Headers map[string]string `yaml:"headers"`
	// KeyPrefix is a prefix the record key must start with.
	KeyPrefix string `yaml:"key_prefix"`
}

// RouteTarget names exactly one of a webhook or a plugin.
type RouteTarget struct {
	Webhook *Webhook `yaml:"webhook"`
	// Plugin is the name of an entry in plugins.
	Plugin string `yaml:"plugin"`
}

// Webhook is an HTTP endpoint records are POSTed to.
type Webhook struct {
	// URL is the http or https endpoint. Required.
	URL string `yaml:"url"`
	// Timeout bounds one request, response included. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
	// SigningSecrets are Standard Webhooks secrets (whsec_ + base64 of 24-64
	// bytes); every one signs, so two can be used during rotation. Optional.
	SigningSecrets []string `yaml:"signing_secrets"`
	// SigningSecretsFile names a file of signing secrets, one per line;
	// blank lines and lines starting with # are ignored. Its secrets sign
	// along with SigningSecrets. Read at start-up and again by a reload
	// (SIGHUP) when it changed. Default "" (none).
	SigningSecretsFile string `yaml:"signing_secrets_file"`
	// TLS configures HTTPS to the URL: trusted CAs, a client certificate.
	TLS WebhookTLS `yaml:"tls"`
	// BearerToken is sent as "Authorization: Bearer <token>". Default "" (none).
	BearerToken string `yaml:"bearer_token"`
	// BearerTokenFile names a file holding the bearer token; it is read
	// again whenever its modification time or size changes. Default "" (none).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// OAuth2 fetches the bearer token with the OAuth 2.0 client-credentials
	// grant. Default: off.
	OAuth2 OAuth2 `yaml:"oauth2"`
	// DenyPrivateNetworks refuses, when dialling, any address that is
	// loopback, private, link-local (cloud metadata included), shared
	// (CGNAT), unique-local, unspecified, multicast or reserved, also in its
	// IPv4-mapped IPv6 form. A refused request is a permanent failure.
	// Default false.
	DenyPrivateNetworks bool `yaml:"deny_private_networks"`
	// Proxy sends requests through an HTTP(S) or SOCKS5 proxy. Default: none.
	Proxy Proxy `yaml:"proxy"`
	// UseEnvProxy takes the proxy from HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
	// Default false: the environment is ignored.
	UseEnvProxy bool `yaml:"use_env_proxy"`
	// AllowProxyWithDenyPrivateNetworks permits a proxy together with
	// DenyPrivateNetworks. The proxy resolves and dials the URL's host, so
	// the guard cannot see that address: set it only when the proxy enforces
	// its own egress policy. Default false.
	AllowProxyWithDenyPrivateNetworks bool `yaml:"allow_proxy_with_deny_private_networks"`
	// ForwardHeaders passes record headers as kafka-header-<name>. Default true.
	ForwardHeaders *bool `yaml:"forward_headers"`
	// SecretPath says the URL's path is itself a secret, as in Slack, Discord
	// and Microsoft Teams incoming webhooks: wherever Hookbridge shows the
	// URL (logs, errors, dead-letter headers, metric labels, span
	// attributes) it shows scheme://host/REDACTED-<fingerprint> instead (see
	// ShownURL). Default: true for the hosts of those services
	// (SecretPathHost), false for any other.
	SecretPath *bool `yaml:"secret_path"`
	Batch      Batch `yaml:"batch"`
	// RateLimit is requests per second to this URL from one bridge process
	// (every replica has its own limiter), 0 = none. Default 0.
	RateLimit float64 `yaml:"rate_limit"`
}

// Batch configures batch mode; MaxMessages 0 sends one record per request.
type Batch struct {
	MaxMessages int      `yaml:"max_messages"` // default 0
	MaxBytes    ByteSize `yaml:"max_bytes"`    // default 1MiB
	MaxWait     Duration `yaml:"max_wait"`     // default 20ms
}

// Retry bounds retries of retryable failures.
type Retry struct {
	// MaxAttempts is the number of attempts before a record is dead-lettered
	// (or, without a dead-letter topic, retried on at MaxBackoff). Default 10.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the first wait; waits double with full jitter. Default 200ms.
	InitialBackoff Duration `yaml:"initial_backoff"`
	// MaxBackoff caps one wait, Retry-After included. Default 60s.
	MaxBackoff Duration `yaml:"max_backoff"`
	// MaxAge bounds how long a record may wait in total, from when the bridge
	// read it (outages and time queued behind other records included); 0 = no
	// bound. Default 0.
	MaxAge Duration `yaml:"max_age"`
}

// Breaker configures the target's circuit breaker.
type Breaker struct {
	// FailureRatio trips the breaker when this fraction of at least
	// MinRequests requests failed. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests for FailureRatio to apply. Default 20.
	MinRequests int `yaml:"min_requests"`
	// ConsecutiveFailures in a row, however far apart, trip the breaker on
	// their own. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// OpenTimeout is how long the breaker stays open before a probe, plus a
	// random jitter of up to a fifth of it, drawn at each opening. Default 15s.
	OpenTimeout Duration `yaml:"open_timeout"`
}

// DeadLetter names the topic failed records are written to.
type DeadLetter struct {
	// Topic must exist. Default "" (no dead-letter topic: retry forever).
	Topic string `yaml:"topic"`
}

// Reply names the topic handler outputs are produced to.
type Reply struct {
	// Topic must exist. Default "" (outputs that name no topic of their
	// own are discarded).
	Topic string `yaml:"topic"`
}

// Duration is a time.Duration written as "10s", "200ms", "1m30s".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a number of bytes written as 1048576, "512KiB", "64MiB", "1GiB",
// "10KB" or "1MB".
type ByteSize int64
