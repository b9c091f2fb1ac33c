package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTable is a table the hookbridge-postgres plugin writes. In insert mode
// it has one row per record; in upsert mode a trigger copies every insert
// and update into a history table, which then holds the writes.
type pgTable struct {
	pool  *pgxpool.Pool
	table string
	// query returns (partition, offset, value) of the writes in the order
	// they happened.
	query string

	tx pgx.Tx // holds the lock while blocked
}

func (s *pgTable) written(t *testing.T) []written {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), s.query)
	if err != nil {
		t.Fatal(err)
	}
	var out []written
	for rows.Next() {
		var (
			w     written
			value []byte
		)
		if err := rows.Scan(&w.Partition, &w.Offset, &value); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(value, &w.Rec); err != nil {
			t.Fatalf("value %q: %v", value, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// block takes a SHARE lock on the table in a transaction: INSERT (ROW
// EXCLUSIVE) waits for it, reads do not.
func (s *pgTable) block(t *testing.T) func() {
	t.Helper()
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+s.ident()+" IN SHARE MODE"); err != nil {
		_ = tx.Rollback(t.Context())
		t.Fatal(err)
	}
	s.tx = tx
	return func() {
		if err := tx.Rollback(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("releasing the lock: %v", err)
		}
	}
}

// blocked reports a session waiting for the table's lock.
func (s *pgTable) blocked(t *testing.T) bool {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted", s.ident()).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func (s *pgTable) ident() string { return pgx.Identifier{s.table}.Sanitize() }

// connectPostgres returns a pool on the test database.
func connectPostgres(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := need(t, envPostgres)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("%s: %v", envPostgres, err)
	}
	return pool, dsn
}

// tableName turns a topic (unique to the run) into a table name.
func tableName(topic string) string {
	name := "hb_" + strings.NewReplacer("-", "_").Replace(topic)
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	return name
}

// dropOnCleanup drops the tables when the test ends.
func dropOnCleanup(t *testing.T, pool *pgxpool.Pool, tables ...string) {
	t.Cleanup(func() {
		for _, tb := range tables {
			_, _ = pool.Exec(context.WithoutCancel(t.Context()), "DROP TABLE IF EXISTS "+pgx.Identifier{tb}.Sanitize())
		}
	})
}

// kill -9 in the middle of a stream, insert mode: the table holds every
// record exactly once (COUNT(*) == N, no (topic, partition, offset) twice),
// and each key's rows were inserted in the order the records were produced
// (an identity column numbers the inserts).
func TestPostgresInsertExactlyOnceAcrossKill9(t *testing.T) {
	pool, dsn := connectPostgres(t)
	tbl := &pgTable{pool: pool}
	s := scenario{plugin: postgresBin, n: 2000, keys: 50, prepare: func(t *testing.T, topic string) (map[string]string, sink) {
		tbl.table = tableName(topic)
		tbl.query = `SELECT "partition", "offset", value::text FROM ` + tbl.ident() + ` ORDER BY inserted`
		dropOnCleanup(t, pool, tbl.table)
		// The documented schema, plus an identity column the plugin does
		// not write.
		_, err := pool.Exec(t.Context(), `CREATE TABLE `+tbl.ident()+` (
			topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL,
			key text, value jsonb, headers jsonb, "timestamp" timestamptz,
			inserted bigint GENERATED ALWAYS AS IDENTITY,
			PRIMARY KEY (topic, "partition", "offset"))`)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"PG_DSN": dsn, "PG_TABLE": tbl.table, "PG_MODE": "insert", "PG_VALUE_TYPE": "jsonb"}, tbl
	}}

	res := s.run(t)
	var count, distinct, badKeys int
	err := pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT (topic, "partition", "offset")),
		count(*) FILTER (WHERE key IS DISTINCT FROM value->>'key' OR headers->0->>'value' IS DISTINCT FROM 'application/json')
		FROM `+tbl.ident()).Scan(&count, &distinct, &badKeys)
	if err != nil {
		t.Fatal(err)
	}
	if count != s.n || distinct != s.n || badKeys != 0 {
		t.Errorf("COUNT(*) = %d, distinct (topic, partition, offset) = %d, rows with a wrong key or headers = %d; want %d, %d, 0", count, distinct, badKeys, s.n, s.n)
	}
	checkExactlyOnce(t, tbl.written(t), res.produced)
	t.Logf("kill -9 with writes in flight: %d records were written before the restart and delivered again; every record is in the table once", res.redelivered)
}

// kill -9 in the middle of a stream, upsert mode, on a table the plugin
// creates (PG_CREATE_TABLE=true): every record changes its key's row
// exactly once and in order (a trigger records each insert and update),
// and each row ends as its key's last record.
func TestPostgresUpsertExactlyOnceAcrossKill9(t *testing.T) {
	pool, dsn := connectPostgres(t)
	tbl := &pgTable{pool: pool}
	var history string
	s := scenario{plugin: postgresBin, n: 2000, keys: 50, prepare: func(t *testing.T, topic string) (map[string]string, sink) {
		tbl.table = tableName(topic)
		history = tbl.table + "_h"
		h := pgx.Identifier{history}.Sanitize()
		tbl.query = `SELECT "partition", "offset", value::text FROM ` + h + ` ORDER BY id`
		dropOnCleanup(t, pool, tbl.table, history)
		// The plugin creates the table; the trigger is added once it
		// exists (before any record is produced).
		return map[string]string{"PG_DSN": dsn, "PG_TABLE": tbl.table, "PG_MODE": "upsert", "PG_VALUE_TYPE": "jsonb", "PG_CREATE_TABLE": "true"},
			&upsertHistory{pgTable: tbl, history: h}
	}}

	res := s.run(t)
	checkExactlyOnce(t, tbl.written(t), res.produced)

	// Each key's row is its last record.
	last := map[string][2]int64{} // key -> partition, offset
	for _, pr := range res.produced {
		last[string(pr.Key)] = [2]int64{int64(pr.Partition), pr.Offset}
	}
	rows, err := pool.Query(t.Context(), `SELECT key, "partition", "offset" FROM `+tbl.ident())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for rows.Next() {
		var (
			key string
			p   int32
			o   int64
		)
		if err := rows.Scan(&key, &p, &o); err != nil {
			t.Fatal(err)
		}
		got[key] = [2]int64{int64(p), o}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(last) {
		t.Errorf("rows (key: partition, offset):\n got %v\nwant %v", got, last)
	}
	t.Logf("kill -9 with writes in flight: %d records were written before the restart and delivered again; each changed its row once", res.redelivered)
}

// upsertHistory is a pgTable whose writes are read from a history table
// filled by a trigger, installed once the bridge is ready (the plugin
// creates the table when it starts, before the bridge is ready) and before
// any record is produced.
type upsertHistory struct {
	*pgTable
	history string
}

func (u *upsertHistory) bridgeReady(t *testing.T) { u.install(t) }

func (u *upsertHistory) install(t *testing.T) {
	t.Helper()
	fn := pgx.Identifier{u.table + "_f"}.Sanitize()
	for _, stmt := range []string{
		`CREATE TABLE ` + u.history + ` (id bigint GENERATED ALWAYS AS IDENTITY, "partition" integer, "offset" bigint, value jsonb)`,
		`CREATE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			INSERT INTO ` + u.history + ` ("partition", "offset", value) VALUES (NEW."partition", NEW."offset", NEW.value);
			RETURN NULL; END $$`,
		`CREATE TRIGGER history AFTER INSERT OR UPDATE ON ` + u.ident() + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
	} {
		if _, err := u.pool.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		_, _ = u.pool.Exec(context.WithoutCancel(t.Context()), "DROP FUNCTION IF EXISTS "+fn+" CASCADE")
	})
}
