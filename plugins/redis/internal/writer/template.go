package writer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hookbridge/hookbridge/sdk"
)

// ErrNullKey is returned by Template.Render for a record with a null key
// when the template uses {key}.
var ErrNullKey = errors.New("the record has a null key and the key template uses {key}")

// Template is a Redis key template: literal text with placeholders.
//
//	{topic}      the record's topic
//	{partition}  its partition, in decimal
//	{offset}     its offset, in decimal
//	{key}        its key, byte for byte (a null key is an error: ErrNullKey)
//	{route}      the name of the Hookbridge route delivering it
//	{{ and }}    a literal { and } (a Redis Cluster hash tag is {{tag}})
//
// Any other {name} is an error, reported by ParseTemplate. A Template is
// immutable and safe for concurrent use.
type Template struct {
	src   string
	parts []part
	// usesKey is true when the template has {key}.
	usesKey bool
}

// part is a literal (field == "") or a placeholder.
type part struct {
	literal string
	field   string
}

// placeholders are the names a template may use.
var placeholders = map[string]bool{"topic": true, "partition": true, "offset": true, "key": true, "route": true}

// ParseTemplate parses src. It fails on an empty template, an unknown or
// unclosed placeholder and a lone "}".
func ParseTemplate(src string) (*Template, error) {
	if src == "" {
		return nil, errors.New("empty key template")
	}
	t := &Template{src: src}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(src) && src[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(src[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed placeholder at byte %d of %q (write {{ for a literal {)", i, src)
			}
			name := src[i+1 : i+1+end]
			if !placeholders[name] {
				return nil, fmt.Errorf("unknown placeholder {%s} in %q (want {topic}, {partition}, {offset}, {key} or {route}; {{ and }} for literal braces)", name, src)
			}
			flush()
			t.parts = append(t.parts, part{field: name})
			if name == "key" {
				t.usesKey = true
			}
			i += end + 1
		case c == '}':
			return nil, fmt.Errorf("lone } at byte %d of %q (write }} for a literal })", i, src)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

// String returns the template as it was written.
func (t *Template) String() string { return t.src }

// Prefix returns the literal text before the template's first placeholder:
// the start of every key it renders.
func (t *Template) Prefix() string {
	if len(t.parts) == 0 || t.parts[0].field != "" {
		return ""
	}
	return t.parts[0].literal
}

// UsesKey reports whether the template has {key}.
func (t *Template) UsesKey() bool { return t.usesKey }

// Render returns the key for msg.
func (t *Template) Render(msg *sdk.Message) (string, error) {
	if t.usesKey && msg.Key == nil {
		return "", ErrNullKey
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.field {
		case "":
			b.WriteString(p.literal)
		case "topic":
			b.WriteString(msg.Topic)
		case "partition":
			b.WriteString(strconv.FormatInt(int64(msg.Partition), 10))
		case "offset":
			b.WriteString(strconv.FormatInt(msg.Offset, 10))
		case "key":
			b.Write(msg.Key)
		case "route":
			b.WriteString(msg.Route)
		}
	}
	return b.String(), nil
}
