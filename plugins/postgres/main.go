// Command hookbridge-postgres is the first-party Hookbridge plugin that writes
// records to a PostgreSQL table: one row per record (insert) or one row per
// record key (upsert), each record exactly once even when it is delivered
// again. It is configured by its environment, the plugin's env in the
// bridge's configuration:
//
//	plugins:
//	  postgres:
//	    command: ["./bin/hookbridge-postgres"]
//	    env:
//	      PG_DSN: ${ORDERS_DSN}         # postgres://user:password@host:5432/db
//	      PG_TABLE: orders_log
//	      PG_MODE: insert               # insert | upsert
//	      PG_VALUE_TYPE: jsonb          # bytea | jsonb | text
//	      PG_CREATE_TABLE: "true"
//	routes:
//	  - name: orders-to-postgres
//	    topics: ["orders"]
//	    ordering: key
//	    target: {plugin: postgres}
//
// docs/plugins.md ("hookbridge-postgres") documents every variable, the
// modes, the table's schema and how redeliveries are made no-ops. An invalid
// configuration stops the plugin at start-up with every problem listed,
// exit status 2; so does a table that does not fit it, exit status 1.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hookbridge/hookbridge/plugins/postgres/internal/writer"
	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/protocol"
)

// prepareTimeout bounds the start-up check of the table.
const prepareTimeout = 15 * time.Second

func main() {
	os.Exit(run(context.Background(), os.Getenv, os.Stderr))
}

// run configures and serves the plugin and returns the exit status: 2 for
// an invalid configuration, 1 for a table that does not fit it or when
// serving failed.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	log := sdk.NewLogger()
	byHost := getenv(protocol.MagicCookieKey) == protocol.MagicCookieValue
	fail := func(code int, err error) int {
		if byHost {
			// As a log line at error level, which the bridge shows;
			// plain stderr lines only appear at its debug level.
			log.Error(err.Error())
		}
		fmt.Fprintln(stderr, err)
		return code
	}
	cfg, err := writer.ConfigFromEnv(getenv)
	if err != nil {
		return fail(2, err)
	}
	h, err := writer.New(ctx, cfg, log)
	if err != nil {
		return fail(2, err)
	}
	defer h.Close()
	if byHost {
		// Check the table now, so that one that does not fit stops the
		// plugin with a clear message. A database that cannot be reached
		// is not fatal: records fail as retryable until it can be.
		pctx, cancel := context.WithTimeout(ctx, prepareTimeout)
		err := h.Prepare(pctx)
		cancel()
		switch {
		case writer.IsSchemaError(err):
			return fail(1, fmt.Errorf("hookbridge-postgres: %w", err))
		case err != nil:
			log.Warn("hookbridge-postgres: database not ready; records are retried until it is", "error", err.Error())
		}
		log.Info("hookbridge-postgres: serving", "database", cfg.Target(), "table", cfg.Table.Sanitize(), "mode", string(cfg.Mode))
	}
	if err := sdk.Serve(h); err != nil {
		fmt.Fprintln(stderr, "hookbridge-postgres:", err)
		return 1
	}
	return 0
}
