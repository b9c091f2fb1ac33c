package writer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookbridge/hookbridge/sdk"
)

// An automatically updatable view WITH CHECK OPTION refuses a row its WHERE
// does not keep (SQLSTATE 44000): that is the record's data, like a CHECK
// constraint, so it is dead-lettered instead of pausing the route for ever.
func TestPostgresViewCheckOptionIsPermanent(t *testing.T) {
	pool, table := realDB(t)
	q := pgx.Identifier{table}.Sanitize()
	view := "hookbridge_test_view_" + table[len(table)-9:] // names past 63 bytes are cut
	v := pgx.Identifier{view}.Sanitize()
	t.Cleanup(func() { _, _ = pool.Exec(context.WithoutCancel(t.Context()), "DROP VIEW IF EXISTS "+v) })
	for _, sql := range []string{
		`CREATE TABLE ` + q + ` (topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL,
			key text, value text, PRIMARY KEY (topic, "partition", "offset"))`,
		`CREATE VIEW ` + v + ` AS SELECT * FROM ` + q + ` WHERE key LIKE 'eu-%' WITH CHECK OPTION`,
	} {
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	h, srv := realHandler(t, map[string]string{EnvTable: view, EnvValueType: "text", EnvColumns: "headers=-,timestamp=-"})
	if err := h.Prepare(t.Context()); err != nil {
		t.Fatalf("Prepare on the view: %v", err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Key: []byte("eu-1"), Value: []byte("v")}); err != nil {
		t.Fatalf("a row the view keeps: %v", err)
	}
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 2, Key: []byte("us-1"), Value: []byte("v")})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "44000") {
		t.Fatalf("a row the view does not keep: err = %v, want permanent 44000", err)
	}
}

func TestPermanentCheckOption(t *testing.T) {
	err := fmt.Errorf("x: %w", &pgconn.PgError{Code: "44000", Message: "new row violates check option for view"})
	if !Permanent(err) || IsSchemaError(err) {
		t.Errorf("44000: Permanent = %v, IsSchemaError = %v; want permanent, not a schema error", Permanent(err), IsSchemaError(err))
	}
}
