package writer

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/sdk"
)

func TestTemplateRender(t *testing.T) {
	msg := &sdk.Message{Topic: "orders", Partition: 3, Offset: 1207, Key: []byte("user-7"), Route: "to-redis"}
	for _, tc := range []struct{ src, want string }{
		{"events", "events"},
		{"events:{topic}", "events:orders"},
		{"{topic}:{partition}:{offset}", "orders:3:1207"},
		{"user:{key}", "user:user-7"},
		{"{route}/{topic}/{key}", "to-redis/orders/user-7"},
		{"{{{topic}}}:{key}", "{orders}:user-7"}, // a Redis Cluster hash tag
		{"{{literal}}", "{literal}"},
		{"a}}b{{c", "a}b{c"},
		{"{key}{key}", "user-7user-7"},
	} {
		tmpl, err := ParseTemplate(tc.src)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tc.src, err)
			continue
		}
		got, err := tmpl.Render(msg)
		if err != nil || got != tc.want {
			t.Errorf("%q rendered %q, %v; want %q", tc.src, got, err, tc.want)
		}
		if tmpl.String() != tc.src {
			t.Errorf("String() = %q, want %q", tmpl.String(), tc.src)
		}
	}
}

func TestTemplateKeyBytes(t *testing.T) {
	tmpl, err := ParseTemplate("k:{key}")
	if err != nil {
		t.Fatal(err)
	}
	// Keys are used byte for byte; an empty key is not a null one.
	for _, tc := range []struct {
		key  []byte
		want string
	}{{[]byte{0xff, 0x00, 'a'}, "k:\xff\x00a"}, {[]byte{}, "k:"}} {
		got, err := tmpl.Render(&sdk.Message{Key: tc.key})
		if err != nil || got != tc.want {
			t.Errorf("key %q: rendered %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	if _, err := tmpl.Render(&sdk.Message{Key: nil}); !errors.Is(err, ErrNullKey) {
		t.Errorf("null key: err = %v, want ErrNullKey", err)
	}
	// A template without {key} does not care.
	plain, _ := ParseTemplate("events:{topic}")
	if got, err := plain.Render(&sdk.Message{Topic: "t"}); err != nil || got != "events:t" {
		t.Errorf("null key without {key}: %q, %v", got, err)
	}
	if !tmpl.UsesKey() || plain.UsesKey() {
		t.Errorf("UsesKey: %v %v", tmpl.UsesKey(), plain.UsesKey())
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "empty key template"},
		{"events:{topik}", "unknown placeholder {topik}"},
		{"events:{}", "unknown placeholder {}"},
		{"events:{topic", "unclosed placeholder at byte 7"},
		{"events:}", "lone } at byte 7"},
		{"{Topic}", "unknown placeholder {Topic}"},
	} {
		_, err := ParseTemplate(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTemplate(%q) = %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
}
