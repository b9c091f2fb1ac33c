package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML reads a Go duration string such as "10s", "200ms" or
// "1m30s"; a bare 0 is zero. Negative durations parse; validation rejects them.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a duration such as 10s")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration in the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String returns the duration as time.Duration formats it, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// parseDuration parses a duration string; "" and "0" are zero.
func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil && durationRE.MatchString(s):
		return 0, &unitError{kind: "duration", value: s, hint: "too large: at most 2562047h47m16s"}
	case err != nil:
		return 0, &unitError{kind: "duration", value: s, hint: "want a number with a unit, e.g. 10s, 200ms or 1m30s"}
	}
	return Duration(v), nil
}

// durationRE is what time.ParseDuration reads: a duration of this form that
// it refuses is out of its range.
var durationRE = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`)

// unitError is a duration or a size that does not parse. Its message quotes
// the value; hidden repeats no part of it.
type unitError struct {
	kind  string // "duration" or "size"
	value string // as parsed: white space trimmed
	unit  string // the unknown unit, when that is what is wrong
	hint  string // what is wrong or wanted, without the value; may be ""
}

func (e *unitError) Error() string {
	return e.render(strconv.Quote(e.value), strconv.Quote(e.unit))
}

// hidden is the message for a value that came from the environment: from
// (such as "from ${T}") stands in for the value, and the unit is left out.
func (e *unitError) hidden(from string) string {
	return e.render("("+from+")", "")
}

// render builds "invalid <kind> <value>[: unknown unit[ <unit>]][: <hint>]";
// the hint of an unknown unit follows it after a space.
func (e *unitError) render(value, unit string) string {
	msg := "invalid " + e.kind + " " + value
	switch {
	case e.unit != "" && unit != "":
		msg += ": unknown unit " + unit
	case e.unit != "":
		msg += ": unknown unit"
	}
	switch {
	case e.hint == "":
	case e.unit != "":
		msg += " " + e.hint
	default:
		msg += ": " + e.hint
	}
	return msg
}

// typeError is the error an UnmarshalYAML method returns so that the yaml
// decoder collects it with the others, as "line N: message".
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

// Byte size units.
const (
	kilo = 1000
	kibi = 1024
)

// byteUnits maps every accepted unit to its number of bytes.
var byteUnits = map[string]int64{
	"B":   1,
	"KB":  kilo,
	"MB":  kilo * kilo,
	"GB":  kilo * kilo * kilo,
	"KiB": kibi,
	"MiB": kibi * kibi,
	"GiB": kibi * kibi * kibi,
}

// byteSizeRE splits "1.5 MiB" into number and unit.
var byteSizeRE = regexp.MustCompile(`^([+-]?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// UnmarshalYAML reads a plain number of bytes or a number with a unit: B,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), e.g.
// "64MiB". Negative sizes parse; validation rejects them.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a size such as 64MiB")
	}
	v, err := parseByteSize(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*b = v
	return nil
}

// MarshalYAML writes the size in the form UnmarshalYAML reads.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String returns the size in the largest unit that divides it exactly,
// binary units first: 67108864 is "64MiB", 1000 is "1KB", 1500 is "1500B".
func (b ByteSize) String() string {
	if b == 0 {
		return "0B"
	}
	for _, unit := range []string{"GiB", "MiB", "KiB", "GB", "MB", "KB"} {
		if n := byteUnits[unit]; int64(b)%n == 0 {
			return strconv.FormatInt(int64(b)/n, 10) + unit
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// parseByteSize parses a size; "" is zero.
func parseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ByteSize(v), nil
	}
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, sizeError(s, "want bytes or a number with a unit, e.g. 512KiB or 64MiB")
	}
	unit := m[2]
	if unit == "" {
		unit = "B"
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, &unitError{kind: "size", value: s, unit: m[2], hint: "(use B, KB, MB, GB, KiB, MiB or GiB)"}
	}
	return scaleBytes(s, m[1], mult)
}

// scaleBytes multiplies number by mult, which must give whole bytes that fit
// in an int64.
func scaleBytes(s, number string, mult int64) (ByteSize, error) {
	if v, err := strconv.ParseInt(number, 10, 64); err == nil {
		if v > math.MaxInt64/mult || v < math.MinInt64/mult {
			return 0, sizeError(s, "too large")
		}
		return ByteSize(v * mult), nil
	}
	f, err := strconv.ParseFloat(number, 64)
	if err != nil {
		return 0, sizeError(s, "")
	}
	bytes := f * float64(mult)
	if math.Abs(bytes) >= math.MaxInt64 {
		return 0, sizeError(s, "too large")
	}
	if bytes != math.Trunc(bytes) {
		return 0, sizeError(s, "not a whole number of bytes")
	}
	return ByteSize(bytes), nil
}

// sizeError is the error of a size s that does not parse, hint saying why.
func sizeError(s, hint string) error {
	return &unitError{kind: "size", value: s, hint: hint}
}
