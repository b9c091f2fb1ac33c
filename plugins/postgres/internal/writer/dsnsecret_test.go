package writer

import (
	"strings"
	"testing"
)

// A keyword/value PG_DSN that does not parse must not put its password in
// the error, which the bridge logs at error level: pgx masks password=...
// but accepts, as libpq does, spaces around the '=', which its mask misses.
func TestConfigDSNErrorHidesAKeywordValuePassword(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want string // what the error still says
	}{
		{"host=db password = s3cret-pw sslmode=bogus", "sslmode is invalid"},
		{"host=db password= s3cret-pw sslmode=bogus", "sslmode is invalid"},
		{"host=db password\t=\t's3cret pw' port=abc", "invalid port"},
		{"host=db sslpassword = s3cret-pw password =s3cret-pw sslmode=bogus", "sslmode is invalid"},
		{"host=db password = 's3cret\\' pw' sslmode=bogus", "sslmode is invalid"},
		{"host=db password = 's3cret-pw", "has a password"},
	} {
		_, err := ConfigFromEnv(env(map[string]string{EnvDSN: tc.dsn, EnvTable: "events"}))
		if err == nil {
			t.Errorf("%q: no error", tc.dsn)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") {
			t.Errorf("%q: the password is in %q", tc.dsn, msg)
		}
		if !strings.Contains(msg, "PG_DSN: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: %q does not say %q", tc.dsn, msg, tc.want)
		}
	}
}
