package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/bridge/config"
	"github.com/hookbridge/hookbridge/plugins/host"
)

// A plugin in Node.js logs as its logger does: pino writes
// {"level":60,"msg":...}, winston's json format {"level":"error","message":...},
// and a logger set up for go-plugin's shape may still use a level go-plugin
// does not know ("fatal"). go-plugin relays none of these at a level: each
// is a plain line at debug, below the bridge's default, like a Python
// traceback. The start error must quote them as it quotes plain lines, or
// the reason the plugin gave for exiting is nowhere in the bridge's log. Only
// the lines go-plugin relays at their level (an hclog "@level") stay out.
func TestStartFailureQuotesJSONLinesGoPluginDoesNotRelayAtTheirLevel(t *testing.T) {
	lines := []string{
		`{"@level":"info","@message":"relayed at info"}`,
		`{"level":60,"time":1714557600000,"msg":"pino: DB_URL is not set"}`,
		`{"level":"error","message":"winston: cannot reach the database"}`,
		`{"@level":"fatal","@message":"hclog shape, unknown level"}`,
		`{"@level":"ERROR","@message":"relayed at error"}`,
	}
	script := "#!/bin/sh\n"
	for _, l := range lines {
		script += "echo '" + l + "' >&2\n"
	}
	script += "exit 1\n"
	path := filepath.Join(t.TempDir(), "plugin.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(path)
	cfg.Instances = config.Instances{Min: 1, Max: 1}
	p, _ := newPool(t, cfg, host.Options{})
	err := p.Start(t.Context())
	if err == nil {
		t.Fatal("start succeeded; want the script's exit to fail it")
	}
	for _, said := range []string{"pino: DB_URL is not set", "winston: cannot reach the database", "hclog shape, unknown level"} {
		if !strings.Contains(err.Error(), said) {
			t.Errorf("start error %q does not quote the plugin's %q", err, said)
		}
	}
	for _, relayed := range []string{"relayed at info", "relayed at error"} {
		if strings.Contains(err.Error(), relayed) {
			t.Errorf("start error %q quotes %q, which the bridge's log has at its level", err, relayed)
		}
	}
}
