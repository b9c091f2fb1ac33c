package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookbridge/hookbridge/sdk"
	"github.com/hookbridge/hookbridge/sdk/sdktest"
)

func TestPermanent(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		schema    bool
	}{
		{"invalid text representation", pg("22P02"), true, false},
		{"invalid byte sequence", pg("22021"), true, false},
		{"jsonb \\u0000", pg("22P05"), true, false},
		{"value too long", pg("22001"), true, false},
		{"not null", pg("23502"), true, false},
		{"foreign key", pg("23503"), true, false},
		{"other unique constraint", pg("23505"), true, false},
		{"check", pg("23514"), true, false},
		{"index row too large", pg("54000"), true, false},
		{"JSON too deep for the stack", pg("54001"), true, false},
		{"wrapped", fmt.Errorf("x: %w", pg("23502")), true, false},
		{"serialization failure", pg("40001"), false, false},
		{"deadlock", pg("40P01"), false, false},
		{"connection failure", pg("08006"), false, false},
		{"too many connections", pg("53300"), false, false},
		{"disk full", pg("53100"), false, false},
		{"admin shutdown", pg("57P01"), false, false},
		{"cannot connect now", pg("57P03"), false, false},
		{"query canceled", pg("57014"), false, false},
		{"lock not available", pg("55P03"), false, false},
		{"read-only transaction", pg("25006"), false, false},
		{"undefined table", pg("42P01"), false, true},
		{"undefined column", pg("42703"), false, true},
		{"no unique constraint for ON CONFLICT", pg("42P10"), false, true},
		{"insufficient privilege", pg("42501"), false, true},
		{"datatype mismatch", pg("42804"), false, true},
		{"undefined schema", pg("3F000"), false, true},
		{"schema error", &SchemaError{Msg: "x"}, false, true},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false, false},
		{"eof", io.ErrUnexpectedEOF, false, false},
		{"deadline", context.DeadlineExceeded, false, false},
	} {
		if got := Permanent(tc.err); got != tc.permanent {
			t.Errorf("%s: Permanent = %v, want %v", tc.name, got, tc.permanent)
		}
		if got := sdk.IsPermanent(classify(tc.err)); got != tc.permanent {
			t.Errorf("%s: classify permanent = %v, want %v", tc.name, got, tc.permanent)
		}
		if got := IsSchemaError(tc.err); got != tc.schema {
			t.Errorf("%s: IsSchemaError = %v, want %v", tc.name, got, tc.schema)
		}
	}
}

// fakeDB records statements; its table is described by params (the
// statement's parameter types) and it fails as told.
type fakeDB struct {
	mu          sync.Mutex
	params      []uint32
	paramsErr   error
	explainErr  error
	explains    []string
	execErr     error
	rows        int64
	creates     []string
	prepares    int
	execs       [][]any
	closed      bool
	execSQL     []string
	createTable string
	exists      bool     // TableExists
	required    []string // RequiredColumns
}

func (f *fakeDB) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.execErr != nil {
		return pgconn.CommandTag{}, f.execErr
	}
	f.execs = append(f.execs, args)
	f.execSQL = append(f.execSQL, sql)
	return pgconn.NewCommandTag(fmt.Sprintf("INSERT 0 %d", f.rows)), nil
}

func (f *fakeDB) ParamTypes(_ context.Context, _ string) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepares++
	return f.params, f.paramsErr
}

func (f *fakeDB) Explain(_ context.Context, sql string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.explains = append(f.explains, sql)
	return f.explainErr
}

func (f *fakeDB) TableExists(context.Context, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists, nil
}

func (f *fakeDB) RequiredColumns(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.required, nil
}

func (f *fakeDB) CreateTable(_ context.Context, table, create string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createTable = table
	f.creates = append(f.creates, create)
	return nil
}

func (f *fakeDB) Close() { f.closed = true }

// defaultParams are the types of the default table (CreateTableSQL).
var defaultParams = []uint32{pgtype.TextOID, pgtype.Int4OID, pgtype.Int8OID, pgtype.TextOID, pgtype.ByteaOID, pgtype.JSONBOID, pgtype.TimestamptzOID}

func newTestHandler(t *testing.T, vars map[string]string, fdb *fakeDB) (*Handler, *sdktest.Server) {
	t.Helper()
	cfg, err := ConfigFromEnv(env(withBase(vars)))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, fdb, nil)
	return h, sdktest.NewServer(t, h)
}

func TestHandleInsert(t *testing.T) {
	fdb := &fakeDB{params: defaultParams, rows: 1}
	_, srv := newTestHandler(t, map[string]string{EnvCreateTable: "true"}, fdb)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	msg := &sdk.Message{Topic: "orders", Partition: 3, Offset: 99, Key: []byte("o-1"), Value: []byte{0, 1, 2}, Timestamp: ts,
		Headers: []sdk.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte{0xff}}, {Key: "n", Value: []byte("x\x00y")}}}
	if _, err := srv.Handle(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Handle(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if fdb.prepares != 1 || len(fdb.creates) != 1 || fdb.createTable != `"events"` {
		t.Errorf("prepares %d creates %v (%s): want one of each, before the first write", fdb.prepares, fdb.creates, fdb.createTable)
	}
	if len(fdb.execs) != 2 {
		t.Fatalf("execs %d", len(fdb.execs))
	}
	got := fmt.Sprintf("%v", fdb.execs[0])
	want := fmt.Sprintf("%v", []any{"orders", int32(3), int64(99), "o-1", []byte{0, 1, 2},
		json.RawMessage(`[{"key":"a","value":"1"},{"key":"a","value_base64":"/w=="},{"key":"n","value_base64":"eAB5"}]`), ts})
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
	if !strings.HasSuffix(fdb.execSQL[0], `ON CONFLICT ("topic", "partition", "offset") DO NOTHING`) {
		t.Errorf("sql %s", fdb.execSQL[0])
	}
}

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		msg  sdk.Message
		want string // fmt of the args, or of the error
	}{
		{"nulls", nil, sdk.Message{Topic: "t"}, "[t 0 0 <nil> <nil> <nil> <nil>]"},
		{"empty key is not null", nil, sdk.Message{Topic: "t", Key: []byte{}}, "[t 0 0  <nil> <nil> <nil>]"},
		{"empty bytea value is not null", map[string]string{EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte{}}, "[ 0 0 []]"},
		{"empty text value is not null", map[string]string{EnvValueType: "text", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte{}}, "[ 0 0 ]"},
		{"null text value", map[string]string{EnvValueType: "text", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{}, "[ 0 0 <nil>]"},
		{"bytea key", map[string]string{EnvKeyType: "bytea"}, sdk.Message{Key: []byte{0xff}}, "[ 0 0 [255] <nil> <nil> <nil>]"},
		{"text key not utf-8", nil, sdk.Message{Key: []byte{0xff}}, "error: key: not valid UTF-8 (PG_KEY_TYPE=bytea takes any bytes)"},
		{"text key with NUL", nil, sdk.Message{Key: []byte("a\x00")}, "error: key: contains a NUL byte (PG_KEY_TYPE=bytea takes any bytes)"},
		{"null key in upsert", map[string]string{EnvMode: "upsert"}, sdk.Message{}, "error: the record has a null key: upsert mode keeps one row per key"},
		{"jsonb", map[string]string{EnvValueType: "jsonb", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte(`{"a": [1, 2]}`)}, `[ 0 0 {"a": [1, 2]}]`},
		{"jsonb scalar", map[string]string{EnvValueType: "jsonb", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte(`42`)}, `[ 0 0 42]`},
		{"jsonb invalid", map[string]string{EnvValueType: "jsonb"}, sdk.Message{Value: []byte(`{"a":`)}, "error: value is not valid JSON (PG_VALUE_TYPE=jsonb); PG_VALUE_TYPE=bytea takes any bytes"},
		{"jsonb empty is NULL", map[string]string{EnvValueType: "jsonb", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte{}}, `[ 0 0 <nil>]`},
		{"text", map[string]string{EnvValueType: "text", EnvColumns: "key=-,headers=-,timestamp=-"}, sdk.Message{Value: []byte("héllo")}, `[ 0 0 héllo]`},
		{"text invalid", map[string]string{EnvValueType: "text"}, sdk.Message{Value: []byte{0xc3}}, "error: value: not valid UTF-8 (PG_VALUE_TYPE=text); PG_VALUE_TYPE=bytea takes any bytes"},
		{"timestamp past PostgreSQL's range", map[string]string{EnvColumns: "key=-,value=-,headers=-"}, sdk.Message{Timestamp: time.UnixMilli(math.MaxInt64)},
			"error: timestamp 9223372036854775807 ms is outside PostgreSQL's range (4713 BC to 294276 AD)"},
		{"timestamp before PostgreSQL's range", map[string]string{EnvColumns: "key=-,value=-,headers=-"}, sdk.Message{Timestamp: time.UnixMilli(-1e16)},
			"error: timestamp -10000000000000000 ms is outside PostgreSQL's range (4713 BC to 294276 AD)"},
		{"timestamp at the range's end", map[string]string{EnvColumns: "key=-,value=-,headers=-"}, sdk.Message{Timestamp: time.Date(294276, 12, 31, 0, 0, 0, 0, time.UTC)},
			"[ 0 0 294276-12-31 00:00:00 +0000 UTC]"},
		{"renamed and reordered", map[string]string{EnvColumns: "value=payload,topic=src,key=-,headers=-,timestamp=-"}, sdk.Message{Topic: "t", Partition: 1, Offset: 2, Value: []byte("v")}, "[t 1 2 [118]]"},
	} {
		cfg, err := ConfigFromEnv(env(withBase(tc.env)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h := newHandler(cfg, &fakeDB{}, nil)
		args, err := h.Args(&tc.msg)
		for i, a := range args {
			if j, ok := a.(json.RawMessage); ok {
				args[i] = string(j) // print JSON as text
			}
		}
		got := fmt.Sprint(args)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestHandleRecordErrorsArePermanent(t *testing.T) {
	fdb := &fakeDB{params: defaultParams}
	_, srv := newTestHandler(t, map[string]string{EnvMode: "upsert"}, fdb)
	_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Offset: 4, Value: []byte("v")})
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "hookbridge-postgres: orders-0-4: the record has a null key") {
		t.Fatalf("err = %v", err)
	}
	if fdb.prepares != 0 || len(fdb.execs) != 0 {
		t.Errorf("a record that cannot be written reached the database")
	}
}

func TestHandleServerErrors(t *testing.T) {
	for _, tc := range []struct {
		err       error
		permanent bool
	}{
		{&pgconn.PgError{Code: "23502", Message: `null value in column "topic" violates not-null constraint`, ColumnName: "topic"}, true},
		// A column the plugin does not write: no record can fill it.
		{&pgconn.PgError{Code: "23502", Message: `null value in column "tenant" violates not-null constraint`, ColumnName: "tenant"}, false},
		{&pgconn.PgError{Code: "54000", Message: "index row size 6016 exceeds btree version 4 maximum 2704"}, true},
		{&pgconn.PgError{Code: "22P05", Message: "unsupported Unicode escape sequence"}, true},
		{&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, false},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
	} {
		fdb := &fakeDB{params: defaultParams, execErr: tc.err}
		_, srv := newTestHandler(t, nil, fdb)
		_, err := srv.Handle(t.Context(), &sdk.Message{Topic: "orders", Offset: 7, Value: []byte("v")})
		if err == nil || sdktest.IsCallError(err) {
			t.Fatalf("%v: err = %v", tc.err, err)
		}
		if sdk.IsPermanent(err) != tc.permanent {
			t.Errorf("%v: permanent = %v, want %v", tc.err, sdk.IsPermanent(err), tc.permanent)
		}
		if !strings.Contains(err.Error(), `hookbridge-postgres: orders-0-7: writing to "events"`) {
			t.Errorf("message %q", err)
		}
	}
}

func TestPrepareChecksTypes(t *testing.T) {
	params := append([]uint32(nil), defaultParams...)
	params[4] = pgtype.JSONBOID // value is jsonb, configured bytea
	params[2] = pgtype.Int4OID  // offset is integer
	fdb := &fakeDB{params: params}
	h, srv := newTestHandler(t, nil, fdb)
	err := h.Prepare(t.Context())
	if !IsSchemaError(err) {
		t.Fatalf("Prepare = %v, want a schema error", err)
	}
	for _, want := range []string{`table "events" does not fit the configuration`,
		`column "offset" (offset) is int4, want int8 or numeric`,
		`column "value" (value) is jsonb, want bytea (PG_VALUE_TYPE=bytea)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	// At run time the same problem is retryable: the route pauses until
	// the table is fixed, and the next call checks again.
	_, err = srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	fdb.mu.Lock()
	fdb.params = defaultParams
	fdb.mu.Unlock()
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if fdb.prepares != 3 {
		t.Errorf("prepares = %d, want 3", fdb.prepares)
	}
}

func TestSchemaErrorOnWriteChecksAgain(t *testing.T) {
	fdb := &fakeDB{params: defaultParams, rows: 1}
	_, srv := newTestHandler(t, map[string]string{EnvCreateTable: "true"}, fdb)
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	fdb.mu.Lock()
	fdb.execErr = &pgconn.PgError{Code: "42P01", Message: `relation "events" does not exist`}
	fdb.mu.Unlock()
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1}); err == nil || sdk.IsPermanent(err) {
		t.Fatalf("dropped table: err = %v, want retryable", err)
	}
	fdb.mu.Lock()
	fdb.execErr = nil
	fdb.mu.Unlock()
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1}); err != nil {
		t.Fatal(err)
	}
	if len(fdb.creates) != 2 || fdb.prepares != 2 {
		t.Errorf("creates %d prepares %d, want the table created and checked again", len(fdb.creates), fdb.prepares)
	}
}

func TestAcceptedTypes(t *testing.T) {
	// Tables written by hand may use varchar, bigint partitions, json,
	// timestamp without time zone.
	params := []uint32{pgtype.VarcharOID, pgtype.Int8OID, pgtype.NumericOID, pgtype.VarcharOID, pgtype.JSONOID, pgtype.JSONOID, pgtype.TimestampOID}
	h, _ := newTestHandler(t, map[string]string{EnvValueType: "jsonb"}, &fakeDB{params: params})
	if err := h.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareNeedsTheConflictConstraint(t *testing.T) {
	// Preparing does not plan the statement: EXPLAIN does, and fails when
	// no unique constraint matches ON CONFLICT.
	fdb := &fakeDB{params: defaultParams, explainErr: &pgconn.PgError{Code: "42P10", Message: "there is no unique or exclusion constraint matching the ON CONFLICT specification"}}
	h, _ := newTestHandler(t, nil, fdb)
	err := h.Prepare(t.Context())
	if !IsSchemaError(err) || !strings.Contains(err.Error(), "ON CONFLICT specification") {
		t.Fatalf("Prepare = %v, want a schema error", err)
	}
	if len(fdb.explains) != 1 || !strings.HasPrefix(fdb.explains[0], "EXPLAIN INSERT INTO") {
		t.Errorf("explains %v", fdb.explains)
	}
}

// A NOT NULL column with no default that the plugin does not write makes
// every row fail: the start-up check refuses the table, and a write that
// meets one (a column added while the plugin runs) is retryable and checks
// the table again.
func TestPrepareRefusesAColumnNoRecordFills(t *testing.T) {
	fdb := &fakeDB{params: defaultParams[:6], required: []string{"topic", "tenant", "region"}, rows: 1}
	h, srv := newTestHandler(t, map[string]string{EnvColumns: "timestamp=-"}, fdb)
	err := h.Prepare(t.Context())
	if !IsSchemaError(err) || !strings.Contains(err.Error(), `NOT NULL column "tenant", "region", which the plugin does not write, has no default`) {
		t.Fatalf("Prepare = %v, want a schema error naming tenant and region", err)
	}
	fdb.mu.Lock()
	fdb.required = []string{"topic"}
	fdb.mu.Unlock()
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Value: []byte("v")}); err != nil {
		t.Fatalf("after the fix: %v", err)
	}

	fdb.mu.Lock()
	fdb.execErr = &pgconn.PgError{Code: "23502", Message: `null value in column "tenant" violates not-null constraint`, ColumnName: "tenant"}
	fdb.mu.Unlock()
	_, err = srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")})
	if err == nil || sdk.IsPermanent(err) {
		t.Fatalf("a column added while running: err = %v, want retryable", err)
	}
	prepares := fdb.prepares
	fdb.mu.Lock()
	fdb.execErr = nil
	fdb.mu.Unlock()
	if _, err := srv.Handle(t.Context(), &sdk.Message{Topic: "t", Offset: 1, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if fdb.prepares != prepares+1 {
		t.Errorf("the table was not checked again after the NOT NULL violation")
	}
}

// PG_CREATE_TABLE=true creates only a table that does not exist: CREATE
// TABLE IF NOT EXISTS would need the schema's CREATE privilege even then.
func TestCreateTableOnlyWhenMissing(t *testing.T) {
	fdb := &fakeDB{params: defaultParams, exists: true}
	h, _ := newTestHandler(t, map[string]string{EnvCreateTable: "true"}, fdb)
	if err := h.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(fdb.creates) != 0 {
		t.Errorf("an existing table was created again: %v", fdb.creates)
	}
}
