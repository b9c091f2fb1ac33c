package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hookbridge/hookbridge/bridge/signing"
)

// validateRoutes checks every route, and what routes must not share.
func (c *Config) validateRoutes(v *checker) {
	if len(c.Routes) == 0 {
		v.addf("routes", "at least one route is required")
		return
	}
	names := map[string]int{}
	groups := map[string]int{}
	targets := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		r.validate(v, path, c.Plugins, v.decoded("plugins"))
		r.sameTargetSettings(v, path, c.Routes, targets, i)
		if first, dup := names[r.Name]; dup && r.Name != "" {
			v.addf(path+".name", "duplicate route name %s (also routes[%d])", v.show(path+".name", r.Name), first)
		} else {
			names[r.Name] = i
		}
		if r.Group == "" && (r.Name == "" || names[r.Name] != i) {
			continue // the derived group would only repeat a name problem
		}
		if !v.decoded(path + ".group") {
			continue // the group is not the one the file names
		}
		if first, dup := groups[r.GroupID()]; dup {
			gp := groupPath(r, path)
			v.addf(gp, "consumer group %s is also used by routes[%d]", v.showGroup(gp, r), first)
		} else {
			groups[r.GroupID()] = i
		}
	}
}

// sameTargetSettings checks that route i, when an earlier route posts to the
// same webhook URL (without user info or query) or calls the same plugin,
// has that route's breaker and rate limit: a target has one breaker and one
// rate limiter, shared by the routes that use it, so differing settings would
// be silently overruled by whichever route started first.
func (r *Route) sameTargetSettings(v *checker, path string, routes []Route, targets map[string]int, i int) {
	var key string
	switch {
	case r.Target.Webhook != nil && r.Target.Webhook.URL != "":
		key = SafeURL(r.Target.Webhook.URL, "")
	case r.Target.Plugin != "":
		key = "plugin:" + r.Target.Plugin
	}
	if key == "" || !v.decoded(path+".breaker", path+".target") {
		return
	}
	first, seen := targets[key]
	if !seen {
		targets[key] = i
		return
	}
	f := &routes[first]
	if r.Breaker != f.Breaker {
		v.addf(path+".breaker", "differs from routes[%d].breaker, which uses the same target: a target has one "+
			"breaker, shared by its routes", first)
	}
	if w, fw := r.Target.Webhook, f.Target.Webhook; w != nil && fw != nil && w.RateLimit != fw.RateLimit {
		v.addf(path+".target.webhook.rate_limit", "differs from routes[%d]'s, which uses the same URL: a target has "+
			"one rate limiter, shared by its routes", first)
	}
	if w, fw := r.Target.Webhook, f.Target.Webhook; w != nil && fw != nil && w.ShownURL() != fw.ShownURL() {
		v.addf(path+".target.webhook.secret_path", "differs from routes[%d]'s, which uses the same URL: the URL is "+
			"shown one way in the logs and metrics of its routes", first)
	}
}

// groupPath is the key that sets a route's group: group, or name when the
// group is derived from it.
func groupPath(r *Route, path string) string {
	if r.Group != "" {
		return path + ".group"
	}
	return path + ".name"
}

// showGroup shows a route's consumer group for a message, hiding the part
// that came from the environment (at gp, the key that sets it).
func (v *checker) showGroup(gp string, r *Route) string {
	if r.Group != "" {
		return v.show(gp, r.Group)
	}
	if _, ok := v.fromEnv[gp]; ok {
		return "hookbridge." + v.show(gp, r.Name)
	}
	return strconv.Quote(r.GroupID())
}

// validate checks one route; pluginsKnown is false when the plugins key
// failed to decode, so that a plugin missing from it may be in the file.
func (r *Route) validate(v *checker, path string, plugins map[string]Plugin, pluginsKnown bool) {
	switch {
	case r.Name == "":
		v.addf(path+".name", "is required")
	case !routeNameRE.MatchString(r.Name):
		v.addf(path+".name", "must contain only letters, digits, '.', '_' and '-'")
	}
	if len(r.Topics) == 0 {
		v.addf(path+".topics", "at least one topic is required")
	}
	for i, t := range r.Topics {
		v.checkTopic(fmt.Sprintf("%s.topics[%d]", path, i), t)
	}
	oneOf(v, path+".ordering", r.Ordering, orderings)
	atLeastOne(v, path+".concurrency", r.Concurrency)
	atMost(v, path+".concurrency", r.Concurrency, maxConcurrency)
	notNegative(v, path+".max_in_flight_bytes", r.MaxInFlightBytes)
	r.Target.validate(v, path+".target", plugins, pluginsKnown)
	r.Retry.validate(v, path+".retry")
	r.Breaker.validate(v, path+".breaker")
	r.notOwnTopic(v, path+".dead_letter.topic", r.DeadLetter.Topic)
	r.notOwnTopic(v, path+".reply.topic", r.Reply.Topic)
	if w := r.Target.Webhook; w != nil && w.Batch.MaxMessages > 0 && r.Reply.Topic != "" {
		v.addf(path+".reply.topic", "cannot be used with webhook batch mode (a batch answer is not a per-record reply)")
	}
	if w := r.Target.Webhook; w != nil && r.Concurrency >= 1 && w.Batch.MaxMessages > r.Concurrency {
		// Advice that can be followed: concurrency itself is at most
		// maxConcurrency.
		advice := fmt.Sprintf("set concurrency to at least %d", w.Batch.MaxMessages)
		if w.Batch.MaxMessages > maxConcurrency {
			advice = fmt.Sprintf("make it at most %d (the largest concurrency) and concurrency at least as large", maxConcurrency)
		}
		v.addf(path+".target.webhook.batch.max_messages", "%d is above the route's concurrency (%d): a batch holds at most one record "+
			"per delivery in flight, so it would never fill and every batch would wait max_wait; %s",
			w.Batch.MaxMessages, r.Concurrency, advice)
	}
}

// notOwnTopic checks that an output topic is not one the route consumes.
func (r *Route) notOwnTopic(v *checker, path, topic string) {
	if topic == "" {
		return
	}
	if v.checkTopic(path, topic) && slices.Contains(r.Topics, topic) {
		v.addf(path, "must not be one of the route's own topics")
	}
}

// checkTopic checks the topic name at path and reports whether it is legal.
// The message shows the name unless it came from the environment.
func (v *checker) checkTopic(path, name string) bool {
	if err := topicNameProblem(name, v.show(path, name)); err != nil {
		v.addf(path, "%v", err)
		return false
	}
	return true
}

// CheckTopicName returns an error when name is not a legal Kafka topic
// name: 1 to 249 of the characters a-z A-Z 0-9 . _ -, and neither "." nor
// "..". No broker can hold a topic of another name, so a record for one can
// never be written.
func CheckTopicName(name string) error {
	return topicNameProblem(name, strconv.Quote(name))
}

// topicNameProblem is CheckTopicName with the name shown as shown.
func topicNameProblem(name, shown string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case name == "." || name == "..":
		return fmt.Errorf("%s is not a legal Kafka topic name", shown)
	case len(name) > maxTopicName:
		return fmt.Errorf("is %d characters long; a Kafka topic name has at most %d", len(name), maxTopicName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s is not a legal Kafka topic name: it may contain only letters, digits, '.', '_' and '-'", shown)
		}
	}
	return nil
}

// maxTopicName is the longest topic name Kafka accepts.
const maxTopicName = 249

// validate checks that exactly one target is set, comparing only what
// decoded: a webhook or plugin key that failed is reported on its own.
func (t *RouteTarget) validate(v *checker, path string, plugins map[string]Plugin, pluginsKnown bool) {
	if (t.Webhook != nil) == (t.Plugin != "") && v.decoded(path+".webhook", path+".plugin") {
		v.addf(path, "exactly one of webhook or plugin must be set")
	}
	if t.Plugin != "" && pluginsKnown {
		if _, ok := plugins[t.Plugin]; !ok {
			p := path + ".plugin"
			v.addf(p, "no plugin named %s under plugins%s", v.show(p, t.Plugin), v.suggestFor(p, t.Plugin, sortedKeys(plugins)))
		}
	}
	if t.Webhook != nil {
		t.Webhook.validate(v, path+".webhook")
	}
}

func (w *Webhook) validate(v *checker, path string) {
	if w.URL == "" {
		v.addf(path+".url", "is required")
	} else if err := checkHTTPURL(w.URL); err != nil {
		v.addf(path+".url", "%v", err)
	}
	notNegative(v, path+".timeout", w.Timeout)
	w.validateHeaders(v, path+".headers")
	for i, s := range w.SigningSecrets {
		checkSecret(v, fmt.Sprintf("%s.signing_secrets[%d]", path, i), s)
	}
	notNegative(v, path+".batch.max_messages", w.Batch.MaxMessages)
	notNegative(v, path+".batch.max_bytes", w.Batch.MaxBytes)
	notNegative(v, path+".batch.max_wait", w.Batch.MaxWait)
	notNegative(v, path+".rate_limit", w.RateLimit)
	finite(v, path+".rate_limit", w.RateLimit)
	w.validateSecurity(v, path)
}

// checkSecret checks a Standard Webhooks secret the way the signer parses
// it. The message never contains the secret.
func checkSecret(v *checker, path, secret string) {
	if msg := secretProblem(secret); msg != "" {
		v.addf(path, "%s", msg)
	}
}

// secretProblem says what is wrong with a signing secret, "" when nothing.
// The message never contains the secret.
func secretProblem(secret string) string {
	if strings.TrimSpace(secret) == "" {
		return "is empty"
	}
	if _, err := signing.ParseSecret(secret); err != nil {
		detail := strings.TrimPrefix(err.Error(), signing.ErrSecret.Error()+": ")
		return "invalid signing secret: " + detail
	}
	return ""
}

func (r *Retry) validate(v *checker, path string) {
	atLeastOne(v, path+".max_attempts", r.MaxAttempts)
	notNegative(v, path+".initial_backoff", r.InitialBackoff)
	notNegative(v, path+".max_backoff", r.MaxBackoff)
	notNegative(v, path+".max_age", r.MaxAge)
	if r.MaxBackoff < r.InitialBackoff && r.MaxBackoff >= 0 && v.decoded(path+".max_backoff", path+".initial_backoff") {
		v.addf(path+".max_backoff", "must be >= initial_backoff (%s)", r.InitialBackoff)
	}
}

func (b *Breaker) validate(v *checker, path string) {
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		v.addf(path+".failure_ratio", "must be > 0 and <= 1")
	}
	notNegative(v, path+".min_requests", b.MinRequests)
	notNegative(v, path+".consecutive_failures", b.ConsecutiveFailures)
	atMost(v, path+".min_requests", b.MinRequests, maxBreakerCount)
	atMost(v, path+".consecutive_failures", b.ConsecutiveFailures, maxBreakerCount)
	notNegative(v, path+".open_timeout", b.OpenTimeout)
}
