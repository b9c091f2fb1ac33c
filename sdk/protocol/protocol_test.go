package protocol_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/sdk/handlerpb"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func TestMaxMessageBytesFromEnv(t *testing.T) {
	cases := []struct {
		env   string
		set   bool
		want  int
		fails bool
	}{
		{"", false, 123, false},
		{"", true, 123, false},
		{"8388608", true, 8 << 20, false},
		{"0", true, 0, true},
		{"-1", true, 0, true},
		{"4MiB", true, 0, true},
	}
	for _, tc := range cases {
		if tc.set {
			t.Setenv(protocol.EnvMaxMessageBytes, tc.env)
		} else {
			t.Setenv(protocol.EnvMaxMessageBytes, "")
			_ = os.Unsetenv(protocol.EnvMaxMessageBytes)
		}
		got, err := protocol.MaxMessageBytesFromEnv(123)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("%q (set %v): got %d, %v; want %d, fails %v", tc.env, tc.set, got, err, tc.want, tc.fails)
		}
	}
}

func TestPluginSet(t *testing.T) {
	set := protocol.PluginSet(handlerpb.UnimplementedHandlerServer{})
	p, ok := set[protocol.PluginName].(*protocol.Plugin)
	if !ok || p.Handler == nil {
		t.Fatalf("plugin set %v: want the handler under %q", set, protocol.PluginName)
	}
}

// Plugins in other languages read the handshake in handler.proto; it must
// say what this package does.
func TestProtoDocumentsTheHandshake(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "proto", "hookbridge", "handler", "v1", "handler.proto"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{protocol.MagicCookieKey, `"` + protocol.MagicCookieValue + `"`, protocol.EnvMaxMessageBytes,
		`"plugin"`, "1|1|tcp|127.0.0.1:PORT|grpc", "package hookbridge.handler.v1;"} {
		if !strings.Contains(doc, want) {
			t.Errorf("handler.proto does not mention %q", want)
		}
	}
}
