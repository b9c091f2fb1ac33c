// Package writer is the handler of the hookbridge-postgres plugin: it writes
// each record as a row of one PostgreSQL table, in one of two modes.
//
// insert: one row per record. The record's coordinates (topic, partition,
// offset) are the table's unique key, and the INSERT says ON CONFLICT
// (topic, "partition", "offset") DO NOTHING: a redelivered record is a
// no-op.
//
// upsert: one row per record key. The key column is the unique key, and the
// INSERT says ON CONFLICT (key) DO UPDATE ... WHERE the stored row comes
// from another topic or partition, or from an older offset: a redelivered
// (or older) record is a no-op, a newer one replaces the row.
//
// Config is read from the environment (ConfigFromEnv) and validated as a
// whole; Handler.Prepare checks the table against it (and creates it with
// PG_CREATE_TABLE=true) before the first write.
package writer
