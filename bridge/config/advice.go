package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// advise adds to v what in c is valid but likely not what was meant: the
// advice `hookbridge validate` prints and `run` logs, neither refusing the
// file.
func (c *Config) advise(v *checker) {
	if c.Kafka.TLS.Enabled {
		adviseTLS(v, "kafka.tls", c.Kafka.TLS.CertFile, c.Kafka.TLS.InsecureSkipVerify)
	}
	adviseTokenURL(v, "kafka.sasl.oauthbearer.token_url", c.Kafka.SASL.OAuthBearer.TokenURL)
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if w := r.Target.Webhook; w != nil {
			adviseTLS(v, path+".target.webhook.tls", w.TLS.CertFile, w.TLS.InsecureSkipVerify)
			adviseTokenURL(v, path+".target.webhook.oauth2.token_url", w.OAuth2.TokenURL)
			adviseBatch(v, path+".target.webhook.batch", w.Batch)
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
			p := path + ".filter.headers." + name
			if r.Filter.Headers[name] == "" {
				v.addf(p, "is empty: only records whose %q header is present and empty match; every other record "+
					"is committed without being delivered. A filter cannot ask only that a header be present", name)
			}
			adviseFilterSpace(v, p, r.Filter.Headers[name])
		}
		adviseFilterSpace(v, path+".filter.key_prefix", r.Filter.KeyPrefix)
	}
	c.adviseLoops(v)
	for _, name := range sortedKeys(c.Plugins) {
		if !slices.ContainsFunc(c.Routes, func(r Route) bool { return r.Target.Plugin == name }) {
			v.addf(joinKey("plugins", name), "no route uses it, so it is not started (a route names its plugin in target.plugin)")
		}
	}
}

// adviseFilterSpace advises on a filter value that ends in a line break or
// starts or ends with a space: a block scalar (`|`) keeps its final newline,
// a quoted value its spaces, and the filter compares bytes, so records whose
// value lacks them are committed without being delivered.
func adviseFilterSpace(v *checker, path, value string) {
	if value != "" && strings.TrimSpace(value) != value {
		v.addf(path, "starts or ends with white space or a line break (a `|` block keeps its final newline; `|-` "+
			"drops it): the filter compares bytes, and records without it are committed without being delivered")
	}
}

// adviseBatch advises on batch settings given without max_messages: each
// record then goes in a request of its own, and max_bytes and max_wait do
// nothing, which a file that sets them likely did not mean. A file that
// writes max_messages: 0 turns batches off knowingly.
func adviseBatch(v *checker, path string, b Batch) {
	if _, given := v.lines[path+".max_messages"]; given || b.MaxMessages > 0 {
		return
	}
	for _, key := range []string{"max_bytes", "max_wait"} {
		if _, given := v.lines[path+"."+key]; given {
			v.addf(path+"."+key, "has no effect without batch.max_messages, whose default 0 sends each record in a "+
				"request of its own; set max_messages to send batches")
		}
	}
}

// output is a topic a route produces to, as the key that names it.
type output struct {
	from       int    // the route, an index of Routes
	key, topic string // "reply.topic" or "dead_letter.topic", and its value
	to         int    // a route that consumes topic
}

// adviseLoops advises on each reply or dead-letter topic that another route
// consumes, when records go from that route back to this one, through the
// reply and dead-letter topics of the routes between (a route producing to
// its own topics is refused by notOwnTopic). On such a loop a record that
// fails on every route is dead-lettered around it forever, and never rests
// in a dead-letter topic; and a handler's reply is a new record for the
// next route, so answers go round until a handler stops answering. A
// dead-letter topic that one route consumes and that leads nowhere back is
// the usual way to process dead letters, and gets no advice.
func (c *Config) adviseLoops(v *checker) {
	readers := map[string][]int{}
	for j, r := range c.Routes {
		for _, t := range r.Topics {
			if !slices.Contains(readers[t], j) {
				readers[t] = append(readers[t], j)
			}
		}
	}
	outs := make([][]output, len(c.Routes))
	for i, r := range c.Routes {
		for _, o := range []output{{key: "reply.topic", topic: r.Reply.Topic}, {key: "dead_letter.topic", topic: r.DeadLetter.Topic}} {
			for _, j := range readers[o.topic] {
				if j != i && o.topic != "" {
					o.from, o.to = i, j
					outs[i] = append(outs[i], o)
				}
			}
		}
	}
	for i := range outs {
		for _, o := range outs[i] {
			back := pathBetween(outs, o.to, i)
			if back == nil {
				continue
			}
			path := fmt.Sprintf("routes[%d].%s", i, o.key)
			steps := make([]string, 0, len(back))
			replies, deadLetters := o.key == "reply.topic", o.key == "dead_letter.topic"
			for _, b := range back {
				p := fmt.Sprintf("routes[%d].%s", b.from, b.key)
				steps = append(steps, fmt.Sprintf("route %s's %s %s", c.routeName(v, b.from), b.key, v.show(p, b.topic)))
				replies = replies || b.key == "reply.topic"
				deadLetters = deadLetters || b.key == "dead_letter.topic"
			}
			why := "a record that fails on every route of the loop is dead-lettered around it forever and never " +
				"rests in a dead-letter topic; give one of them a dead-letter topic that no route consumes"
			switch {
			case replies && !deadLetters:
				why = "records can go around it forever: a handler's reply is a new record for the next route, so " +
					"answers go round until a handler stops answering"
			case replies:
				why = "records can go around it forever: a record that fails on every route is dead-lettered " +
					"into the next, and a handler's reply is a new record for the next route, so answers go round " +
					"until a handler stops answering"
			}
			v.addf(path, "%s is a topic of route %s, and records come back from there to this route by %s: %s",
				v.show(path, o.topic), c.routeName(v, o.to), strings.Join(steps, ", then "), why)
		}
	}
}

// routeName shows the name of Routes[i] for a message, hiding it when it
// came from the environment.
func (c *Config) routeName(v *checker, i int) string {
	return v.show(fmt.Sprintf("routes[%d].name", i), c.Routes[i].Name)
}

// pathBetween returns the outputs that lead from route from to route to,
// fewest first, or nil when none do.
func pathBetween(outs [][]output, from, to int) []output {
	via := make([]*output, len(outs)) // the output by which each route was reached
	seen := make([]bool, len(outs))
	seen[from] = true
	for queue := []int{from}; len(queue) > 0; queue = queue[1:] {
		for k := range outs[queue[0]] {
			o := &outs[queue[0]][k]
			if seen[o.to] {
				continue
			}
			seen[o.to], via[o.to] = true, o
			if o.to != to {
				queue = append(queue, o.to)
				continue
			}
			var path []output
			for r := to; r != from; r = via[r].from {
				path = append([]output{*via[r]}, path...)
			}
			return path
		}
	}
	return nil
}

// adviseTokenURL advises against an OAuth 2.0 token endpoint over plain
// HTTP on another host: the client secret goes out in every token request,
// and the token comes back, in the clear. A loopback endpoint (a sidecar)
// does not leave the host.
func adviseTokenURL(v *checker, path, tokenURL string) {
	u, err := url.Parse(tokenURL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return // https, unset, or refused by validation
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
		return
	}
	v.addf(path, "is http://: every token request sends the client secret, and the answer the token, in the clear; "+
		"use an https:// token endpoint")
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
