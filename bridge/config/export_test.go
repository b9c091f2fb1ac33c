package config

// TestKeyPair lends testKeyPair to the tests of package config_test, which
// cannot import package config's own test files.
var TestKeyPair = testKeyPair
