package writer

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// quote quotes one identifier.
func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// columnList returns the quoted columns, comma-separated, with prefix
// before each.
func columnList(cols []Column, prefix string) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = prefix + quote(c.Name)
	}
	return strings.Join(names, ", ")
}

// col returns the quoted column of field; the caller knows it is written.
func (c Config) col(field string) string {
	name, _ := c.Column(field)
	return quote(name)
}

// WriteSQL returns the statement that writes one record; its parameters are
// the columns' values in Config.Columns order.
//
// insert:
//
//	INSERT INTO t (topic, "partition", "offset", ...) VALUES ($1, ...)
//	ON CONFLICT (topic, "partition", "offset") DO NOTHING
//
// upsert:
//
//	INSERT INTO t AS cur (key, topic, ...) VALUES ($1, ...)
//	ON CONFLICT (key) DO UPDATE SET topic = EXCLUDED.topic, ...
//	WHERE cur.topic IS DISTINCT FROM EXCLUDED.topic
//	   OR cur."partition" IS DISTINCT FROM EXCLUDED."partition"
//	   OR cur."offset" < EXCLUDED."offset"
//
// so that a row is replaced by a record from another topic or partition, or
// from a later offset of the same partition, and never by a redelivery of
// the record that wrote it or by an older one.
func (c Config) WriteSQL() string {
	params := make([]string, len(c.Columns))
	for i := range params {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	return c.writeSQL(params)
}

// ExplainSQL returns EXPLAIN of WriteSQL with NULLs for the parameters.
// The server plans it without running it, which checks what preparing
// WriteSQL does not: that a unique constraint (or index) on exactly the
// ON CONFLICT columns exists.
func (c Config) ExplainSQL() string {
	params := make([]string, len(c.Columns))
	for i := range params {
		params[i] = "NULL"
	}
	return "EXPLAIN " + c.writeSQL(params)
}

// writeSQL is WriteSQL with params as the values.
func (c Config) writeSQL(params []string) string {
	table := c.Table.Sanitize()
	topic, partition, offset := c.col(FieldTopic), c.col(FieldPartition), c.col(FieldOffset)
	if c.Mode == ModeInsert {
		return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s, %s, %s) DO NOTHING",
			table, columnList(c.Columns, ""), strings.Join(params, ", "), topic, partition, offset)
	}
	key := c.col(FieldKey)
	var set []string
	for _, col := range c.Columns {
		if col.Field == FieldKey {
			continue
		}
		q := quote(col.Name)
		set = append(set, q+" = EXCLUDED."+q)
	}
	return fmt.Sprintf("INSERT INTO %s AS cur (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s"+
		" WHERE cur.%s IS DISTINCT FROM EXCLUDED.%s OR cur.%s IS DISTINCT FROM EXCLUDED.%s OR cur.%s < EXCLUDED.%s",
		table, columnList(c.Columns, ""), strings.Join(params, ", "), key, strings.Join(set, ", "),
		topic, topic, partition, partition, offset, offset)
}

// columnType is the SQL type of a field's column in CreateTableSQL.
func (c Config) columnType(field string) string {
	switch field {
	case FieldTopic:
		return "text NOT NULL"
	case FieldPartition:
		return "integer NOT NULL"
	case FieldOffset:
		return "bigint NOT NULL"
	case FieldKey:
		if c.Mode == ModeUpsert {
			return c.KeyType + " NOT NULL"
		}
		return c.KeyType
	case FieldValue:
		return c.ValueType
	case FieldHeaders:
		return "jsonb"
	case FieldTimestamp:
		return "timestamptz"
	}
	return ""
}

// CreateTableSQL returns the CREATE TABLE IF NOT EXISTS statement of
// PG_CREATE_TABLE=true: the configured columns with these types, and the
// mode's unique key as the primary key.
//
//	topic        text NOT NULL
//	"partition"  integer NOT NULL
//	"offset"     bigint NOT NULL
//	key          text (PG_KEY_TYPE; NOT NULL in upsert mode)
//	value        bytea (PG_VALUE_TYPE)
//	headers      jsonb
//	"timestamp"  timestamptz
//	PRIMARY KEY (topic, "partition", "offset")   -- insert
//	PRIMARY KEY (key)                            -- upsert
func (c Config) CreateTableSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", c.Table.Sanitize())
	for _, col := range c.Columns {
		fmt.Fprintf(&b, "%s %s, ", quote(col.Name), c.columnType(col.Field))
	}
	if c.Mode == ModeUpsert {
		fmt.Fprintf(&b, "PRIMARY KEY (%s))", c.col(FieldKey))
	} else {
		fmt.Fprintf(&b, "PRIMARY KEY (%s, %s, %s))", c.col(FieldTopic), c.col(FieldPartition), c.col(FieldOffset))
	}
	return b.String()
}
