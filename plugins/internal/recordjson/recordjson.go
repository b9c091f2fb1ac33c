// Package recordjson renders a record's headers as JSON for the first-party
// plugins that store them (plugins/redis, plugins/postgres), so that both
// write the same shape.
package recordjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/hookbridge/hookbridge/sdk"
)

// header is one header in Headers.
type header struct {
	Key         string `json:"key"`
	Value       string `json:"value,omitempty"`
	ValueBase64 string `json:"value_base64,omitempty"`
}

// Headers encodes headers as a JSON array, in record order and with repeats:
// [{"key":"content-type","value":"application/json"}]. A value that is not
// text is given as "value_base64" (standard encoding) instead of "value", so
// that no byte is lost; an empty value has neither. Text is valid UTF-8;
// with noNUL (for PostgreSQL's jsonb, which refuses \u0000) it also holds no
// NUL byte, and a NUL in a key becomes U+FFFD.
func Headers(hs []sdk.Header, noNUL bool) string {
	out := make([]header, len(hs))
	for i, h := range hs {
		out[i].Key = h.Key
		if noNUL {
			out[i].Key = strings.ReplaceAll(h.Key, "\x00", "\uFFFD")
		}
		if utf8.Valid(h.Value) && (!noNUL || bytes.IndexByte(h.Value, 0) < 0) {
			out[i].Value = string(h.Value)
		} else {
			out[i].ValueBase64 = base64.StdEncoding.EncodeToString(h.Value)
		}
	}
	b, _ := json.Marshal(out) // strings only: cannot fail
	return string(b)
}
