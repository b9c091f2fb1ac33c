// Package writer is the handler of the hookbridge-redis plugin: it writes
// each record to Redis as a stream entry (XADD), a list element (LPUSH) or a
// string value (SET), under a key rendered from the record (Template).
//
// Delivery is at least once, writes are exactly once: in stream and list
// mode every write runs in one Lua script together with a marker key,
// <REDIS_DEDUPE_PREFIX><key>:<topic>-<partition>-<offset>, so that a
// redelivered record (a retry, a restart of the bridge) finds the marker and
// writes nothing. SET is idempotent by itself.
//
// Config is read from the environment (ConfigFromEnv), validated as a whole
// before the plugin serves, and never changes afterwards.
package writer
