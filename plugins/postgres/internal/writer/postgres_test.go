package writer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

// envTestPostgres names a real PostgreSQL database (a postgres:// URL) for
// the tests that need one; test/services/start.sh starts one.
const envTestPostgres = "HOOKBRIDGE_TEST_POSTGRES"

// realDB returns a pool on the test database and a table name unique to
// the test, dropped when the test ends; it skips the test without a
// database.
func realDB(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := os.Getenv(envTestPostgres)
	if dsn == "" {
		e2eSkipf(t, "%s is not set: no PostgreSQL to test against (bash test/services/start.sh starts one)", envTestPostgres)
	}
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("%s: %v", envTestPostgres, err)
	}
	table := fmt.Sprintf("hookbridge_test_%s_%d", strings.ToLower(t.Name()), rand.IntN(1e9))
	t.Cleanup(func() {
		_, _ = pool.Exec(context.WithoutCancel(t.Context()), "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize())
		pool.Close()
	})
	return pool, table
}

// realHandler returns a Handler on the test database, and an sdktest
// server in front of it.
func realHandler(t *testing.T, vars map[string]string) (*Handler, *sdktest.Server) {
	t.Helper()
	m := map[string]string{EnvDSN: os.Getenv(envTestPostgres)}
	for k, v := range vars {
		m[k] = v
	}
	cfg, err := ConfigFromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, sdktest.NewServer(t, h)
}

func TestPostgresInsert(t *testing.T) {
	pool, table := realDB(t)
	_, srv := realHandler(t, map[string]string{EnvTable: table, EnvCreateTable: "true", EnvValueType: "jsonb"})
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	for i := range 10 {
		msg := &sdk.Message{Topic: "orders", Partition: int32(i % 2), Offset: int64(i), Key: fmt.Appendf(nil, "k%d", i%3),
			Value: fmt.Appendf(nil, `{"n": %d}`, i), Timestamp: ts, Headers: []sdk.Header{{Key: "h", Value: []byte("v")}}}
		for attempt := 1; attempt <= 2; attempt++ {
			msg.Attempt = attempt
			if _, err := srv.Handle(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 10 {
		t.Fatalf("count = %d, %v; want 10 (every record once)", n, err)
	}
	var (
		key, headers string
		value        map[string]int
		got          time.Time
	)
	err := pool.QueryRow(t.Context(), `SELECT key, value, headers::text, "timestamp" FROM `+table+` WHERE topic = 'orders' AND "partition" = 1 AND "offset" = 7`).
		Scan(&key, &value, &headers, &got)
	if err != nil {
		t.Fatal(err)
	}
	if key != "k1" || value["n"] != 7 || headers != `[{"key": "h", "value": "v"}]` || !got.Equal(ts) {
		t.Errorf("row: key %q value %v headers %s timestamp %v", key, value, headers, got)
	}
}

func TestPostgresConcurrentRedeliveries(t *testing.T) {
	pool, table := realDB(t)
	_, srv := realHandler(t, map[string]string{EnvTable: table, EnvCreateTable: "true"})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			// 20 records, each delivered 10 times at once.
			_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: int64(i % 20), Value: []byte("v")})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 20 {
		t.Fatalf("count = %d, %v; want 20", n, err)
	}
}

func TestPostgresUpsert(t *testing.T) {
	pool, table := realDB(t)
	_, srv := realHandler(t, map[string]string{EnvTable: table, EnvCreateTable: "true", EnvMode: "upsert", EnvValueType: "text"})
	write := func(partition int32, offset int64, value string) {
		t.Helper()
		if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Partition: partition, Offset: offset, Key: []byte("u1"), Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	row := func() string {
		t.Helper()
		var (
			p int32
			o int64
			v string
		)
		if err := pool.QueryRow(t.Context(), `SELECT "partition", "offset", value FROM `+table+` WHERE key = 'u1'`).Scan(&p, &o, &v); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d/%d %s", p, o, v)
	}
	write(0, 1, "first")
	write(0, 3, "third")
	if got := row(); got != "0/3 third" {
		t.Fatalf("row %s, want the newer record", got)
	}
	write(0, 2, "second (older, redelivered late)")
	write(0, 3, "third again")
	if got := row(); got != "0/3 third" {
		t.Fatalf("row %s: an older record or a redelivery replaced the row", got)
	}
	write(1, 0, "from another partition")
	if got := row(); got != "1/0 from another partition" {
		t.Fatalf("row %s: a record from another partition does not replace the row", got)
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want one row per key", n, err)
	}
	// A tombstone keeps the row with a NULL value and its offset, so that
	// an older record arriving late does not bring the value back; an
	// empty value is an empty string.
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Partition: 1, Offset: 5, Key: []byte("u1"), Value: nil}); err != nil {
		t.Fatal(err)
	}
	write(1, 4, "older than the tombstone")
	var v *string
	if err := pool.QueryRow(t.Context(), `SELECT value FROM `+table+` WHERE key = 'u1' AND "offset" = 5`).Scan(&v); err != nil || v != nil {
		t.Fatalf("after a tombstone: value %v, %v; want NULL at offset 5", v, err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "users", Partition: 1, Offset: 6, Key: []byte("u1"), Value: []byte{}}); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT value FROM `+table+` WHERE key = 'u1' AND "offset" = 6`).Scan(&v); err != nil || v == nil || *v != "" {
		t.Fatalf("an empty value: %v, %v; want '' at offset 6", v, err)
	}
}

func TestPostgresSchemaErrors(t *testing.T) {
	pool, table := realDB(t)
	q := pgx.Identifier{table}.Sanitize()
	for _, tc := range []struct {
		name, create string
		vars         map[string]string
		want         string
	}{
		{"missing table", "", nil, "42P01"},
		{"no unique key for ON CONFLICT", `CREATE TABLE ` + q + ` (topic text, "partition" int, "offset" bigint, key text, value bytea, headers jsonb, "timestamp" timestamptz)`, nil, "42P10"},
		{"missing column", `CREATE TABLE ` + q + ` (topic text, "partition" int, "offset" bigint, key text, value bytea, PRIMARY KEY (topic, "partition", "offset"))`, nil, `column "headers" of relation`},
		{"value type", `CREATE TABLE ` + q + ` (topic text, "partition" int, "offset" bigint, value jsonb, PRIMARY KEY (topic, "partition", "offset"))`,
			map[string]string{EnvColumns: "key=-,headers=-,timestamp=-"}, `column "value" (value) is jsonb, want bytea (PG_VALUE_TYPE=bytea)`},
	} {
		if _, err := pool.Exec(t.Context(), "DROP TABLE IF EXISTS "+q); err != nil {
			t.Fatal(err)
		}
		if tc.create != "" {
			if _, err := pool.Exec(t.Context(), tc.create); err != nil {
				t.Fatal(err)
			}
		}
		vars := map[string]string{EnvTable: table}
		for k, v := range tc.vars {
			vars[k] = v
		}
		h, _ := realHandler(t, vars)
		err := h.Prepare(t.Context())
		if !IsSchemaError(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Prepare = %v, want a schema error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestPostgresRecordErrorsArePermanent(t *testing.T) {
	pool, table := realDB(t)
	q := pgx.Identifier{table}.Sanitize()
	_, err := pool.Exec(t.Context(), `CREATE TABLE `+q+` (topic text, "partition" int, "offset" bigint, value jsonb,
		note text NOT NULL DEFAULT 'x', CHECK (value IS NULL OR jsonb_typeof(value) = 'object'), PRIMARY KEY (topic, "partition", "offset"))`)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := realHandler(t, map[string]string{EnvTable: table, EnvValueType: "jsonb", EnvColumns: "key=-,headers=-,timestamp=-"})
	for _, tc := range []struct{ value, want string }{
		{`{"a": "\u0000"}`, "22P05"}, // jsonb cannot hold \u0000
		{`[1]`, "23514"},             // the CHECK constraint
	} {
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte(tc.value)})
		if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("value %s: err = %v, want permanent %s", tc.value, err, tc.want)
		}
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte(`{"ok": true}`)}); err != nil {
		t.Fatalf("a good record after bad ones: %v", err)
	}
}

func TestPostgresDownIsRetryable(t *testing.T) {
	// A port nothing listens on: the connection is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg, err := ConfigFromEnv(env(map[string]string{EnvDSN: "postgres://u@" + addr + "/db?connect_timeout=5", EnvTable: "events"}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Prepare(t.Context()); err == nil || IsSchemaError(err) {
		t.Fatalf("Prepare = %v, want a connection error", err)
	}
	srv := sdktest.NewServer(t, h)
	_, err = srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) || sdktest.IsCallError(err) {
		t.Fatalf("err = %v, want a retryable handler error", err)
	}
}

// e2eSkipf skips a test whose server is not configured, except in the
// end-to-end tier (HOOKBRIDGE_E2E=1, set by test/e2e.sh), where a missing
// server is a failure: that tier must never pass by skipping.
func e2eSkipf(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("HOOKBRIDGE_E2E") == "1" {
		t.Fatalf("HOOKBRIDGE_E2E=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}

// A key larger than its index can hold (about 2,700 bytes for a btree) can
// never be written: permanent (class 54), not retried for ever.
func TestPostgresHugeKeyIsPermanent(t *testing.T) {
	_, table := realDB(t)
	_, srv := realHandler(t, map[string]string{EnvTable: table, EnvCreateTable: "true", EnvMode: "upsert"})
	key := make([]byte, 6000)
	for i := range key {
		key[i] = "0123456789abcdef"[rand.IntN(16)] // does not compress below the limit
	}
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Key: key, Value: []byte("v")})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "54000") {
		t.Fatalf("err = %v, want permanent 54000", err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("a good record after it: %v", err)
	}
}

// A NOT NULL column with no default that the plugin does not write fails
// every row: the table's problem, never the records'. The start-up check
// refuses it, unless a BEFORE INSERT trigger may fill it; added while the
// plugin runs, it pauses the route (retryable) until it gets a default.
func TestPostgresNotNullUnwritten(t *testing.T) {
	pool, table := realDB(t)
	q := pgx.Identifier{table}.Sanitize()
	create := `CREATE TABLE ` + q + ` (topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL,
		key text, value bytea, headers jsonb, "timestamp" timestamptz, id bigint GENERATED ALWAYS AS IDENTITY,
		at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, "partition", "offset"))`
	if _, err := pool.Exec(t.Context(), create); err != nil {
		t.Fatal(err)
	}
	h, srv := realHandler(t, map[string]string{EnvTable: table})
	if err := h.Prepare(t.Context()); err != nil {
		t.Fatalf("identity and default columns: Prepare = %v", err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	// A migration adds a NOT NULL column while the plugin runs (the table
	// is empty for PostgreSQL to allow it).
	if _, err := pool.Exec(t.Context(), `DELETE FROM `+q+`; ALTER TABLE `+q+` ADD COLUMN tenant text NOT NULL`); err != nil {
		t.Fatal(err)
	}
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), "23502") {
		t.Fatalf("err = %v, want the retryable NOT NULL violation", err)
	}
	_, err = srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), `NOT NULL column "tenant", which the plugin does not write, has no default`) {
		t.Fatalf("err = %v, want the table checked again and refused, retryable", err)
	}
	h2, _ := realHandler(t, map[string]string{EnvTable: table})
	if err := h2.Prepare(t.Context()); !IsSchemaError(err) {
		t.Fatalf("start-up check: Prepare = %v, want a schema error", err)
	}

	// A BEFORE INSERT trigger that fills it.
	if _, err := pool.Exec(t.Context(), `CREATE FUNCTION `+pgx.Identifier{table + "_tenant"}.Sanitize()+`() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN NEW.tenant := 'acme'; RETURN NEW; END$$;
		CREATE TRIGGER tenant BEFORE INSERT ON `+q+` FOR EACH ROW EXECUTE FUNCTION `+pgx.Identifier{table + "_tenant"}.Sanitize()+`()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.WithoutCancel(t.Context()), `DROP TABLE IF EXISTS `+q+`; DROP FUNCTION IF EXISTS `+pgx.Identifier{table + "_tenant"}.Sanitize())
	})
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")}); err != nil {
		t.Fatalf("with the trigger: %v", err)
	}
	var tenant string
	if err := pool.QueryRow(t.Context(), `SELECT tenant FROM `+q+` WHERE "offset" = 1`).Scan(&tenant); err != nil || tenant != "acme" {
		t.Fatalf("tenant %q, %v", tenant, err)
	}
}

// PG_CREATE_TABLE=true with a user that may write to the existing table but
// not create tables in its schema (PostgreSQL 15's default for public).
func TestPostgresCreateTableExisting(t *testing.T) {
	pool, table := realDB(t)
	q := pgx.Identifier{table}.Sanitize()
	const role = "hookbridge_test_writer"
	if _, err := pool.Exec(t.Context(), `DO $$BEGIN CREATE ROLE `+role+` LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;
		REVOKE CREATE ON SCHEMA public FROM PUBLIC, `+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS "+q)
		_, _ = pool.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	if _, err := pool.Exec(t.Context(), `CREATE TABLE `+q+` (topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL,
		key text, value bytea, headers jsonb, "timestamp" timestamptz, PRIMARY KEY (topic, "partition", "offset"));
		GRANT SELECT, INSERT ON `+q+` TO `+role); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(os.Getenv(envTestPostgres))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	h, srv := realHandler(t, map[string]string{EnvDSN: u.String(), EnvTable: table, EnvCreateTable: "true"})
	if err := h.Prepare(t.Context()); err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
}
