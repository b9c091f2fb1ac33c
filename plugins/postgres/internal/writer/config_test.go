package writer

import (
	"fmt"
	"strings"
	"testing"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// withBase adds a DSN and a table to vars.
func withBase(vars map[string]string) map[string]string {
	m := map[string]string{EnvDSN: "postgres://u:pw@db.internal:5433/app?sslmode=disable", EnvTable: "events"}
	for k, v := range vars {
		m[k] = v
	}
	return m
}

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(withBase(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeInsert || c.ValueType != TypeBytea || c.KeyType != TypeText || c.CreateTable {
		t.Errorf("defaults: %+v", c)
	}
	if got := fmt.Sprint(c.Columns); got != "[{topic topic} {partition partition} {offset offset} {key key} {value value} {headers headers} {timestamp timestamp}]" {
		t.Errorf("columns %s", got)
	}
	if c.Target() != "db.internal:5433/app" {
		t.Errorf("target %q", c.Target())
	}
	if fmt.Sprint(c.Table) != "[events]" {
		t.Errorf("table %v", c.Table)
	}
}

func TestConfigColumns(t *testing.T) {
	c, err := ConfigFromEnv(env(withBase(map[string]string{
		EnvTable:   "kafka.Orders",
		EnvMode:    "UPSERT",
		EnvColumns: " value = payload , key=order_id,headers=-, Timestamp=produced_at",
	})))
	if err != nil {
		t.Fatal(err)
	}
	want := "[{topic topic} {partition partition} {offset offset} {key order_id} {value payload} {timestamp produced_at}]"
	if got := fmt.Sprint(c.Columns); got != want {
		t.Errorf("columns %s\n want %s", got, want)
	}
	if c.Table.Sanitize() != `"kafka"."Orders"` || c.Mode != ModeUpsert {
		t.Errorf("table %s mode %s", c.Table.Sanitize(), c.Mode)
	}
	if col, ok := c.Column(FieldHeaders); ok {
		t.Errorf("headers written to %q", col)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // every one must appear, one per line
	}{
		{"nothing set", map[string]string{}, []string{"PG_DSN: required", "PG_TABLE: required"}},
		{"bad values, all reported", withBase(map[string]string{
			EnvMode: "merge", EnvValueType: "json", EnvKeyType: "int", EnvCreateTable: "yes please",
		}), []string{`PG_MODE: "merge" is not one of insert, upsert`, `PG_VALUE_TYPE: "json" is not one of bytea, jsonb, text`,
			`PG_KEY_TYPE: "int" is not one of text, bytea`, `PG_CREATE_TABLE: "yes please" is not true or false`}},
		{"bad dsn", withBase(map[string]string{EnvDSN: "postgres://u:pw@host:notaport/db"}), []string{"PG_DSN: "}},
		{"table names", withBase(map[string]string{EnvTable: "a.b.c"}), []string{`PG_TABLE: "a.b.c": want name or schema.name`}},
		{"table empty part", withBase(map[string]string{EnvTable: "kafka."}), []string{"PG_TABLE: empty name"}},
		{"table quote", withBase(map[string]string{EnvTable: `ev"il`}), []string{`contains a NUL, a double quote or a dot`}},
		{"table too long", withBase(map[string]string{EnvTable: strings.Repeat("t", 64)}), []string{"longer than 63 bytes"}},
		{"columns", withBase(map[string]string{EnvColumns: "value=payload,nonsense,size=s,value=v,key=va.lue"}), []string{
			`PG_COLUMNS: "nonsense": want field=column or field=-`, `PG_COLUMNS: unknown field "size"`,
			`PG_COLUMNS: field "value" mapped twice`, `PG_COLUMNS: key: "va.lue" contains`}},
		{"required in insert", withBase(map[string]string{EnvColumns: "topic=-,offset=-"}), []string{
			"PG_COLUMNS: topic=-: the topic column is required", "PG_COLUMNS: offset=-: the offset column is required"}},
		{"key required in upsert", withBase(map[string]string{EnvMode: "upsert", EnvColumns: "key=-"}), []string{
			"PG_COLUMNS: key=-: the key column is required (in upsert mode"}},
		{"two fields, one column", withBase(map[string]string{EnvColumns: "value=data,headers=data"}), []string{
			`PG_COLUMNS: fields value and headers both write column "data"`}},
	} {
		_, err := ConfigFromEnv(env(tc.env))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "hookbridge-postgres: invalid configuration:\n") {
			t.Errorf("%s: %q lacks the heading", tc.name, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not mention %q", tc.name, msg, w)
			}
		}
		if strings.Count(msg, "\n") != len(tc.want) {
			t.Errorf("%s: want %d problems, got:\n%s", tc.name, len(tc.want), msg)
		}
		if strings.Contains(msg, ":pw@") {
			t.Errorf("%s: password in %q", tc.name, msg)
		}
	}
}

func TestConfigCreateTable(t *testing.T) {
	for _, s := range []string{"true", "1", "TRUE"} {
		c, err := ConfigFromEnv(env(withBase(map[string]string{EnvCreateTable: s})))
		if err != nil || !c.CreateTable {
			t.Errorf("%q: %v %v", s, c.CreateTable, err)
		}
	}
}

func TestWriteSQL(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, `INSERT INTO "events" ("topic", "partition", "offset", "key", "value", "headers", "timestamp") VALUES ($1, $2, $3, $4, $5, $6, $7)` +
			` ON CONFLICT ("topic", "partition", "offset") DO NOTHING`},
		{map[string]string{EnvTable: "kafka.Events", EnvColumns: "value=payload,headers=-,timestamp=-,key=-"},
			`INSERT INTO "kafka"."Events" ("topic", "partition", "offset", "payload") VALUES ($1, $2, $3, $4)` +
				` ON CONFLICT ("topic", "partition", "offset") DO NOTHING`},
		{map[string]string{EnvMode: "upsert", EnvColumns: "key=id,headers=-,timestamp=-"},
			`INSERT INTO "events" AS cur ("topic", "partition", "offset", "id", "value") VALUES ($1, $2, $3, $4, $5)` +
				` ON CONFLICT ("id") DO UPDATE SET "topic" = EXCLUDED."topic", "partition" = EXCLUDED."partition", "offset" = EXCLUDED."offset", "value" = EXCLUDED."value"` +
				` WHERE cur."topic" IS DISTINCT FROM EXCLUDED."topic" OR cur."partition" IS DISTINCT FROM EXCLUDED."partition" OR cur."offset" < EXCLUDED."offset"`},
	} {
		c, err := ConfigFromEnv(env(withBase(tc.env)))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WriteSQL(); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.env, got, tc.want)
		}
	}
}

func TestExplainSQL(t *testing.T) {
	c, err := ConfigFromEnv(env(withBase(map[string]string{EnvColumns: "key=-,headers=-,timestamp=-"})))
	if err != nil {
		t.Fatal(err)
	}
	want := `EXPLAIN INSERT INTO "events" ("topic", "partition", "offset", "value") VALUES (NULL, NULL, NULL, NULL) ON CONFLICT ("topic", "partition", "offset") DO NOTHING`
	if got := c.ExplainSQL(); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestCreateTableSQL(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, `CREATE TABLE IF NOT EXISTS "events" ("topic" text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, "key" text, "value" bytea, "headers" jsonb, "timestamp" timestamptz, PRIMARY KEY ("topic", "partition", "offset"))`},
		{map[string]string{EnvMode: "upsert", EnvValueType: "jsonb", EnvKeyType: "bytea", EnvColumns: "key=k,value=doc,timestamp=-"},
			`CREATE TABLE IF NOT EXISTS "events" ("topic" text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, "k" bytea NOT NULL, "doc" jsonb, "headers" jsonb, PRIMARY KEY ("k"))`},
	} {
		c, err := ConfigFromEnv(env(withBase(tc.env)))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.CreateTableSQL(); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.env, got, tc.want)
		}
	}
}
