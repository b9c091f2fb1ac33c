// Package security is the end-to-end test of Hookbridge's security settings,
// run against the real hookbridge binary.
//
// TestSCRAMOverTLS and TestKafkaAuthFailsFast need a real Kafka broker with a
// SASL_SSL listener (test/kafka/start.sh with KAFKA_SASL_SSL=1; test/e2e.sh
// starts one): they run when HOOKBRIDGE_TEST_KAFKA_SASL (its host:port) and
// HOOKBRIDGE_TEST_KAFKA_CA (the PEM file of the CA that issued its
// certificate) are set, and skip otherwise. The SCRAM user defaults to
// hookbridge / hookbridge-secret (HOOKBRIDGE_TEST_KAFKA_SASL_USER and
// HOOKBRIDGE_TEST_KAFKA_SASL_PASSWORD override it).
//
// TestNoSecretInOutput needs no broker: it runs `validate` and `run` on
// configurations full of secrets and checks that none reaches the output.
package security
