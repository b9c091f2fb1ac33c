package webhook

import (
	"encoding/base64"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendEvent appends ev as a JSON object: what encoding/json makes of the
// struct, with the extensions merged in (sorted by name), without the cost
// of reflection. A batch body is mostly this, a hundred times over.
func appendEvent(b []byte, ev *batchEvent) []byte {
	b = append(b, `{"specversion":`...)
	b = appendJSONString(b, ev.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, ev.Source)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type)
	if ev.Time != "" {
		b = append(b, `,"time":`...)
		b = appendJSONString(b, ev.Time)
	}
	if ev.DataContentType != "" {
		b = append(b, `,"datacontenttype":`...)
		b = appendJSONString(b, ev.DataContentType)
	}
	if len(ev.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, ev.Data...) // checked with json.Valid by toBatchEvent
	}
	if len(ev.DataBase64) > 0 {
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, ev.DataBase64)
		b = append(b, '"')
	}
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, ev.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(ev.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, ev.Offset, 10)
	if ev.Key != nil {
		b = append(b, `,"key":`...)
		b = appendJSONString(b, *ev.Key)
	}
	if ev.KeyEncoding != "" {
		b = append(b, `,"keyencoding":`...)
		b = appendJSONString(b, ev.KeyEncoding)
	}
	if ev.Tombstone {
		b = append(b, `,"tombstone":true`...)
	}
	if len(ev.Extensions) > 0 {
		names := make([]string, 0, len(ev.Extensions))
		for name := range ev.Extensions {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			b = append(b, ',')
			b = appendJSONString(b, name)
			b = append(b, ':')
			b = appendJSONString(b, ev.Extensions[name])
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. As encoding/json does, it
// escapes quotes, backslashes, control characters, <, >, & and the line and
// paragraph separators, and replaces invalid UTF-8 with U+FFFD, so that the
// body is valid UTF-8 JSON whatever the record held.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonDecoded is s as a JSON parser reads it back from appendJSONString:
// every byte that is not part of valid UTF-8 becomes U+FFFD.
func jsonDecoded(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}
