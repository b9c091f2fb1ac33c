package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Allowed values of the enumerated keys.
var (
	orderings      = []string{OrderingPartition, OrderingKey, OrderingNone}
	initialOffsets = []string{"oldest", "newest"}
	balances       = []string{"cooperative-sticky", "sticky", "range", "roundrobin"}
	saslMechanisms = []string{"", SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer}
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"json", "text"}
)

var (
	routeNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// checker collects validation problems, placing each at the line of its key
// path or, when the key is absent, of its nearest parent.
type checker struct {
	file     string
	lines    map[string]int
	problems Errors
	// failed holds the paths that failed to decode; their values are
	// defaults, not what the file says.
	failed map[string]bool
	// fromEnv holds the paths whose values came from the environment, and
	// from which variables ("from ${A}"); no message shows those values.
	fromEnv map[string]string
	// withDefault holds the paths whose value came from references that
	// each give a default (${NAME:-default}).
	withDefault map[string]bool
}

func newChecker(file string, lines map[string]int, failed map[string]bool, fromEnv map[string]string) *checker {
	return &checker{file: file, lines: lines, failed: failed, fromEnv: fromEnv}
}

// decoded reports whether every path decoded as written, so that a check
// comparing them compares what the file says.
func (v *checker) decoded(paths ...string) bool {
	return !slices.ContainsFunc(paths, func(p string) bool { return coveredBy(p, v.failed) })
}

// addf records a problem at path.
func (v *checker) addf(path, format string, args ...any) {
	v.addAt(path, path, format, args...)
}

// addAt records a problem at path, on the line of linePath: a key below
// path that the message does not name.
func (v *checker) addAt(linePath, path, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: v.line(linePath), Path: path, Message: fmt.Sprintf(format, args...)})
}

// line returns the line of path or of its nearest parent that has one, or
// 1 when none is in the file (a file with no routes key, an empty file).
// Without a file (Config.Validate) it is 0.
func (v *checker) line(path string) int {
	if v.lines == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := v.lines[p]; ok {
			return l
		}
	}
	return 1
}

// hideQuoted replaces the first quoted string of msg, which names the value
// at path (ResolveExecutable quotes the command, or the file it found), with
// "(from ${A})" when that value came from the environment. A message with no
// quoted string there is replaced whole.
func (v *checker) hideQuoted(path, msg string) string {
	from, env := v.fromEnv[path]
	if !env {
		return msg
	}
	i := strings.IndexByte(msg, '"')
	if i < 0 {
		return "cannot use the command (" + from + ")"
	}
	q, err := strconv.QuotedPrefix(msg[i:])
	if err != nil {
		return "cannot use the command (" + from + ")"
	}
	return msg[:i] + "(" + from + ")" + msg[i+len(q):]
}

// show quotes the value at path for a message, unless it came from the
// environment, which may hold secrets: then it says from which variables,
// as "(from ${A})", and shows no part of it.
func (v *checker) show(path, value string) string {
	if from, ok := v.fromEnv[path]; ok {
		return "(" + from + ")"
	}
	return strconv.Quote(value)
}

// Validate checks the configuration offline (it contacts no broker) and
// returns every problem at once as Errors, or nil. It expects defaults to
// have been applied (see ApplyDefaults). Problems carry c.File but no line;
// use Parse or Load for positions.
func (c *Config) Validate() error {
	v := newChecker(c.File, nil, nil, nil)
	c.validate(v)
	if len(v.problems) > 0 {
		return v.problems
	}
	return nil
}

// validate adds every problem of c to v.
func (c *Config) validate(v *checker) {
	c.Kafka.validate(v, "kafka")
	validateAdmin(v, "admin.listen", c.Admin.Listen)
	c.Telemetry.validate(v, "telemetry")
	oneOf(v, "log.level", c.Log.Level, logLevels)
	oneOf(v, "log.format", c.Log.Format, logFormats)
	switch {
	case c.ShutdownTimeout <= 0:
		v.addf("shutdown_timeout", "must be > 0")
	case c.ShutdownTimeout > maxKafkaTimeout:
		v.addf("shutdown_timeout", "must be at most %s: the consumer groups' rebalance timeout, 15s longer, "+
			"goes to Kafka in 32-bit milliseconds", maxKafkaTimeout)
	}
	dir := configDir(c.File)
	for _, name := range sortedKeys(c.Plugins) {
		p := c.Plugins[name]
		p.validate(v, joinKey("plugins", name), dir)
	}
	c.validateRoutes(v)
}

// oneOf checks that value is one of allowed. The value is shown unless it
// came from the environment: a key with a fixed set of values holds no
// secret, but a variable may be the wrong one.
func oneOf(v *checker, path, value string, allowed []string) {
	if slices.Contains(allowed, value) {
		return
	}
	shown := make([]string, len(allowed))
	for i, a := range allowed {
		shown[i] = a
		if a == "" {
			shown[i] = `""`
		}
	}
	v.addf(path, "must be one of %s, not %s", strings.Join(shown, ", "), v.show(path, value))
}

// notNegative checks that a number is >= 0.
func notNegative[T ~int | ~int64 | ~float64](v *checker, path string, n T) {
	if n < 0 {
		v.addf(path, "must not be negative")
	}
}

// atLeastOne checks that a number is >= 1.
func atLeastOne(v *checker, path string, n int) {
	if n < 1 {
		v.addf(path, "must be >= 1")
	}
}

// atMost checks that a number is <= limit; below it is checked apart.
func atMost(v *checker, path string, n, limit int) {
	if n > limit {
		v.addf(path, "must be <= %d", limit)
	}
}

// finite checks that a float is neither NaN nor infinite (.nan, .inf).
func finite(v *checker, path string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.addf(path, "must be a finite number")
	}
}

// Upper bounds of counts that size the bridge's own structures, or that its
// libraries keep in narrower types.
const (
	// maxConcurrency bounds a route's concurrency (and so its queue of
	// records, four times as long).
	maxConcurrency = 1 << 16
	// maxEmbeddedPartitions bounds the partitions of each embedded topic.
	maxEmbeddedPartitions = 1024
	// maxBreakerCount bounds the breaker's counts, which gobreaker keeps
	// as uint32.
	maxBreakerCount = math.MaxInt32
)

// What the Kafka client accepts of the kafka section.
var (
	// minKafkaVersion is the oldest version whose records carry headers:
	// every dead-letter record has its hookbridge-error-* headers, and sarama
	// refuses to produce headers to an older one, so that no failed record
	// could be dead-lettered. (Consumer groups need 0.10.2.0, sarama.MinVersion
	// is 0.8.2.0.)
	minKafkaVersion = sarama.V0_11_0_0
	// clientIDRE is what sarama accepts as a client id with a version
	// before 1.0.0 (KIP-190 lifted the limit).
	clientIDRE = regexp.MustCompile(`\A[A-Za-z0-9._-]+\z`)
)

// maxKafkaTimeout bounds kafka.session_timeout and shutdown_timeout (which,
// plus 15s, is the consumer groups' rebalance timeout): the Kafka protocol
// carries both timeouts as 32-bit milliseconds (at most 596h31m23.647s), and
// the client would send a longer one wrapped around, negative or shorter. A
// round number of hours below that leaves room for the 15s.
const maxKafkaTimeout = Duration(596 * time.Hour)

// minHeartbeat is the shortest heartbeat interval bridge/kafka.NewConfig
// sets: a quarter of the session timeout, but at least this. Sarama wants
// the interval shorter than the session timeout.
const minHeartbeat = 100 * time.Millisecond

func (k *Kafka) validate(v *checker, path string) {
	if len(k.Brokers) == 0 && !k.Embedded && v.decoded(path+".brokers", path+".embedded") {
		v.addf(path+".brokers", "at least one broker is required (or set kafka.embedded: true)")
	}
	for i, b := range k.Brokers {
		if err := checkHostPort(b, false); err != nil {
			v.addf(fmt.Sprintf("%s.brokers[%d]", path, i), "%v", err)
		}
	}
	atLeastOne(v, path+".embedded_partitions", k.EmbeddedPartitions)
	atMost(v, path+".embedded_partitions", k.EmbeddedPartitions, maxEmbeddedPartitions)
	k.validateVersion(v, path)
	oneOf(v, path+".initial_offset", k.InitialOffset, initialOffsets)
	switch {
	case k.SessionTimeout < 0:
		v.addf(path+".session_timeout", "must not be negative")
	case k.SessionTimeout.D() <= minHeartbeat:
		v.addf(path+".session_timeout", "must be more than %s: the heartbeat interval is a quarter of it but at least %s, "+
			"and must be shorter", minHeartbeat, minHeartbeat)
	case k.SessionTimeout > maxKafkaTimeout:
		v.addf(path+".session_timeout", "must be at most %s: it goes to Kafka in 32-bit milliseconds", maxKafkaTimeout)
	}
	oneOf(v, path+".balance", k.Balance, balances)
	if k.GroupInstanceID != "" {
		// Kafka checks a group instance id as it checks a topic name.
		if err := topicNameProblem(k.GroupInstanceID, v.show(path+".group_instance_id", k.GroupInstanceID)); err != nil {
			v.addf(path+".group_instance_id", "%s", strings.Replace(err.Error(), "Kafka topic name", "Kafka group instance id", 1))
		}
	} else {
		// A variable set to the empty string would turn static membership
		// off without a word. ${POD_NAME:-} asks for that when it is
		// unset or empty: a file shared by replicas with and without ids.
		v.emptyFromEnv(path+".group_instance_id", "Kafka takes no empty group instance id, and without one this replica "+
			"would join as a dynamic member; set the variable, or leave the key out for dynamic membership")
	}
	if k.ClientRack == "" {
		// Likewise a zone that did not reach the pod: every fetch would go
		// to the leaders, across zones, as if the key were not there.
		v.emptyFromEnv(path+".client_rack", "without a rack this replica fetches from each partition's leader, in whichever "+
			"zone it is; set the variable, or write ${VAR:-} where fetching from the leaders is meant")
	}
	validateTLSFiles(v, path+".tls", k.TLS.CAFile, k.TLS.CertFile, k.TLS.KeyFile)
	if !k.TLS.Enabled && k.TLS != (TLS{}) && v.decoded(path+".tls.enabled") {
		// Without it the client would connect in plaintext, the CA and
		// certificate given and silently unused.
		v.addf(path+".tls.enabled", "must be true when other kafka.tls settings are given (they apply only to TLS)")
	}
	// When tls.enabled or sasl.allow_insecure failed to decode, whether SASL
	// runs without TLS is not known.
	tlsEnabled := k.TLS.Enabled || !v.decoded(path+".tls.enabled", path+".sasl.allow_insecure")
	k.SASL.validate(v, path+".sasl", tlsEnabled)
}

// emptyFromEnv reports a value that came out empty from an environment
// reference written without a default (${VAR}, not ${VAR:-}), saying why
// empty is wrong there.
func (v *checker) emptyFromEnv(path, why string) {
	if from, ok := v.fromEnv[path]; ok && !v.withDefault[path] {
		v.addf(path, "(%s) is empty: %s", from, why)
	}
}

// validateVersion checks kafka.version as the Kafka client reads it, and the
// client id that versions before 1.0.0 limit.
func (k *Kafka) validateVersion(v *checker, path string) {
	version, err := sarama.ParseKafkaVersion(k.Version)
	switch {
	case err != nil:
		v.addf(path+".version", "must be a Kafka version such as 3.0.0 (before 1.0 four numbers, such as 0.11.0.2), not %s",
			v.show(path+".version", k.Version))
	case !version.IsAtLeast(minKafkaVersion):
		v.addf(path+".version", "must be %s or later: record headers, which every dead-letter record carries, need it", minKafkaVersion)
	case !version.IsAtLeast(sarama.V1_0_0_0) && !clientIDRE.MatchString(k.ClientID):
		v.addf(path+".client_id", "must contain only letters, digits, '.', '_' and '-' with a Kafka version before 1.0.0")
	}
	if err == nil && k.ClientRack != "" && !version.IsAtLeast(sarama.V2_3_0_0) {
		v.addf(path+".client_rack", "needs kafka.version 2.3.0 or later: below it the Kafka client does not send the rack, "+
			"and every fetch goes to the leader (brokers pick a replica by rack from Kafka 2.4)")
	}
	if err == nil && k.GroupInstanceID != "" && !version.IsAtLeast(sarama.V2_3_0_0) {
		v.addf(path+".group_instance_id", "needs kafka.version 2.3.0 or later (static membership)")
	}
	if err == nil && k.Balance == "cooperative-sticky" && !version.IsAtLeast(sarama.V2_4_0_0) {
		v.addf(path+".balance", "cooperative-sticky needs kafka.version 2.4.0 or later (cooperative rebalancing); use sticky")
	}
}

// checkFile checks that a file, when named, exists and is not a directory,
// and reports whether it is one to read.
func checkFile(v *checker, path, name string) bool {
	if name == "" {
		return false
	}
	info, err := os.Stat(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		v.addf(path, "file %s does not exist", v.show(path, name))
	case err != nil:
		v.addf(path, "cannot use %s: %v", v.show(path, name), errors.Unwrap(err))
	case info.IsDir():
		v.addf(path, "%s is a directory, not a file", v.show(path, name))
	case !info.Mode().IsRegular():
		// A pipe would block the read, a device such as /dev/zero never
		// end it.
		v.addf(path, "%s is not a regular file (a device, pipe or socket)", v.show(path, name))
	default:
		return true
	}
	return false
}

func (s *SASL) validate(v *checker, path string, tlsEnabled bool) {
	oneOf(v, path+".mechanism", s.Mechanism, saslMechanisms)
	s.validateSecurity(v, path, tlsEnabled)
}

// validateAdmin checks admin.listen: "off" or host:port.
func validateAdmin(v *checker, path, listen string) {
	if listen == AdminOff {
		return
	}
	if err := checkHostPort(listen, true); err != nil {
		v.addf(path, "%v, or %q", err, AdminOff)
	}
}

// checkHostPort checks a host:port address. A listen address may leave the
// host empty (all interfaces) and use port 0 (any free port). Its errors do
// not repeat the address, which may have been written as a URL with
// credentials.
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port")
	}
	if host == "" && !listen {
		return errors.New("must be host:port: the host is missing")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !listen) {
		return errors.New("must be host:port: the port must be a number from 1 to 65535")
	}
	return nil
}

func (t *Telemetry) validate(v *checker, path string) {
	if t.SampleRatio != nil && !(*t.SampleRatio >= 0 && *t.SampleRatio <= 1) {
		v.addf(path+".sample_ratio", "must be from 0 to 1")
	}
	if t.OTLPEndpoint != "" {
		if err := checkHTTPURL(t.OTLPEndpoint); err != nil {
			v.addf(path+".otlp_endpoint", "%v", err)
		}
	}
}

// checkHTTPURL checks that s is an absolute http or https URL with a host.
// Its errors do not repeat the URL, which may hold credentials.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http:// or https:// URL")
	case u.Hostname() == "":
		return errors.New("must have a host")
	}
	return checkURLPort(u)
}

// checkURLPort checks the port of u, when it has one: a number from 1 to
// 65535.
func checkURLPort(u *url.URL) error {
	p := u.Port()
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return errors.New("has an empty port")
		}
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return errors.New("has a port outside 1-65535")
	}
	return nil
}

func (p *Plugin) validate(v *checker, path, dir string) {
	switch {
	case len(p.Command) == 0:
		v.addf(path+".command", "is required")
	case p.Command[0] == "":
		v.addf(path+".command[0]", "must not be empty")
	default:
		exe, err := ResolveExecutable(dir, p.Command[0])
		if err != nil {
			v.addf(path+".command[0]", "%s", v.hideQuoted(path+".command[0]", err.Error()))
			break
		}
		if sha256RE.MatchString(p.SHA256) {
			// run refuses to start a plugin whose file does not match.
			shown := exe
			if from, ok := v.fromEnv[path+".command[0]"]; ok {
				shown = "the command (" + from + ")"
			}
			if got, err := FileSHA256(exe); err != nil {
				v.addf(path+".sha256", "cannot check %s: %v", shown, errorDetail(err))
			} else if !strings.EqualFold(got, p.SHA256) {
				v.addf(path+".sha256", "does not match %s, whose sha256 is %s", shown, got)
			}
		}
	}
	if p.SHA256 != "" && !sha256RE.MatchString(p.SHA256) {
		v.addf(path+".sha256", "must be 64 hexadecimal characters")
	}
	for _, name := range slices.Sorted(maps.Keys(p.Env)) {
		switch {
		case name == "" || strings.ContainsAny(name, "=\x00"):
			v.addf(path+".env", "variable name %q must be non-empty, without \"=\" or NUL", name)
		case strings.ContainsRune(p.Env[name], 0):
			v.addf(path+".env."+name, "must not contain a NUL byte")
		}
	}
	notNegative(v, path+".instances.min", p.Instances.Min)
	atLeastOne(v, path+".instances.max", p.Instances.Max)
	if p.Instances.Min > p.Instances.Max && p.Instances.Max >= 1 && v.decoded(path+".instances.min", path+".instances.max") {
		v.addf(path+".instances.min", "must be <= instances.max (%d)", p.Instances.Max)
	}
	atLeastOne(v, path+".concurrency_per_instance", p.ConcurrencyPerInstance)
	notNegative(v, path+".idle_timeout", p.IdleTimeout)
	notNegative(v, path+".timeout", p.Timeout)
	notNegative(v, path+".start_timeout", p.StartTimeout)
	notNegative(v, path+".max_message_bytes", p.MaxMessageBytes)
	atLeastOne(v, path+".max_outputs", p.MaxOutputs)
}
