package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Allowed values of the enumerated keys.
var (
	orderings      = []string{OrderingPartition, OrderingKey, OrderingNone}
	initialOffsets = []string{"oldest", "newest"}
	balances       = []string{"sticky", "range", "roundrobin"}
	saslMechanisms = []string{"", SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer}
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"json", "text"}
)

var (
	routeNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	versionRE   = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
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
}

func newChecker(file string, lines map[string]int, failed map[string]bool) *checker {
	return &checker{file: file, lines: lines, failed: failed}
}

// decoded reports whether every path decoded as written, so that a check
// comparing them compares what the file says.
func (v *checker) decoded(paths ...string) bool {
	return !slices.ContainsFunc(paths, func(p string) bool { return coveredBy(p, v.failed) })
}

// addf records a problem at path.
func (v *checker) addf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: v.line(path), Path: path, Message: fmt.Sprintf(format, args...)})
}

// line returns the line of path or of its nearest parent that has one.
func (v *checker) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := v.lines[p]; ok {
			return l
		}
	}
	return 0
}

// Validate checks the configuration offline (it contacts no broker) and
// returns every problem at once as Errors, or nil. It expects defaults to
// have been applied (see ApplyDefaults). Problems carry c.File but no line;
// use Parse or Load for positions.
func (c *Config) Validate() error {
	v := newChecker(c.File, nil, nil)
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
	if c.ShutdownTimeout <= 0 {
		v.addf("shutdown_timeout", "must be > 0")
	}
	dir := configDir(c.File)
	for _, name := range sortedKeys(c.Plugins) {
		p := c.Plugins[name]
		p.validate(v, joinKey("plugins", name), dir)
	}
	c.validateRoutes(v)
}

// oneOf checks that value is one of allowed.
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
	v.addf(path, "must be one of %s, not %q", strings.Join(shown, ", "), value)
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

func (k *Kafka) validate(v *checker, path string) {
	if len(k.Brokers) == 0 && !k.Embedded {
		v.addf(path+".brokers", "at least one broker is required (or set kafka.embedded: true)")
	}
	for i, b := range k.Brokers {
		if err := checkHostPort(b, false); err != nil {
			v.addf(fmt.Sprintf("%s.brokers[%d]", path, i), "%v", err)
		}
	}
	atLeastOne(v, path+".embedded_partitions", k.EmbeddedPartitions)
	if !versionRE.MatchString(k.Version) {
		v.addf(path+".version", "must be a version such as 3.0.0, not %q", k.Version)
	}
	oneOf(v, path+".initial_offset", k.InitialOffset, initialOffsets)
	if k.SessionTimeout < 0 {
		v.addf(path+".session_timeout", "must not be negative")
	}
	oneOf(v, path+".balance", k.Balance, balances)
	k.TLS.validate(v, path+".tls")
	k.SASL.validate(v, path+".sasl", k.TLS.Enabled)
}

func (t *TLS) validate(v *checker, path string) {
	checkFile(v, path+".ca_file", t.CAFile)
	checkFile(v, path+".cert_file", t.CertFile)
	checkFile(v, path+".key_file", t.KeyFile)
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.addf(path, "cert_file and key_file must be set together")
	}
}

// checkFile checks that a file, when named, exists and is not a directory.
func checkFile(v *checker, path, name string) {
	if name == "" {
		return
	}
	info, err := os.Stat(name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		v.addf(path, "file %q does not exist", name)
	case err != nil:
		v.addf(path, "cannot use %q: %v", name, errors.Unwrap(err))
	case info.IsDir():
		v.addf(path, "%q is a directory, not a file", name)
	}
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
// host empty (all interfaces) and use port 0 (any free port).
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, not %q", addr)
	}
	if host == "" && !listen {
		return fmt.Errorf("must be host:port, not %q: the host is missing", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (n == 0 && !listen) {
		return fmt.Errorf("must be host:port, not %q: the port must be a number from 1 to 65535", addr)
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
	case u.Host == "":
		return errors.New("must have a host")
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
		if _, err := ResolveExecutable(dir, p.Command[0]); err != nil {
			v.addf(path+".command[0]", "%v", err)
		}
	}
	if p.SHA256 != "" && !sha256RE.MatchString(p.SHA256) {
		v.addf(path+".sha256", "must be 64 hexadecimal characters")
	}
	notNegative(v, path+".instances.min", p.Instances.Min)
	atLeastOne(v, path+".instances.max", p.Instances.Max)
	if p.Instances.Min > p.Instances.Max && p.Instances.Max >= 1 && v.decoded(path+".instances.min", path+".instances.max") {
		v.addf(path+".instances.min", "must be <= instances.max (%d)", p.Instances.Max)
	}
	atLeastOne(v, path+".concurrency_per_instance", p.ConcurrencyPerInstance)
	notNegative(v, path+".idle_timeout", p.IdleTimeout)
	notNegative(v, path+".timeout", p.Timeout)
	notNegative(v, path+".max_message_bytes", p.MaxMessageBytes)
}
