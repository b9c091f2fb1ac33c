package config

import (
	"fmt"
	"regexp"
	"strings"
)

// envNameRE is what a variable name in ${NAME} may look like.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} with the variable's value and ${NAME:-default}
// with the value, or default when the variable is unset or empty; "$$" is a
// literal "$", and a "$" followed by anything else stays as it is. A variable
// set to the empty string counts as set. It returns the expanded string and
// one message per reference it could not expand (an unset variable, a bad
// name, a missing "}"); such a reference expands to "".
func expandEnv(s string, lookup func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), problems
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				problems = append(problems, `unterminated "${" (write "$$" for a literal "$")`)
				return b.String(), problems
			}
			value, problem := expandRef(s[i+2:i+end], lookup)
			if problem != "" {
				problems = append(problems, problem)
			}
			b.WriteString(value)
			s = s[i+end+1:]
		default:
			b.WriteByte('$')
			s = s[i+1:]
		}
	}
}

// expandRef expands the inside of one ${...}: NAME or NAME:-default.
func expandRef(ref string, lookup func(string) (string, bool)) (value, problem string) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !envNameRE.MatchString(name) {
		return "", fmt.Sprintf("invalid environment variable reference %q (want ${NAME} or ${NAME:-default})", "${"+ref+"}")
	}
	if strings.Contains(def, "${") {
		return "", fmt.Sprintf("nested %q in a default is not supported", "${")
	}
	v, ok := lookup(name)
	switch {
	case hasDefault && v == "":
		return def, ""
	case !ok:
		return "", fmt.Sprintf("environment variable %s is not set", name)
	}
	return v, ""
}
