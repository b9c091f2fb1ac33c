package host_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/hookbridge/hookbridge/plugins/host"
)

// A line of sdk.NewLogger's reaches the bridge's log at its level whatever
// its length. One longer than go-plugin's 64 KiB line buffer used to come in
// pieces at debug level, so that the bridge, at its default level info,
// dropped an error line whole.
func TestLongPluginLogLineKeepsItsLevel(t *testing.T) {
	logs := &syncBuffer{}
	opts := host.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	p, _ := newPool(t, testConfig(testPlugin), opts)
	if _, err := p.Deliver(t.Context(), delivery(1, "long-log:200000", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Deliver(t.Context(), delivery(2, "log", nil)); err != nil {
		t.Fatal(err)
	}
	// The short line logged after it has arrived: so has the long one.
	waitFor(t, "the plugin's short log line", func() bool { return strings.Contains(logs.String(), "testplugin log line") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "testplugin long log line") {
			if !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "id=orders-1-1") {
				t.Errorf("long log line %.300q: want it at error, with its id", line)
			}
			return
		}
	}
	t.Errorf("the long error line is not in the bridge's log (%d bytes of it)", len(logs.String()))
}
