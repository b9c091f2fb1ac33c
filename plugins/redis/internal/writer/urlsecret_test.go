package writer

import (
	"strings"
	"testing"
)

// A password that is not percent-encoded makes the URL unparsable, and the
// parser's message quotes the URL (escaped: " and \ and control characters
// change) or a part of it (the text after the first colon as a "port"):
// none of the password may reach the error, which the bridge logs.
func TestConfigKeepsUnencodedPasswordsOutOfErrors(t *testing.T) {
	for _, url := range []string{
		`redis://user:s3cr"3t@host:6379/0`,
		`redis://user:s3cr\3t@host:6379/0`,
		"redis://user:s3cr\t3t@host:6379/0",
		"redis://user:s3cr/3t@host:6379/0",
		"redis://user:s3cr?3t@host:6379/0",
		"redis://user:s3cr#3t@host:6379/0",
		"redis://:s3cr/3t@host:6379/0",
	} {
		_, err := ConfigFromEnv(env(map[string]string{EnvURL: url, EnvKey: "k"}))
		if err == nil {
			t.Errorf("%q: no error", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Errorf("password in error: %v", err)
		}
	}
	// A URL whose only fault is elsewhere still says what it is.
	_, err := ConfigFromEnv(env(map[string]string{EnvURL: "redis://user:s3cr3t@host:notaport/0", EnvKey: "k"}))
	if err == nil || !strings.Contains(err.Error(), "notaport") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("bad port: err = %v, want it named, without the password", err)
	}
}
