// Package receiver tests the receiving side of the webhook contract against
// the bridge itself:
//
//   - contract_test.go: requests built by the bridge's webhook target
//     (bridge/webhook) are verified and decoded by the receiver toolkit
//     (sdk/webhook) field for field, single records and batches;
//   - go_receiver_test.go: the hookbridge binary, over Kafka (kfake in
//     process, or the real broker of the e2e tier), delivers to an
//     sdk/webhook Handler; every record verified and decoded with the right
//     coordinates and keys, single and batch mode;
//   - fastapi_test.go (e2e tier: HOOKBRIDGE_TEST_KAFKA and
//     HOOKBRIDGE_TEST_PYTHON): the FastAPI example of examples/receiver-fastapi,
//     verifying with the Python standardwebhooks package, receives thousands
//     of records, a kill -9 of the bridge and a batch run;
//   - fastapi_binary_test.go (HOOKBRIDGE_TEST_PYTHON only): the same app
//     verifies a body that is not UTF-8 over its raw bytes, and refuses a
//     wrong signature;
//   - receivers_doc_test.go (HOOKBRIDGE_TEST_PYTHON only): the Python
//     verification snippet of docs/receivers.md, run as written, accepts what
//     the bridge signs and refuses forged or malformed timestamps without
//     raising.
package receiver
