package config

import "fmt"

// advise adds to v what in c is valid but likely not what was meant: the
// advice `hookbridge validate` prints and `run` logs, neither refusing the
// file.
func (c *Config) advise(v *checker) {
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		// A record fails alone when nothing else is in flight: with no more
		// attempts than failures it takes to trip the breaker, it is
		// dead-lettered while its target is down, before the breaker could
		// open and pause the route.
		if r.DeadLetter.Topic != "" && r.Retry.MaxAttempts <= r.Breaker.ConsecutiveFailures {
			v.addf(path+".retry.max_attempts", "%d is not above breaker.consecutive_failures (%d): a record that "+
				"fails alone while its target is down is dead-lettered before the breaker opens and pauses the "+
				"route; set it above", r.Retry.MaxAttempts, r.Breaker.ConsecutiveFailures)
		}
	}
}
