// Package envconfig collects the problems found in a first-party plugin's
// configuration (its environment), so that every problem is reported at
// once, each naming its variable, under one heading.
package envconfig

import (
	"errors"
	"fmt"
	"strings"
)

// Problems collects configuration problems. The zero value is empty.
type Problems struct {
	lines []string
}

// Add records a problem of the variable env: "ENV: message".
func (p *Problems) Add(env, format string, args ...any) {
	p.lines = append(p.lines, env+": "+fmt.Sprintf(format, args...))
}

// Err is nil when nothing was added, else one error listing the problems in
// the order they were added, one per indented line, under
// "<program>: invalid configuration:".
func (p *Problems) Err(program string) error {
	if len(p.lines) == 0 {
		return nil
	}
	return errors.New(program + ": invalid configuration:\n  " + strings.Join(p.lines, "\n  "))
}
