package writer

import (
	"strings"
	"testing"
	"time"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{EnvURL: "redis://127.0.0.1:6379/2", EnvKey: "events:{topic}"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeStream || c.MaxLen != 0 || c.TTL != 0 || c.DedupeTTL != 24*time.Hour || c.DedupePrefix != "hookbridge:dedupe:" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Addr() != "127.0.0.1:6379" || c.options.DB != 2 {
		t.Errorf("addr %q db %d", c.Addr(), c.options.DB)
	}
}

func TestConfigModes(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want func(Config) bool
	}{
		{map[string]string{EnvMode: "stream", EnvMaxLen: "1000"}, func(c Config) bool { return c.Mode == ModeStream && c.MaxLen == 1000 }},
		{map[string]string{EnvMode: "LIST", EnvDedupeTTL: "1h"}, func(c Config) bool { return c.Mode == ModeList && c.DedupeTTL == time.Hour }},
		{map[string]string{EnvMode: "set", EnvTTL: "90s"}, func(c Config) bool { return c.Mode == ModeSet && c.TTL == 90*time.Second }},
		{map[string]string{EnvMode: "set", EnvDedupePrefix: "x:"}, func(c Config) bool { return c.DedupePrefix == "x:" }},
		{map[string]string{EnvURL: "unix:///run/redis.sock"}, func(c Config) bool { return c.Addr() == "/run/redis.sock" }},
	} {
		m := map[string]string{EnvURL: "redis://localhost:6379", EnvKey: "k:{key}"}
		for k, v := range tc.env {
			m[k] = v
		}
		c, err := ConfigFromEnv(env(m))
		if err != nil {
			t.Errorf("%v: %v", tc.env, err)
			continue
		}
		if !tc.want(c) {
			t.Errorf("%v: got %+v", tc.env, c)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // every one must appear
	}{
		{"nothing set", map[string]string{}, []string{"REDIS_URL: required", "REDIS_KEY: required"}},
		{"bad values, all reported", map[string]string{
			EnvURL: "http://x", EnvMode: "hash", EnvKey: "a:{nope}", EnvDedupeTTL: "soon",
		}, []string{"REDIS_URL:", "REDIS_MODE: \"hash\" is not one of stream, list, set", "REDIS_KEY: unknown placeholder {nope}", "REDIS_DEDUPE_TTL: \"soon\" is not a positive duration"}},
		{"maxlen outside stream", map[string]string{EnvURL: "redis://h:1", EnvKey: "k", EnvMode: "list", EnvMaxLen: "10"}, []string{"REDIS_MAXLEN: only applies to REDIS_MODE=stream, not list"}},
		{"maxlen negative", map[string]string{EnvURL: "redis://h:1", EnvKey: "k", EnvMaxLen: "-1"}, []string{"REDIS_MAXLEN: \"-1\" is not a whole number >= 0"}},
		{"ttl outside set", map[string]string{EnvURL: "redis://h:1", EnvKey: "k", EnvTTL: "1h"}, []string{"REDIS_TTL: only applies to REDIS_MODE=set, not stream"}},
		{"ttl not positive", map[string]string{EnvURL: "redis://h:1", EnvKey: "k", EnvMode: "set", EnvTTL: "0s"}, []string{"REDIS_TTL: \"0s\" is not a positive duration"}},
		{"key template in the markers' keyspace", map[string]string{EnvURL: "redis://h:1", EnvKey: "hookbridge:dedupe:{topic}"},
			[]string{`REDIS_KEY: "hookbridge:dedupe:{topic}" renders keys that start with REDIS_DEDUPE_PREFIX "hookbridge:dedupe:"`}},
		{"dedupe prefix before the key template", map[string]string{EnvURL: "redis://h:1", EnvKey: "events:{topic}", EnvDedupePrefix: "events:"},
			[]string{`REDIS_KEY: "events:{topic}" renders keys that start with REDIS_DEDUPE_PREFIX "events:"`}},
		{"dedupe prefix shorter than the literal", map[string]string{EnvURL: "redis://h:1", EnvKey: "ev{topic}", EnvDedupePrefix: "e"},
			[]string{`REDIS_KEY: "ev{topic}" renders keys that start with REDIS_DEDUPE_PREFIX "e"`}},
		{"dedupe ttl too short", map[string]string{EnvURL: "redis://h:1", EnvKey: "k", EnvDedupeTTL: "10us"}, []string{"REDIS_DEDUPE_TTL: \"10us\" is shorter than 1ms"}},
	} {
		_, err := ConfigFromEnv(env(tc.env))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "hookbridge-redis: invalid configuration:\n") {
			t.Errorf("%s: %q lacks the heading", tc.name, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not mention %q", tc.name, msg, w)
			}
		}
		if strings.Count(msg, "\n") != len(tc.want) {
			t.Errorf("%s: want %d problems, got:\n%s", tc.name, len(tc.want), msg)
		}
	}
}

func TestConfigKeepsPasswordsOutOfErrors(t *testing.T) {
	_, err := ConfigFromEnv(env(map[string]string{EnvURL: "redis://user:s3cr3t@host:notaport/0", EnvKey: "k"}))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("password in error: %v", err)
	}
}
