// Package plugins tests the first-party plugins (plugins/redis,
// plugins/postgres) as they run in production: the hookbridge binary
// starts the plugin binary and routes a Kafka topic to it (franz-go's
// kfake in-process, or the real cluster HOOKBRIDGE_TEST_KAFKA names). The
// plugins write to real servers, named by HOOKBRIDGE_TEST_REDIS (host:port)
// and HOOKBRIDGE_TEST_POSTGRES (a postgres:// URL); test/services/start.sh
// starts both. Without them the tests skip, except under HOOKBRIDGE_E2E=1.
// Assertions are on data (every record written exactly once, per-key
// order), never on time.
package plugins
