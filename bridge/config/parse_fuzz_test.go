package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse parses arbitrary bytes as a configuration file: Parse never
// panics, and either gives a configuration or fails with Errors, each
// problem with the file's name, a line of the file and a message. So does
// every piece of advice of a configuration it gives.
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, src := range []string{
		string(full),
		minimal,
		"",
		"---\n...\n",
		"kafka: {}\n---\nkafka: {}\n",
		"log:\n  <<: &a [*a]\n" + minimal,
		"x0: &m0 {level: info}\nx1: &m1 {<<: [*m0, *m0, *m0]}\nlog: {<<: *m1}\n" + minimal,
		"kafka:\n  brokers: [\"${BROKER}\"]\n  embedded: !!bool maybe\nroutes:\n  - name: r\n    topics: [t]\n" +
			"    concurrency: ${CONCURRENCY:-4}\n    target: {webhook: {url: \"http://${HOST}/h\", rate_limit: !!float ${RL}}}\n",
		"kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r\n    topics: [t, t]\n    max_in_flight_bytes: 64XB\n" +
			"    retry: {max_backoff: -1s}\n    target: {webhook: {url: \"ftp://x\", headers: {\"Bad Name\": \"v\\r\\n\"}, signing_secrets: [\"whsec_x\"]}}\n",
		"kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r\n    topics: [t]\n    target: {plugin: nope, webhook: {url: \"http://x\"}}\n",
		"kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - {name: a, topics: [t], target: {webhook: {url: \"http://x\"}}}\n  - {name: a, topics: [t], target: {webhook: {url: \"http://x\"}}}\n",
		"kafka:\n  brokers: [\"127.0.0.1:9092\"]\n\x00\n",
		"kafka:\r  brokers: [\"127.0.0.1:9092\"]\r\u0085routes: \xff\n",
		"? [a, b]\n: c\n" + minimal,
		"routes: !!binary aGVsbG8=\n",
		"kafka: {brokers: [\"127.0.0.1:9092\"]}\nroutes:\n  - name: r\n    topics: [t]\n    target:\n      webhook:\n        url: http://x\n" +
			"        signing_secrets_file: missing.txt\n        tls: {ca_file: \"\", cert_file: a}\n",
	} {
		f.Add([]byte(src))
	}
	env := envOf(map[string]string{"BROKER": "127.0.0.1:9092", "HOST": "127.0.0.1", "RL": "hunter2", "EMPTY": ""})
	file := filepath.Join(f.TempDir(), "hookbridge.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if namesSpecialFiles(data) {
			t.Skip()
		}
		cfg, err := Parse(file, data, env)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse fails with %v (%T), not with problems", err, err)
			}
			checkPositions(t, data, file, errs)
			return
		}
		if cfg == nil {
			t.Fatal("Parse gives neither a configuration nor an error")
		}
		checkPositions(t, data, file, cfg.Advice)
	})
}

// checkPositions checks that every problem names file, a line of data, and
// what is wrong.
func checkPositions(t *testing.T, data []byte, file string, problems Errors) {
	t.Helper()
	// YAML breaks lines at CR, LF, CRLF, NEL, LS and PS; counting each
	// character gives at least as many lines.
	lines := 1 + strings.Count(string(data), "\n") + strings.Count(string(data), "\r") +
		strings.Count(string(data), "\u0085") + strings.Count(string(data), "\u2028") + strings.Count(string(data), "\u2029")
	for _, p := range problems {
		if p.File != file || p.Line < 1 || p.Line > lines || p.Message == "" {
			t.Fatalf("problem without a position in the file of %d lines: %#v", lines, p)
		}
	}
}

// namesSpecialFiles reports whether a scalar of data, as YAML reads it
// (escapes, !!binary), names a file under /dev, /proc, /sys or /run. Parse
// reads the files a configuration names (secrets, CA bundles, plugin
// executables), and one of those could block (a FIFO, a terminal) or never
// end (/dev/zero): the fuzzer must not write its way there.
func namesSpecialFiles(data []byte) bool {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return false // Parse stops at the syntax error too
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		v := n.Value
		if n.ShortTag() == "!!binary" {
			b, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
			v += string(b)
		}
		for _, dir := range []string{"/dev", "/proc", "/sys", "/run"} {
			if strings.Contains(v, dir) {
				return true
			}
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&root)
}
