package writer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookbridge/hookbridge/plugins/internal/recordjson"
	"github.com/hookbridge/hookbridge/sdk"
)

// Handler writes records to a PostgreSQL table. It is an sdk.Handler:
// Handle is safe for concurrent use. Close it when Serve returned.
type Handler struct {
	cfg Config
	db  db
	log *slog.Logger
	sql string

	mu    sync.Mutex  // serializes Prepare
	ready atomic.Bool // Prepare succeeded; reset by a schema error
}

var _ sdk.Handler = (*Handler)(nil)

// New returns a Handler for cfg, which must come from ConfigFromEnv. It
// does not connect; Prepare (or the first record) does. ctx bounds only
// the making of the pool.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Handler, error) {
	d, err := newPgxDB(ctx, cfg.pool)
	if err != nil {
		return nil, fmt.Errorf("hookbridge-postgres: %w", err)
	}
	return newHandler(cfg, d, log), nil
}

func newHandler(cfg Config, d db, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, db: d, log: log, sql: cfg.WriteSQL()}
}

// Close closes the connection pool.
func (h *Handler) Close() { h.db.Close() }

// Prepare makes the table ready: it creates it when PG_CREATE_TABLE=true,
// has the server prepare the write statement (the table and the columns
// exist) and checks the columns' types against PG_KEY_TYPE and
// PG_VALUE_TYPE, then has the server plan it (EXPLAIN, which runs nothing:
// ON CONFLICT names columns with a unique constraint). Once it succeeded it does
// nothing until a write fails with a schema error. IsSchemaError tells a
// table that does not fit from a database that is not reachable.
func (h *Handler) Prepare(ctx context.Context) error {
	if h.ready.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready.Load() {
		return nil
	}
	table := h.cfg.Table.Sanitize()
	if h.cfg.CreateTable {
		// CREATE TABLE IF NOT EXISTS needs the schema's CREATE privilege
		// even when the table exists, which a user that may only write to
		// it lacks.
		exists, err := h.db.TableExists(ctx, table)
		if err != nil {
			return fmt.Errorf("looking up table %s: %w", table, err)
		}
		if !exists {
			if err := h.db.CreateTable(ctx, table, h.cfg.CreateTableSQL()); err != nil {
				return fmt.Errorf("creating table %s: %w", table, err)
			}
		}
	}
	oids, err := h.db.ParamTypes(ctx, h.sql)
	if err != nil {
		return fmt.Errorf("table %s: %w (statement: %s)", table, err, h.sql)
	}
	if err := h.checkTypes(oids); err != nil {
		return err
	}
	required, err := h.db.RequiredColumns(ctx, table)
	if err != nil {
		return fmt.Errorf("table %s: looking up its columns: %w", table, err)
	}
	var unwritten []string
	for _, name := range required {
		if !h.writes(name) {
			unwritten = append(unwritten, quote(name))
		}
	}
	if len(unwritten) > 0 {
		return &SchemaError{Msg: fmt.Sprintf("table %s: NOT NULL column %s, which the plugin does not write, has no default: every row would be refused (give it a default, or let it be NULL)",
			table, strings.Join(unwritten, ", "))}
	}
	if err := h.db.Explain(ctx, h.cfg.ExplainSQL()); err != nil {
		return fmt.Errorf("table %s: %w (statement: %s)", table, err, h.sql)
	}
	h.ready.Store(true)
	return nil
}

// typeMap names PostgreSQL's built-in types.
var typeMap = pgtype.NewMap()

// accepted lists the column types a field may be written to.
func (h *Handler) accepted(field string) []uint32 {
	switch field {
	case FieldTopic:
		return []uint32{pgtype.TextOID, pgtype.VarcharOID}
	case FieldPartition:
		return []uint32{pgtype.Int4OID, pgtype.Int8OID}
	case FieldOffset:
		return []uint32{pgtype.Int8OID, pgtype.NumericOID}
	case FieldKey:
		return typeOIDs(h.cfg.KeyType)
	case FieldValue:
		return typeOIDs(h.cfg.ValueType)
	case FieldHeaders:
		return []uint32{pgtype.JSONBOID, pgtype.JSONOID}
	case FieldTimestamp:
		return []uint32{pgtype.TimestamptzOID, pgtype.TimestampOID}
	}
	return nil
}

// typeOIDs lists the column types of PG_KEY_TYPE or PG_VALUE_TYPE.
func typeOIDs(t string) []uint32 {
	switch t {
	case TypeBytea:
		return []uint32{pgtype.ByteaOID}
	case TypeJSONB:
		return []uint32{pgtype.JSONBOID, pgtype.JSONOID}
	}
	return []uint32{pgtype.TextOID, pgtype.VarcharOID}
}

// typeName names a type OID.
func typeName(oid uint32) string {
	if t, ok := typeMap.TypeForOID(oid); ok {
		return t.Name
	}
	return fmt.Sprintf("type oid %d", oid)
}

// checkTypes compares the statement's parameter types (the columns' types,
// as the server inferred them) with what the configuration writes.
func (h *Handler) checkTypes(oids []uint32) error {
	if len(oids) != len(h.cfg.Columns) {
		return &SchemaError{Msg: fmt.Sprintf("table %s: the statement has %d parameters, want %d", h.cfg.Table.Sanitize(), len(oids), len(h.cfg.Columns))}
	}
	var problems []string
	for i, col := range h.cfg.Columns {
		ok := h.accepted(col.Field)
		if slices.Contains(ok, oids[i]) {
			continue
		}
		names := make([]string, len(ok))
		for j, o := range ok {
			names[j] = typeName(o)
		}
		hint := ""
		switch col.Field {
		case FieldKey:
			hint = " (" + EnvKeyType + "=" + h.cfg.KeyType + ")"
		case FieldValue:
			hint = " (" + EnvValueType + "=" + h.cfg.ValueType + ")"
		}
		problems = append(problems, fmt.Sprintf("column %s (%s) is %s, want %s%s",
			quote(col.Name), col.Field, typeName(oids[i]), strings.Join(names, " or "), hint))
	}
	if len(problems) > 0 {
		return &SchemaError{Msg: fmt.Sprintf("table %s does not fit the configuration: %s", h.cfg.Table.Sanitize(), strings.Join(problems, "; "))}
	}
	return nil
}

// Handle writes msg as a row. A record written before is a no-op (see
// WriteSQL). A record the table cannot take is a permanent error (see
// Permanent and Args); anything else is retryable.
func (h *Handler) Handle(ctx context.Context, msg *sdk.Message) (*sdk.Result, error) {
	args, err := h.Args(msg)
	if err != nil {
		return nil, sdk.Permanent(fmt.Errorf("hookbridge-postgres: %s: %w", msg.ID, err))
	}
	if err := h.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("hookbridge-postgres: %s: %w", msg.ID, err)
	}
	tag, err := h.db.Exec(ctx, h.sql, args...)
	if err != nil {
		err = fmt.Errorf("hookbridge-postgres: %s: writing to %s: %w", msg.ID, h.cfg.Table.Sanitize(), err)
		if isSchemaCode(err) || h.notWritten(err) {
			// The table changed under us (dropped, altered, a NOT NULL
			// column added): check it again, and create it again with
			// PG_CREATE_TABLE=true. Retryable: the route pauses until the
			// table is fixed.
			h.ready.Store(false)
			return nil, err
		}
		return nil, classify(err)
	}
	if tag.RowsAffected() == 0 {
		h.log.DebugContext(ctx, "already written or older than the row, skipped", "record", msg.ID, "attempt", msg.Attempt)
	}
	return nil, nil
}

// writes reports whether the plugin writes the column named name.
func (h *Handler) writes(name string) bool {
	for _, col := range h.cfg.Columns {
		if col.Name == name {
			return true
		}
	}
	return false
}

// notWritten reports a NOT NULL violation on a column the plugin does not
// write: no record can ever fill it, so it is the table's problem.
func (h *Handler) notWritten(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23502" && pg.ColumnName != "" && !h.writes(pg.ColumnName)
}

// Args returns the statement's parameters for msg, in Config.Columns order:
//
//	topic      the topic
//	partition  int32
//	offset     int64
//	key        NULL for a null key (an error in upsert mode); a string for
//	           PG_KEY_TYPE=text (an error unless UTF-8 without NUL), else bytes
//	value      NULL for a null value (a tombstone), and for an empty one with
//	           jsonb; bytes for bytea, JSON for jsonb (an error unless valid
//	           JSON), a string for text (an error unless UTF-8 without NUL)
//	headers    JSON, see recordjson.Headers (NUL-free); NULL when there are none
//	timestamp  the record's time; NULL when it has none; an error outside
//	           PostgreSQL's range
//
// Its errors are the record's fault: the caller makes them permanent.
func (h *Handler) Args(msg *sdk.Message) ([]any, error) {
	args := make([]any, len(h.cfg.Columns))
	for i, col := range h.cfg.Columns {
		switch col.Field {
		case FieldTopic:
			args[i] = msg.Topic
		case FieldPartition:
			args[i] = msg.Partition
		case FieldOffset:
			args[i] = msg.Offset
		case FieldKey:
			switch {
			case msg.Key == nil && h.cfg.Mode == ModeUpsert:
				return nil, errors.New("the record has a null key: upsert mode keeps one row per key")
			case msg.Key == nil:
				args[i] = nil
			case h.cfg.KeyType == TypeText:
				if err := checkText(msg.Key); err != nil {
					return nil, fmt.Errorf("key: %w (%s=bytea takes any bytes)", err, EnvKeyType)
				}
				args[i] = string(msg.Key)
			default:
				args[i] = msg.Key
			}
		case FieldValue:
			v, err := h.value(msg.Value)
			if err != nil {
				return nil, err
			}
			args[i] = v
		case FieldHeaders:
			if len(msg.Headers) > 0 {
				args[i] = json.RawMessage(recordjson.Headers(msg.Headers, true))
			}
		case FieldTimestamp:
			if !msg.Timestamp.IsZero() {
				// Past int64 microseconds pgx's encoding wraps around to
				// another instant; PostgreSQL refuses less than that.
				if y := msg.Timestamp.Year(); y < minYear || y > maxYear {
					return nil, fmt.Errorf("timestamp %d ms is outside PostgreSQL's range (4713 BC to 294276 AD)", msg.Timestamp.UnixMilli())
				}
				args[i] = msg.Timestamp
			}
		}
	}
	return args, nil
}

// The years of PostgreSQL's timestamptz: 4713 BC (year -4712 in Go's
// proleptic count) to 294276 AD.
const (
	minYear = -4712
	maxYear = 294276
)

// value converts a record's value for PG_VALUE_TYPE: NULL for a null value
// (a tombstone), an empty bytea or text for an empty one. jsonb has no empty
// value: an empty one is NULL too.
func (h *Handler) value(v []byte) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch h.cfg.ValueType {
	case TypeJSONB:
		if len(v) == 0 {
			return nil, nil
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("value is not valid JSON (%s=jsonb); %s=bytea takes any bytes", EnvValueType, EnvValueType)
		}
		return json.RawMessage(v), nil
	case TypeText:
		if err := checkText(v); err != nil {
			return nil, fmt.Errorf("value: %w (%s=text); %s=bytea takes any bytes", err, EnvValueType, EnvValueType)
		}
		return string(v), nil
	}
	return v, nil
}

// checkText reports bytes a text column cannot hold.
func checkText(b []byte) error {
	switch {
	case !utf8.Valid(b):
		return errors.New("not valid UTF-8")
	case bytes.IndexByte(b, 0) >= 0:
		return errors.New("contains a NUL byte")
	}
	return nil
}

// db is what the handler needs of the database. Its methods are called
// concurrently.
type db interface {
	// Exec runs one statement in its own transaction.
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	// ParamTypes has the server prepare sql and returns its parameters'
	// types.
	ParamTypes(ctx context.Context, sql string) ([]uint32, error)
	// Explain has the server plan sql (an EXPLAIN) and discards the plan.
	Explain(ctx context.Context, sql string) error
	// TableExists reports whether table (quoted, as Identifier.Sanitize
	// gives it) names a table or view the user can see.
	TableExists(ctx context.Context, table string) (bool, error)
	// RequiredColumns lists the columns of table that a row must give a
	// value: NOT NULL, with no default, not an identity or generated
	// column; none when a BEFORE INSERT row trigger may fill them.
	RequiredColumns(ctx context.Context, table string) ([]string, error)
	// CreateTable runs the CREATE TABLE IF NOT EXISTS statement create
	// under a lock named after table, so that plugin processes starting
	// together do not race (concurrent CREATE TABLE IF NOT EXISTS can fail
	// on PostgreSQL's catalog).
	CreateTable(ctx context.Context, table, create string) error
	// Close closes the connections.
	Close()
}
