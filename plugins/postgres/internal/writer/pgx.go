package writer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgxDB is the db of a real server, through a pgx pool.
type pgxDB struct {
	pool *pgxpool.Pool
}

var _ db = (*pgxDB)(nil)

// newPgxDB makes the pool; it connects on first use (or, with
// pool_min_conns in the DSN, in the background).
func newPgxDB(ctx context.Context, cfg *pgxpool.Config) (*pgxDB, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, err
	}
	return &pgxDB{pool: pool}, nil
}

func (d *pgxDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return d.pool.Exec(ctx, sql, args...)
}

func (d *pgxDB) ParamTypes(ctx context.Context, sql string) ([]uint32, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	desc, err := conn.Conn().PgConn().Prepare(ctx, "", sql, nil)
	if err != nil {
		return nil, err
	}
	return desc.ParamOIDs, nil
}

func (d *pgxDB) Explain(ctx context.Context, sql string) error {
	rows, err := d.pool.Query(ctx, sql)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

func (d *pgxDB) TableExists(ctx context.Context, table string) (bool, error) {
	var exists bool
	err := d.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists)
	return exists, err
}

func (d *pgxDB) RequiredColumns(ctx context.Context, table string) ([]string, error) {
	// A BEFORE INSERT row trigger may fill such a column (NOT NULL is
	// checked after it): a table with one is not checked here, and a row
	// it leaves without the value fails as the table's problem (Handle).
	rows, err := d.pool.Query(ctx, `SELECT attname FROM pg_catalog.pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
		  AND attnotnull AND NOT atthasdef AND attidentity = '' AND attgenerated = ''
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
		    WHERE tgrelid = $1::regclass AND NOT tgisinternal AND tgenabled <> 'D' AND tgtype & 7 = 7)
		ORDER BY attnum`, table)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (d *pgxDB) CreateTable(ctx context.Context, table, create string) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "hookbridge-postgres create "+table); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		_, err := tx.Exec(ctx, create)
		return err
	})
}

func (d *pgxDB) Close() { d.pool.Close() }
