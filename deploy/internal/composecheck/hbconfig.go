package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// hbConfig is the part of a Hookbridge config file the deployment checks
// look at. The config itself is validated by `hookbridge validate` (check.sh
// runs it on every config these checks produce); this only reads it.
type hbConfig struct {
	Kafka struct {
		Brokers       []string `json:"brokers"`
		InitialOffset string   `json:"initial_offset"`
		TLS           struct {
			Enabled scalar `json:"enabled"` // "true", or "${VAR}", which may be
		} `json:"tls"`
		SASL struct {
			Mechanism string `json:"mechanism"`
		} `json:"sasl"`
		GroupInstanceID string `json:"group_instance_id"`
		SessionTimeout  scalar `json:"session_timeout"`
	} `json:"kafka"`
	Admin struct {
		Listen string `json:"listen"`
	} `json:"admin"`
	Telemetry struct {
		OTLPEndpoint string `json:"otlp_endpoint"`
	} `json:"telemetry"`
	ShutdownTimeout scalar    `json:"shutdown_timeout"`
	Routes          []hbRoute `json:"routes"`
	raw             string
}

type hbRoute struct {
	Name   string   `json:"name"`
	Topics []string `json:"topics"`
	Group  string   `json:"group"`
	Target struct {
		Webhook *struct {
			URL            string   `json:"url"`
			SigningSecrets []string `json:"signing_secrets"`
		} `json:"webhook"`
		Plugin string `json:"plugin"`
	} `json:"target"`
	DeadLetter struct {
		Topic string `json:"topic"`
	} `json:"dead_letter"`
	Reply struct {
		Topic string `json:"topic"`
	} `json:"reply"`
}

// group is the route's consumer group, defaulted as Hookbridge does.
func (r hbRoute) group() string {
	if r.Group != "" {
		return r.Group
	}
	return "hookbridge." + r.Name
}

func parseHBConfig(data []byte) (*hbConfig, error) {
	var c hbConfig
	// Not strict: the config has many keys this struct leaves out.
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	c.raw = string(data)
	return &c, nil
}

func loadHBConfig(path string) (*hbConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseHBConfig(data)
}

// shutdown is shutdown_timeout, default 25s as in bridge/config/defaults.go;
// zero (0, 0s) is the default too, as the bridge reads it.
func (c *hbConfig) shutdown() (time.Duration, error) {
	if c.ShutdownTimeout == "" {
		return 25 * time.Second, nil
	}
	d, err := time.ParseDuration(string(c.ShutdownTimeout))
	if err == nil && d == 0 {
		d = 25 * time.Second
	}
	return d, err
}

// sessionTimeout is kafka.session_timeout as given: zero when unset (the
// bridge then uses its default, 10s), as 0 or 0s too.
func (c *hbConfig) sessionTimeout() (time.Duration, error) {
	if c.Kafka.SessionTimeout == "" {
		return 0, nil
	}
	return time.ParseDuration(string(c.Kafka.SessionTimeout))
}

// scalar is a YAML scalar as text, whether YAML made it a string, a number
// (shutdown_timeout: 0) or a boolean (tls.enabled: true).
type scalar string

func (s *scalar) UnmarshalJSON(b []byte) error {
	var text string
	if err := json.Unmarshal(b, &text); err == nil {
		*s = scalar(text)
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v.(type) {
	case float64, bool, nil:
		*s = scalar(strings.TrimSpace(string(b)))
		if v == nil {
			*s = ""
		}
		return nil
	}
	return fmt.Errorf("%s is not a scalar", b)
}

// secured reports whether the brokers may need TLS or SASL: tls.enabled
// true, or from a variable that may say so, or a SASL mechanism.
func (c *hbConfig) secured() bool {
	e := strings.TrimSpace(string(c.Kafka.TLS.Enabled))
	return (e != "" && e != "false") || c.Kafka.SASL.Mechanism != ""
}

// topics are every topic the config reads or writes.
func (c *hbConfig) topics() []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, r := range c.Routes {
		for _, t := range r.Topics {
			add(t)
		}
		add(r.DeadLetter.Topic)
		add(r.Reply.Topic)
	}
	return out
}

var varRef = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-[^}]*)?\}`)

// requiredVars are the ${VAR} references without a default: Hookbridge
// refuses to start when one is unset.
func requiredVars(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(text, -1) {
		if strings.HasPrefix(m[0], "$$") || m[2] != "" || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		out = append(out, m[1])
	}
	return out
}

// expandVars expands ${VAR} and ${VAR:-default} from env as Hookbridge does
// (an unset ${VAR} stays as is).
func expandVars(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if strings.HasPrefix(ref, "$$") {
			return ref[1:]
		}
		m := varRef.FindStringSubmatch(ref)
		if v, ok := env[m[1]]; ok && (v != "" || !strings.HasPrefix(m[2], ":-")) {
			return v
		}
		if m[2] != "" {
			return strings.TrimPrefix(strings.TrimPrefix(m[2], ":"), "-")
		}
		return ref
	})
}

// listenPort is the port of an admin.listen value (host:port).
func listenPort(listen string) (host, port string, err error) {
	i := strings.LastIndex(listen, ":")
	if i < 0 {
		return "", "", fmt.Errorf("%q is not host:port", listen)
	}
	return listen[:i], listen[i+1:], nil
}
