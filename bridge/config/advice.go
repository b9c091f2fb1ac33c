package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"
)

// advise adds to v what in c is valid but likely not what was meant: the
// advice `hookbridge validate` prints and `run` logs, neither refusing the
// file.
func (c *Config) advise(v *checker) {
	if c.Kafka.TLS.Enabled {
		adviseTLS(v, "kafka.tls", c.Kafka.TLS.CertFile, c.Kafka.TLS.InsecureSkipVerify)
	}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if w := r.Target.Webhook; w != nil {
			adviseTLS(v, path+".target.webhook.tls", w.TLS.CertFile, w.TLS.InsecureSkipVerify)
		}
		// A record fails alone when nothing else is in flight: with no more
		// attempts than failures it takes to trip the breaker, it is
		// dead-lettered while its target is down, before the breaker could
		// open and pause the route.
		if r.DeadLetter.Topic != "" && r.Retry.MaxAttempts <= r.Breaker.ConsecutiveFailures {
			v.addf(path+".retry.max_attempts", "%d is not above breaker.consecutive_failures (%d): a record that "+
				"fails alone while its target is down is dead-lettered before the breaker opens and pauses the "+
				"route; set it above", r.Retry.MaxAttempts, r.Breaker.ConsecutiveFailures)
		}
		// A header written with no value ("x-priority:", as if to ask that
		// the header be there) is an empty value: every record that does
		// not carry the header empty is acknowledged without delivery.
		for _, name := range sortedKeys(r.Filter.Headers) {
			if r.Filter.Headers[name] == "" {
				p := path + ".filter.headers." + name
				v.addf(p, "is empty: only records whose %q header is present and empty match; every other record "+
					"is committed without being delivered. A filter cannot ask only that a header be present", name)
			}
		}
	}
}

// adviseTLS advises against turning certificate verification off, and
// about a client certificate (certFile) that is not valid now: a server
// that checks it refuses every connection, which the bridge can only wait
// out (the file is read at start-up).
func adviseTLS(v *checker, path, certFile string, insecure bool) {
	if insecure {
		v.addf(path+".insecure_skip_verify", "turns certificate verification off: whoever can intercept the "+
			"connection reads and alters it, credentials included; trust the server with ca_file instead")
	}
	if certFile == "" {
		return
	}
	data, err := readFile(certFile, maxCAFile)
	if err != nil {
		return // reported by validateTLSFiles
	}
	var cert *x509.Certificate
	for rest := data; cert == nil; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return // reported by validateTLSFiles
		}
		if block.Type == "CERTIFICATE" { // the first is the client's, as tls.LoadX509KeyPair takes it
			if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
				return // reported by validateTLSFiles
			}
		}
	}
	switch now := time.Now(); {
	case now.After(cert.NotAfter):
		v.addf(path+".cert_file", "the certificate expired at %s: servers that check client certificates "+
			"refuse it; renew it", cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		v.addf(path+".cert_file", "the certificate is not valid before %s: servers that check client "+
			"certificates refuse it until then", cert.NotBefore.UTC().Format(time.RFC3339))
	}
}
