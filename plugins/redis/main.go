// Command hookbridge-redis is the first-party Hookbridge plugin that writes
// records to Redis: as stream entries (XADD), list elements (LPUSH) or string
// values (SET), each record exactly once even when it is delivered again.
// It is configured by its environment, the plugin's env in the bridge's
// configuration:
//
//	plugins:
//	  redis:
//	    command: ["./bin/hookbridge-redis"]
//	    env:
//	      REDIS_URL: redis://127.0.0.1:6379/0
//	      REDIS_MODE: stream            # stream | list | set
//	      REDIS_KEY: "events:{topic}"   # {topic} {partition} {offset} {key} {route}
//	      REDIS_MAXLEN: "1000000"       # stream: MAXLEN ~ on every XADD
//	routes:
//	  - name: orders-to-redis
//	    topics: ["orders"]
//	    ordering: key
//	    target: {plugin: redis}
//
// docs/plugins.md ("hookbridge-redis") documents every variable, the modes
// and how redeliveries are made no-ops. An invalid configuration stops the
// plugin at start-up with every problem listed, exit status 2.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/hookbridge/hookbridge/plugins/redis/internal/writer"
	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

func main() {
	os.Exit(run(os.Getenv, os.Stderr))
}

// run configures and serves the plugin and returns the exit status: 2 for
// an invalid configuration, 1 when serving failed.
func run(getenv func(string) string, stderr io.Writer) int {
	log := sdk.NewLogger()
	byHost := getenv(protocol.MagicCookieKey) == protocol.MagicCookieValue
	cfg, err := writer.ConfigFromEnv(getenv)
	if err != nil {
		if byHost {
			// As a log line at error level, which the bridge shows;
			// plain stderr lines only appear at its debug level.
			log.Error(err.Error())
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	redis.SetLogger(redisLog{log})
	h := writer.New(cfg, log)
	defer func() { _ = h.Close() }()
	if byHost {
		log.Info("hookbridge-redis: serving", "addr", cfg.Addr(), "mode", string(cfg.Mode), "key", cfg.Key.String())
	}
	if err := sdk.Serve(h); err != nil {
		fmt.Fprintln(stderr, "hookbridge-redis:", err)
		return 1
	}
	return 0
}

// redisLog sends go-redis's own messages (failed dials, pool trouble) to the
// plugin's log at warn level, where the bridge shows them.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "hookbridge-redis: "+fmt.Sprintf(format, v...))
}
