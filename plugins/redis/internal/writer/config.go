package writer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/plugins/internal/envconfig"
)

// Mode is how records are written.
type Mode string

const (
	// ModeStream appends each record to a stream as an entry (XADD) with
	// the fields topic, partition, offset, key, value, timestamp, headers.
	ModeStream Mode = "stream"
	// ModeList pushes each record's value onto the head of a list (LPUSH);
	// a consumer pops from the tail (RPOP/BRPOP) to read in order.
	ModeList Mode = "list"
	// ModeSet stores each record's value under its key (SET).
	ModeSet Mode = "set"
)

// The plugin's environment variables.
const (
	EnvURL          = "REDIS_URL"
	EnvMode         = "REDIS_MODE"
	EnvKey          = "REDIS_KEY"
	EnvMaxLen       = "REDIS_MAXLEN"
	EnvTTL          = "REDIS_TTL"
	EnvDedupeTTL    = "REDIS_DEDUPE_TTL"
	EnvDedupePrefix = "REDIS_DEDUPE_PREFIX"
)

// Defaults.
const (
	DefaultMode         = ModeStream
	DefaultDedupeTTL    = 24 * time.Hour
	DefaultDedupePrefix = "hookbridge:dedupe:"
)

// Config is the plugin's configuration. Each field names its environment
// variable; the zero value of an optional field means its default.
type Config struct {
	// URL of the server (REDIS_URL, required): redis://[user:password@]host:port[/db],
	// rediss:// for TLS or unix:///path.sock, with go-redis's query
	// options (pool_size, dial_timeout, read_timeout, ...).
	URL string
	// Mode (REDIS_MODE): stream (default), list or set.
	Mode Mode
	// Key is the key template (REDIS_KEY, required), see Template.
	Key *Template
	// MaxLen (REDIS_MAXLEN, stream mode only): trim the stream to about
	// this many entries on every XADD (MAXLEN ~). 0, the default: no trim.
	MaxLen int64
	// TTL (REDIS_TTL, set mode only): expiry of each key written, a Go
	// duration (90s, 24h). 0, the default: no expiry.
	TTL time.Duration
	// DedupeTTL (REDIS_DEDUPE_TTL, stream and list modes): how long the
	// marker of a written record is kept; a redelivery after that writes
	// the record again. Default 24h.
	DedupeTTL time.Duration
	// DedupePrefix (REDIS_DEDUPE_PREFIX, stream and list modes): prefix of
	// the marker keys. Default "hookbridge:dedupe:".
	DedupePrefix string

	// options is URL parsed.
	options *redis.Options
}

// ConfigFromEnv reads the configuration from getenv (os.Getenv) and
// validates it, reporting every problem at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var problems envconfig.Problems
	bad := problems.Add
	c := Config{
		URL:          strings.TrimSpace(getenv(EnvURL)),
		Mode:         Mode(strings.ToLower(strings.TrimSpace(getenv(EnvMode)))),
		DedupePrefix: getenv(EnvDedupePrefix),
	}
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.DedupePrefix == "" {
		c.DedupePrefix = DefaultDedupePrefix
	}

	switch {
	case c.URL == "":
		bad(EnvURL, "required (redis://host:6379/0, rediss://... or unix:///path.sock)")
	default:
		opts, err := redis.ParseURL(c.URL)
		if err != nil {
			bad(EnvURL, "%v", redactURLError(err, c.URL))
		} else {
			c.options = opts
		}
	}
	switch c.Mode {
	case ModeStream, ModeList, ModeSet:
	default:
		bad(EnvMode, "%q is not one of stream, list, set", c.Mode)
	}
	if src := getenv(EnvKey); src == "" {
		bad(EnvKey, "required: a key template such as events:{topic} (placeholders {topic}, {partition}, {offset}, {key}, {route})")
	} else if t, err := ParseTemplate(src); err != nil {
		bad(EnvKey, "%v", err)
	} else if strings.HasPrefix(t.Prefix(), c.DedupePrefix) {
		// Every record would be refused (see Handler.Handle).
		bad(EnvKey, "%q renders keys that start with %s %q, where the dedupe markers are kept; give one of them another prefix",
			src, EnvDedupePrefix, c.DedupePrefix)
	} else {
		c.Key = t
	}
	if s := getenv(EnvMaxLen); s != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		switch {
		case err != nil || n < 0:
			bad(EnvMaxLen, "%q is not a whole number >= 0", s)
		case c.Mode != ModeStream:
			bad(EnvMaxLen, "only applies to REDIS_MODE=stream, not %s", c.Mode)
		default:
			c.MaxLen = n
		}
	}
	if s := getenv(EnvTTL); s != "" {
		d, err := parseDuration(s)
		switch {
		case err != nil:
			bad(EnvTTL, "%v", err)
		case c.Mode != ModeSet:
			bad(EnvTTL, "only applies to REDIS_MODE=set, not %s", c.Mode)
		default:
			c.TTL = d
		}
	}
	c.DedupeTTL = DefaultDedupeTTL
	if s := getenv(EnvDedupeTTL); s != "" {
		d, err := parseDuration(s)
		switch {
		case err != nil:
			bad(EnvDedupeTTL, "%v", err)
		case d < time.Millisecond:
			bad(EnvDedupeTTL, "%q is shorter than 1ms: records would be written again when redelivered", s)
		default:
			c.DedupeTTL = d
		}
	}
	if err := problems.Err("hookbridge-redis"); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Addr returns the server's address, without credentials, for logs.
func (c Config) Addr() string {
	if c.options == nil {
		return ""
	}
	return c.options.Addr
}

// parseDuration parses a positive Go duration.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (90s, 15m, 24h)", s)
	}
	return d, nil
}

// redactURLError keeps a password in the URL out of an error message. The
// parser's message may quote the URL escaped (a " or \ in the password) or
// cut (at a / ? or # in the password, the text after the user's colon taken
// for a port), so the password is not searched for in it: the URL is parsed
// again with the password replaced, and that error is the one reported; when
// that parses, the password is what is wrong, and the error says so without
// quoting anything.
func redactURLError(err error, url string) error {
	pw := urlPassword(url)
	if pw == "" {
		return err
	}
	const mask = "xxxxx"
	redacted := strings.Replace(url, ":"+pw+"@", ":"+mask+"@", 1)
	if _, rerr := redis.ParseURL(redacted); rerr != nil {
		return errors.New(strings.ReplaceAll(rerr.Error(), pw, mask))
	}
	return errors.New("not a valid URL (not shown: it has a password); percent-encode the password's special characters, such as %2F for /, %40 for @, %25 for %")
}

// urlPassword returns the text between the first colon after "://" and the
// last "@", where a URL's password is; "" when there is none.
func urlPassword(url string) string {
	i := strings.Index(url, "://")
	if i < 0 {
		return ""
	}
	rest := url[i+3:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
		return rest[colon+1 : at]
	}
	return ""
}
