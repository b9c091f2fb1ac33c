package config

import (
	"strings"
	"testing"
	"time"
)

// A client certificate that has expired, and certificate checks turned
// off, are valid but get advice (validate prints it, run logs it): the
// first is refused by every server that checks it, the second hands the
// connection, and the credentials on it, to whoever can intercept it. A
// valid certificate with verification on gets none.
func TestAdviceClientCertificateAndInsecureSkipVerify(t *testing.T) {
	dir := t.TempDir()
	expiredCert, expiredKey := keyPairValid(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	validCert, validKey := testKeyPair(t, dir, "valid")
	for _, c := range []struct {
		name, kafkaTLS, hookTLS string
		want                    map[string]string // path → a part of its advice
	}{
		{"valid", "{enabled: true, cert_file: " + validCert + ", key_file: " + validKey + "}",
			"{cert_file: " + validCert + ", key_file: " + validKey + "}", nil},
		{"expired", "{enabled: true, cert_file: " + expiredCert + ", key_file: " + expiredKey + "}",
			"{cert_file: " + expiredCert + ", key_file: " + expiredKey + "}",
			map[string]string{"kafka.tls.cert_file": "expired at", "routes[0].target.webhook.tls.cert_file": "expired at"}},
		{"insecure_skip_verify", "{enabled: true, insecure_skip_verify: true}", "{insecure_skip_verify: true}",
			map[string]string{"kafka.tls.insecure_skip_verify": "verification off", "routes[0].target.webhook.tls.insecure_skip_verify": "verification off"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "kafka:\n  brokers: [\"k:9092\"]\n  tls: " + c.kafkaTLS + "\nroutes:\n  - name: r\n    topics: [t]\n" +
				"    target: {webhook: {url: \"https://h/x\", tls: " + c.hookTLS + "}}\n"
			cfg := mustParse(t, src, nil)
			got := map[string]string{}
			for _, a := range cfg.Advice {
				got[a.Path] = a.Message
			}
			if len(got) != len(c.want) {
				t.Errorf("advice %v, want it for %v", got, c.want)
			}
			for path, part := range c.want {
				if !strings.Contains(got[path], part) {
					t.Errorf("advice for %s = %q, want it to say %q", path, got[path], part)
				}
			}
		})
	}
}
