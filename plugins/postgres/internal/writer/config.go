package writer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookbridge/hookbridge/plugins/internal/envconfig"
)

// Mode is how records become rows.
type Mode string

const (
	// ModeInsert writes one row per record, unique on (topic, partition,
	// offset).
	ModeInsert Mode = "insert"
	// ModeUpsert keeps one row per record key, replaced by newer records.
	ModeUpsert Mode = "upsert"
)

// The plugin's environment variables.
const (
	EnvDSN         = "PG_DSN"
	EnvTable       = "PG_TABLE"
	EnvMode        = "PG_MODE"
	EnvColumns     = "PG_COLUMNS"
	EnvValueType   = "PG_VALUE_TYPE"
	EnvKeyType     = "PG_KEY_TYPE"
	EnvCreateTable = "PG_CREATE_TABLE"
)

// The record's fields a row can hold, in column order.
const (
	FieldTopic     = "topic"
	FieldPartition = "partition"
	FieldOffset    = "offset"
	FieldKey       = "key"
	FieldValue     = "value"
	FieldHeaders   = "headers"
	FieldTimestamp = "timestamp"
)

// Fields lists the record's fields in column order.
var Fields = []string{FieldTopic, FieldPartition, FieldOffset, FieldKey, FieldValue, FieldHeaders, FieldTimestamp}

// Column types of the key and value (PG_KEY_TYPE, PG_VALUE_TYPE).
const (
	TypeBytea = "bytea"
	TypeJSONB = "jsonb"
	TypeText  = "text"
)

// Column is a record field and the column it is written to.
type Column struct {
	Field string
	Name  string
}

// Config is the plugin's configuration. Each field names its environment
// variable; the zero value of an optional field means its default.
type Config struct {
	// DSN of the database (PG_DSN, required): a URL,
	// postgres://user:password@host:5432/db?sslmode=require, or key=value
	// pairs; pgx's options apply (pool_max_conns, connect_timeout,
	// default_query_exec_mode=exec behind PgBouncer...).
	DSN string
	// Table (PG_TABLE, required): name or schema.name. The names are
	// quoted, so they are case-sensitive: Events is not events.
	Table pgx.Identifier
	// Mode (PG_MODE): insert (default) or upsert.
	Mode Mode
	// Columns are the fields written and their columns, in Fields order:
	// every field under its own name, changed by PG_COLUMNS, a comma-
	// separated list of field=column (value=payload) and field=- (leave the
	// field out). topic, partition and offset are required, and key in
	// upsert mode.
	Columns []Column
	// ValueType (PG_VALUE_TYPE): bytea (default; bytes as they are), jsonb
	// (the value must be JSON; a value that is not is a permanent error)
	// or text (the value must be UTF-8).
	ValueType string
	// KeyType (PG_KEY_TYPE): text (default; the key must be UTF-8) or bytea.
	KeyType string
	// CreateTable (PG_CREATE_TABLE=true) creates the table when it does not
	// exist (CreateTableSQL). Default false: the table must exist.
	CreateTable bool

	// pool is DSN parsed.
	pool *pgxpool.Config
}

// ConfigFromEnv reads the configuration from getenv (os.Getenv) and
// validates it, reporting every problem at once. It does not connect.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var problems envconfig.Problems
	bad := problems.Add
	c := Config{
		DSN:       strings.TrimSpace(getenv(EnvDSN)),
		Mode:      Mode(strings.ToLower(strings.TrimSpace(getenv(EnvMode)))),
		ValueType: strings.ToLower(strings.TrimSpace(getenv(EnvValueType))),
		KeyType:   strings.ToLower(strings.TrimSpace(getenv(EnvKeyType))),
	}
	if c.Mode == "" {
		c.Mode = ModeInsert
	}
	if c.ValueType == "" {
		c.ValueType = TypeBytea
	}
	if c.KeyType == "" {
		c.KeyType = TypeText
	}

	if c.DSN == "" {
		bad(EnvDSN, "required (postgres://user:password@host:5432/db)")
	} else if pc, err := pgxpool.ParseConfig(c.DSN); err != nil {
		// pgx's parse errors mask the password, but not every way of
		// writing one: see redactDSNError.
		bad(EnvDSN, "%v", redactDSNError(err, c.DSN))
	} else {
		c.pool = pc
	}
	if t, err := parseTable(getenv(EnvTable)); err != nil {
		bad(EnvTable, "%v", err)
	} else {
		c.Table = t
	}
	switch c.Mode {
	case ModeInsert, ModeUpsert:
	default:
		bad(EnvMode, "%q is not one of insert, upsert", c.Mode)
	}
	switch c.ValueType {
	case TypeBytea, TypeJSONB, TypeText:
	default:
		bad(EnvValueType, "%q is not one of bytea, jsonb, text", c.ValueType)
	}
	switch c.KeyType {
	case TypeText, TypeBytea:
	default:
		bad(EnvKeyType, "%q is not one of text, bytea", c.KeyType)
	}
	cols, colProblems := parseColumns(getenv(EnvColumns), c.Mode)
	for _, p := range colProblems {
		bad(EnvColumns, "%s", p)
	}
	c.Columns = cols
	if s := strings.TrimSpace(getenv(EnvCreateTable)); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			bad(EnvCreateTable, "%q is not true or false", s)
		}
		c.CreateTable = b
	}
	if err := problems.Err("hookbridge-postgres"); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Target returns the database's host, port and name, without credentials,
// for logs.
func (c Config) Target() string {
	if c.pool == nil {
		return ""
	}
	cc := c.pool.ConnConfig
	return fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// Column returns the column of field, and whether it is written.
func (c Config) Column(field string) (string, bool) {
	for _, col := range c.Columns {
		if col.Field == field {
			return col.Name, true
		}
	}
	return "", false
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated,
// which would silently name another object.
const maxIdentifier = 63

// checkIdentifier reports what is wrong with a table or column name.
func checkIdentifier(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > maxIdentifier:
		return fmt.Errorf("%q is longer than %d bytes", s, maxIdentifier)
	case strings.ContainsAny(s, "\x00\"."):
		return fmt.Errorf("%q contains a NUL, a double quote or a dot", s)
	}
	return nil
}

// parseTable parses name or schema.name.
func parseTable(s string) (pgx.Identifier, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("required: the table's name, or schema.name")
	}
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%q: want name or schema.name", s)
	}
	for _, p := range parts {
		if err := checkIdentifier(p); err != nil {
			return nil, err
		}
	}
	return pgx.Identifier(parts), nil
}

// parseColumns applies PG_COLUMNS to the default columns (every field under
// its own name) and returns the columns and every problem.
func parseColumns(s string, mode Mode) ([]Column, []string) {
	names := map[string]string{}
	for _, f := range Fields {
		names[f] = f
	}
	var problems []string
	seen := map[string]bool{}
	if strings.TrimSpace(s) != "" {
		for item := range strings.SplitSeq(s, ",") {
			field, col, ok := strings.Cut(strings.TrimSpace(item), "=")
			field, col = strings.ToLower(strings.TrimSpace(field)), strings.TrimSpace(col)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%q: want field=column or field=-", item))
				continue
			case !slices.Contains(Fields, field):
				problems = append(problems, fmt.Sprintf("unknown field %q (fields: %s)", field, strings.Join(Fields, ", ")))
				continue
			case seen[field]:
				problems = append(problems, fmt.Sprintf("field %q mapped twice", field))
				continue
			}
			seen[field] = true
			if col == "-" {
				delete(names, field)
				continue
			}
			if err := checkIdentifier(col); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", field, err))
				continue
			}
			names[field] = col
		}
	}
	required := []string{FieldTopic, FieldPartition, FieldOffset}
	if mode == ModeUpsert {
		required = append(required, FieldKey)
	}
	for _, f := range required {
		if _, ok := names[f]; !ok {
			problems = append(problems, fmt.Sprintf("%s=-: the %s column is required (in %s mode the row's identity is %s)", f, f, mode, identity(mode)))
		}
	}
	var cols []Column
	used := map[string]string{}
	for _, f := range Fields {
		name, ok := names[f]
		if !ok {
			continue
		}
		if other, dup := used[name]; dup {
			problems = append(problems, fmt.Sprintf("fields %s and %s both write column %q", other, f, name))
			continue
		}
		used[name] = f
		cols = append(cols, Column{Field: f, Name: name})
	}
	return cols, problems
}

// identity describes the unique key of a mode.
func identity(mode Mode) string {
	if mode == ModeUpsert {
		return "the key, and (topic, partition, offset) decides which record is newer"
	}
	return "(topic, partition, offset)"
}

// redactDSNError keeps the passwords of a keyword/value DSN out of an error
// message. pgx quotes the DSN with password=... masked, but it accepts, as
// libpq does, spaces around the '=' (password = x), which its mask misses.
// So the DSN is parsed again with its password and sslpassword values
// replaced, and that error is the one reported; when that parses, a
// password is what is wrong (an unterminated quote), and the error says so
// without quoting anything. pgx masks the passwords of a URL itself.
func redactDSNError(err error, dsn string) error {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return err
	}
	spans := keywordPasswords(dsn)
	if len(spans) == 0 {
		return err
	}
	const mask = "xxxxx"
	redacted := dsn
	for i := len(spans) - 1; i >= 0; i-- {
		redacted = redacted[:spans[i][0]] + mask + redacted[spans[i][1]:]
	}
	if _, rerr := pgxpool.ParseConfig(redacted); rerr != nil {
		return rerr
	}
	return errors.New(`not a valid DSN (not shown: it has a password); quote a password with spaces as password='...', with \' for a quote and \\ for a backslash`)
}

// keywordPasswords returns where the values of password and sslpassword are
// in a keyword/value DSN, read as pgx reads it: keyword, optional spaces,
// '=', optional spaces, then a value in single quotes (\ escapes the next
// byte; an unterminated one runs to the end) or up to the next space.
func keywordPasswords(dsn string) [][2]int {
	const space = " \t\n\r\v\f"
	skip := func(i int) int {
		for i < len(dsn) && strings.IndexByte(space, dsn[i]) >= 0 {
			i++
		}
		return i
	}
	var spans [][2]int
	for i := skip(0); i < len(dsn); i = skip(i) {
		eq := strings.IndexByte(dsn[i:], '=')
		if eq < 0 {
			break
		}
		key := strings.Trim(dsn[i:i+eq], space)
		start := skip(i + eq + 1)
		i = start
		if i < len(dsn) && dsn[i] == '\'' {
			for i++; i < len(dsn) && dsn[i] != '\''; i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
			i++ // the closing quote
		} else {
			for ; i < len(dsn) && strings.IndexByte(space, dsn[i]) < 0; i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
		}
		i = min(i, len(dsn))
		if key == "password" || key == "sslpassword" {
			spans = append(spans, [2]int{start, i})
		}
	}
	return spans
}
