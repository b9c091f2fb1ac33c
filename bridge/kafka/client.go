package kafka

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/bridge/internal/keypair"
)

// A compressed record batch of a few KiB may inflate to gigabytes (zeros
// compress about 30,000 to 1 with zstd), and sarama decompresses without a
// bound unless told one: a handful of such records, read ahead, would
// exhaust the bridge's memory, again after every restart. A decompressed
// batch is bounded as sarama bounds a whole uncompressed response
// (MaxResponseSize, 100 MiB): a larger one fails the fetch with
// sarama.ErrDecompressedBatchTooLarge, and the consumer reports its
// partition as unreadable (Consumer.Ready) instead of reading it.
func init() {
	if sarama.MaxDecompressedBatchSize <= 0 {
		sarama.MaxDecompressedBatchSize = sarama.MaxResponseSize
	}
}

// NewConfig translates the kafka section into a sarama configuration shared by
// consumers and the producer. It reads the TLS files; SASL is PLAIN,
// SCRAM-SHA-256/512 (github.com/xdg-go/scram) or OAUTHBEARER, whose token
// provider fetches and caches an OAuth 2.0 client-credentials token (it
// fetches nothing until the first connection).
func NewConfig(k config.Kafka) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = k.ClientID
	sc.RackID = k.ClientRack // fetches name it (KIP-392): the broker may point them at a replica in that rack
	v, err := sarama.ParseKafkaVersion(k.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka: version %q: %w", k.Version, err)
	}
	if !v.IsAtLeast(sarama.V0_11_0_0) {
		// Every dead-letter record carries headers, which sarama produces
		// only from 0.11.0.0 on: no failed record could be dead-lettered.
		return nil, fmt.Errorf("kafka: version %s: must be 0.11.0.0 or later (record headers)", k.Version)
	}
	sc.Version = v
	sc.Net.DialTimeout = 10 * time.Second
	// Hookbridge never creates topics: sarama's metadata requests would ask
	// a broker that allows it (Apache Kafka's default) to create any topic
	// they name, a reply topic mistyped by a plugin, say.
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Metadata.Retry.Max = 5
	// A metadata request against brokers that accept connections and never
	// answer would otherwise take (read timeout x brokers x retries), nine
	// minutes for one broker, before failing: a bridge starting against
	// such a cluster exits with the error after about 90 s instead (the
	// minute, and the read in progress), and a refresh that gives up while
	// the bridge runs is tried again later.
	sc.Metadata.Timeout = time.Minute
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	// Partitions added to a subscribed topic are consumed once the group
	// rebalances for them: its leader compares the partition counts in the
	// client's metadata with the group's, and the client refreshes that
	// metadata, both every RefreshFrequency. sarama's 10 minutes would leave
	// the records produced to a new partition undelivered for up to 20; one
	// minute bounds that at about two, for one metadata request a minute
	// per client.
	sc.Metadata.RefreshFrequency = time.Minute

	if !k.TLS.Enabled && k.TLS != (config.TLS{}) {
		return nil, errors.New("kafka: tls settings are given but tls.enabled is false: they would go unused, in plaintext")
	}
	if k.TLS.Enabled {
		tc, err := tlsConfig(k.TLS)
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	switch k.SASL.Mechanism {
	case "":
	case config.SASLPlain:
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		sc.Net.SASL.User = k.SASL.Username
		sc.Net.SASL.Password = k.SASL.Password
	case config.SASLScramSHA256, config.SASLScramSHA512:
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		if k.SASL.Mechanism == config.SASLScramSHA512 {
			sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		}
		sc.Net.SASL.User = k.SASL.Username
		sc.Net.SASL.Password = k.SASL.Password
		sc.Net.SASL.SCRAMClientGeneratorFunc = scramGenerator(k.SASL.Mechanism)
	case config.SASLOAuthBearer:
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		var roots *x509.CertPool // nil: the system's
		var ca []byte
		if f := k.SASL.OAuthBearer.CAFile; f != "" {
			pool, pem, err := keypair.CAPoolPEM(f)
			if err != nil {
				return nil, fmt.Errorf("kafka: sasl.oauthbearer.ca_file: %w", err)
			}
			roots, ca = pool, pem
		}
		sc.Net.SASL.TokenProvider = sharedTokenProvider(k.SASL.OAuthBearer, ca, roots)
	default:
		return nil, fmt.Errorf("kafka: sasl mechanism %q is not supported", k.SASL.Mechanism)
	}

	// Consumer: offsets are marked only after a terminal outcome and flushed
	// every second (auto-commit flushes marked offsets only).
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Read committed data only: the records of a transaction its producer
	// aborted are not the topic's (a read_committed Java consumer never
	// sees them), and those of a transaction still open may yet be aborted.
	// A webhook must not act on either. Offsets of aborted records are
	// passed over like those of control records.
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	if k.InitialOffset == "newest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Group.Session.Timeout = k.SessionTimeout.D()
	sc.Consumer.Group.Heartbeat.Interval = max(k.SessionTimeout.D()/4, 100*time.Millisecond)
	sc.Consumer.Group.Rebalance.Timeout = 60 * time.Second
	// Static membership: a restart within the session timeout keeps the
	// member's partitions, and Close does not leave the group.
	sc.Consumer.Group.InstanceId = k.GroupInstanceID
	switch k.Balance {
	case "range":
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "cooperative-sticky":
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	default:
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	}
	// The claim loop keeps reading into its lanes; a short processing time
	// is fine because backpressure pauses the partition instead.
	sc.Consumer.MaxProcessingTime = time.Second
	sc.ChannelBufferSize = 256

	// Producer (dead letters, replies): durable before we acknowledge.
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 5
	sc.Producer.Retry.Backoff = 200 * time.Millisecond
	sc.Producer.Partitioner = NewMurmur2Partitioner
	sc.Producer.MaxMessageBytes = maxProduceBytes
	return sc, nil
}

// NewClient connects a sarama client with sc, a configuration NewConfig
// made from k. When the brokers refuse the SASL credentials (sarama gives up
// after its few metadata attempts) the error begins "kafka: SASL
// authentication failed" and names the mechanism and user, never the
// password; errors.Is(err, sarama.ErrSASLAuthenticationFailed) holds for it.
// Other errors read "kafka: connect [brokers]: ...", with the reason a
// broker gave; one that closed the connection during its set-up, or does not
// take the SASL settings, gets a hint at kafka.tls and kafka.sasl. Brokers
// that answer at brokers but advertise addresses none of which this host
// reaches fail it too (see checkAdvertised).
func NewClient(brokers []string, k config.Kafka, sc *sarama.Config) (sarama.Client, error) {
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		if sasl := saslFailure(err, k); sasl != err {
			return nil, sasl
		}
		if errors.Is(err, sarama.ErrOutOfBrokers) && errors.Unwrap(err) == nil {
			// sarama drops the broker's error code from this one (it
			// keeps only SASL_AUTHENTICATION_FAILED): a listener that
			// does not enable the mechanism, or takes no SASL at all,
			// would fail with no reason. One more connection asks.
			if why := setupError(brokers, sc); why != nil {
				err = fmt.Errorf("%w: %w", err, why)
			}
		}
		return nil, fmt.Errorf("kafka: connect %v: %w%s", brokers, err, connectHint(err, k))
	}
	if err := checkAdvertised(brokers, client); err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := checkRetention(client, k); err != nil {
		_ = client.Close()
		return nil, err
	}
	return client, nil
}

// checkAdvertised refuses brokers whose metadata names, for every broker,
// an address this host cannot connect to, while the bootstrap address
// answered: the brokers' advertised.listeners name an address only they
// reach (Kafka in Docker advertising its container's name or localhost).
// Every request past the first metadata goes to an advertised address, so
// each route then failed to join its group, again and again, with a bare
// dial error ("lookup kafka: no such host") that did not say the address
// came from the brokers. An advertised address among brokers was just
// reached; otherwise one connection that opens to any of them is enough.
func checkAdvertised(brokers []string, client sarama.Client) error {
	var advertised []string
	for _, b := range client.Brokers() {
		if slices.Contains(brokers, b.Addr()) {
			return nil
		}
		advertised = append(advertised, b.Addr())
	}
	if len(advertised) == 0 {
		return nil
	}
	slices.Sort(advertised)
	dialed := make(chan error, len(advertised))
	for _, addr := range advertised {
		go func() {
			conn, err := net.DialTimeout("tcp", addr, client.Config().Net.DialTimeout)
			if err == nil {
				_ = conn.Close()
			}
			dialed <- err
		}()
	}
	var first error
	for range advertised {
		err := <-dialed
		if err == nil {
			return nil
		}
		first = cmp.Or(first, err)
	}
	return fmt.Errorf("kafka: connect %v: the brokers answered there, but advertise addresses this host cannot reach (%s): %w; "+
		"the brokers' advertised.listeners must name an address clients reach (a broker in Docker or Kubernetes that advertises "+
		"its container's name or localhost is reachable only from there): fix advertised.listeners, or add a listener for outside clients "+
		"and set kafka.brokers to it", brokers, strings.Join(advertised, ", "), first)
}

// checkRetention refuses brokers older than Kafka 2.1 (OffsetCommit below
// v5, before KIP-211) when kafka.version is 2.1.0 or later. Such a broker
// keeps a committed offset for the retention time its commit names, and
// sarama builds its commit for kafka.version, where the field no longer
// exists, before it lowers the request's version to the broker's: it names
// 0 ms, which the broker takes as "expire now". At its next offsets cleanup
// (every 10 minutes by default) the group lost every offset it had not
// committed since, for good on a route that got no record meanwhile: a
// restart then delivered the whole topic again (initial_offset: oldest) or
// skipped what was produced while it was down (newest). With kafka.version
// at most the broker's, sarama asks for the broker's own retention. A broker
// that cannot be asked leaves the check to the next start.
func checkRetention(client sarama.Client, k config.Kafka) error {
	if !client.Config().Version.IsAtLeast(sarama.V2_1_0_0) {
		return nil
	}
	b := client.LeastLoadedBroker()
	if b == nil {
		return nil
	}
	resp, err := b.ApiVersions(&sarama.ApiVersionsRequest{})
	if err != nil || sarama.KError(resp.ErrorCode) != sarama.ErrNoError {
		return nil
	}
	for _, key := range resp.ApiKeys {
		if key.ApiKey == apiKeyOffsetCommit && key.MaxVersion < minBrokerRetentionCommit {
			return fmt.Errorf("kafka: broker %s is older than Kafka 2.1 (OffsetCommit v%d at most) and kafka.version is %s: "+
				"the group's offsets would be committed with a retention of 0 ms and dropped by the broker within minutes; "+
				"set kafka.version to the brokers' version (2.0.0 or lower)", b.Addr(), key.MaxVersion, k.Version)
		}
	}
	return nil
}

// apiKeyOffsetCommit is the Kafka API key of OffsetCommit;
// minBrokerRetentionCommit its first version without a retention time (the
// broker's offsets.retention.minutes alone applies, from when the group is
// empty).
const (
	apiKeyOffsetCommit       = 8
	minBrokerRetentionCommit = 5
)

// setupError opens a connection to each of brokers in turn and returns the
// first error of its set-up (TLS, SASL), or nil when none fails so within
// setupProbeMax: brokers that accept connections and never answer (whose
// metadata requests also end in an error with no reason) would hold it up
// for sarama's read timeout each; the connections still opening then end
// in the background.
func setupError(brokers []string, sc *sarama.Config) error {
	found := make(chan error, 1)
	go func() {
		for _, addr := range brokers {
			b := sarama.NewBroker(addr)
			if err := b.Open(sc); err != nil {
				continue
			}
			_, err := b.Connected() // waits for the set-up to end
			_ = b.Close()
			if err != nil {
				found <- err
				return
			}
		}
		found <- nil
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(setupProbeMax):
		return nil
	}
}

// setupProbeMax bounds setupError.
const setupProbeMax = 5 * time.Second

// tlsRefused reports whether err is a TLS alert the broker sent: it refused
// the handshake, the client certificate most often.
func tlsRefused(err error) bool {
	oe, ok := errors.AsType[*net.OpError](err)
	return ok && oe.Op == "remote error"
}

// connectHint says which settings an error of a connection's set-up points
// at, or returns "".
func connectHint(err error, k config.Kafka) string {
	switch {
	case errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		return fmt.Sprintf("; the broker does not enable SASL mechanism %s on this listener: check kafka.sasl.mechanism", k.SASL.Mechanism)
	case errors.Is(err, sarama.ErrIllegalSASLState):
		return "; the broker takes no SASL on this listener (a PLAINTEXT or SSL one): check the port, or remove kafka.sasl"
	case tlsRefused(err) && k.TLS.CertFile == "":
		return "; the broker refused the TLS handshake: its listener may require a client certificate (kafka.tls.cert_file and key_file)"
	case tlsRefused(err):
		return "; the broker refused the TLS handshake: check that the certificate of kafka.tls.cert_file is valid now and issued by a CA the listener trusts"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "; the broker closed the connection during its set-up: check that kafka.tls.enabled and kafka.sasl match the listener's security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
	}
	return ""
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName} //nolint:gosec // opt-in
	if t.CAFile != "" {
		pool, err := keypair.CAPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		// Loaded again when the files change: a renewed certificate goes
		// in the next connection's handshake.
		cert, err := keypair.Load(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: tls client certificate: %w", err)
		}
		tc.GetClientCertificate = cert.GetClientCertificate
	}
	return tc, nil
}

// errPastVisibleEnd is RecordBefore's error when the leader's high watermark
// is below the end asked about: the leader cannot say.
var errPastVisibleEnd = errors.New("the leader's high watermark is below the end asked about")

// RecordBefore reports whether a consumer that reads partition from offset
// from on receives a record below offset end. The offsets in between may hold
// none: a transaction's control records, the records of an aborted
// transaction, or records compaction removed, which a consumer passes over
// without a word, so only a fetch tells a caller that waits for offset end-1
// that nothing is coming. It fetches from the partition's leader through
// client, read_committed as the consumers of NewConfig read (a transaction
// still open holds nothing yet), and never waits for records to be produced.
// After an error it refreshes the topic's metadata, so that a retry asks the
// current leader. A leader whose high watermark is below end (one elected
// since end was looked up) cannot tell: that is an error too.
func RecordBefore(client sarama.Client, topic string, partition int32, from, end int64) (found bool, err error) {
	defer func() {
		if err != nil {
			_ = client.RefreshMetadata(topic)
			err = fmt.Errorf("kafka: fetch %s/%d at %d: %w", topic, partition, from, err)
		}
	}()
	conf := client.Config()
	for from < end {
		leader, err := client.Leader(topic, partition)
		if err != nil {
			return false, err
		}
		req := &sarama.FetchRequest{MaxWaitTime: 0, MinBytes: 0}
		if conf.Version.IsAtLeast(sarama.V0_11_0_0) { // record batches, isolation level
			req.Version = 4
			req.MaxBytes = conf.Consumer.Fetch.MaxBytes
			req.Isolation = conf.Consumer.IsolationLevel
		}
		req.AddBlock(topic, partition, from, conf.Consumer.Fetch.Default, -1)
		resp, err := leader.Fetch(req)
		if err != nil {
			return false, err
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			return false, sarama.ErrIncompleteResponse
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			return false, block.Err
		}
		// The producers whose batches are aborted, as sarama's consumer
		// tells them: from the first offset of their aborted transaction
		// to their abort marker.
		readCommitted := req.Isolation == sarama.ReadCommitted
		aborted := make(map[int64]bool)
		txns := slices.SortedFunc(slices.Values(block.AbortedTransactions), func(a, b *sarama.AbortedTransaction) int {
			return cmp.Compare(a.FirstOffset, b.FirstOffset)
		})
		next := from // past the batches of this response
		for _, rs := range block.RecordsSet {
			if b := rs.RecordBatch; b != nil {
				last := b.FirstOffset + int64(b.LastOffsetDelta)
				for len(txns) > 0 && txns[0].FirstOffset <= last {
					aborted[txns[0].ProducerID] = true
					txns = txns[1:]
				}
				switch {
				case b.Control:
					if len(b.Records) > 0 && isAbortMarker(b.Records[0].Key) {
						delete(aborted, b.ProducerID)
					}
				case readCommitted && b.IsTransactional && aborted[b.ProducerID]:
				default:
					for _, r := range b.Records {
						if o := b.FirstOffset + r.OffsetDelta; o >= from && o < end {
							return true, nil
						}
					}
				}
				next = max(next, last+1)
			}
			if ms := rs.MsgSet; ms != nil { // before 0.11: no control records
				for _, m := range ms.Messages {
					// A compressed message's offset is that of the last one it wraps.
					if m.Offset >= from && m.Offset < end {
						return true, nil
					}
					next = max(next, m.Offset+1)
				}
			}
		}
		if next == from {
			// Nothing up to the high watermark, or a batch too large to
			// look into: the consumer's fetch grows until it gets it.
			if !block.Partial && block.HighWaterMarkOffset < end {
				// The leader shows nothing past its high watermark, and end
				// lies past it: a leader elected since end was looked up,
				// whose high watermark has not caught up yet, says nothing
				// of the offsets in between, which may hold records.
				return false, fmt.Errorf("%w (%d, below %d)", errPastVisibleEnd, block.HighWaterMarkOffset, end)
			}
			return block.Partial, nil
		}
		from = next
	}
	return false, nil
}

// StableEnd returns the offset a read_committed consumer of partition reads
// up to now: its last stable offset, the first offset of the oldest
// transaction still open, or the end of the log when none is. A consumer
// waits there until that transaction ends; the records before it are what
// such a consumer holds now.
func StableEnd(client sarama.Client, topic string, partition int32) (int64, error) {
	leader, err := client.Leader(topic, partition)
	if err != nil {
		return -1, fmt.Errorf("kafka: end of %s/%d: %w", topic, partition, err)
	}
	req := sarama.NewOffsetRequest(client.Config().Version)
	req.IsolationLevel = sarama.ReadCommitted
	req.AddBlock(topic, partition, sarama.OffsetNewest, 1)
	resp, err := leader.GetAvailableOffsets(req)
	if err != nil {
		_ = client.RefreshMetadata(topic)
		return -1, fmt.Errorf("kafka: end of %s/%d: %w", topic, partition, err)
	}
	block := resp.GetBlock(topic, partition)
	switch {
	case block == nil:
		err = sarama.ErrIncompleteResponse
	case !errors.Is(block.Err, sarama.ErrNoError):
		err = block.Err
	case len(block.Offsets) != 1:
		err = sarama.ErrOffsetOutOfRange
	}
	if err != nil {
		_ = client.RefreshMetadata(topic)
		return -1, fmt.Errorf("kafka: end of %s/%d: %w", topic, partition, err)
	}
	return block.Offsets[0], nil
}

// isAbortMarker reports whether key, a control record's key (version,
// type), is that of a transaction's abort marker (type 0).
func isAbortMarker(key []byte) bool {
	return len(key) >= 4 && key[2] == 0 && key[3] == 0
}
