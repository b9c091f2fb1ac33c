package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hookbridge/hookbridge/bridge/config"
)

// ErrChecksumMismatch is wrapped by the error of a plugin whose executable
// does not have the configured sha256.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// verifyChecksum checks the plugin's executable against the configured
// sum, naming both when they differ.
func verifyChecksum(name, path, want string) error {
	got, err := config.FileSHA256(path)
	if err != nil {
		return fmt.Errorf("plugin %s: checksum of %s: %w", name, path, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("plugin %s: refusing to start %s: %w: its sha256 is %s, plugins.%s.sha256 expects %s",
			name, path, ErrChecksumMismatch, got, name, strings.ToLower(want))
	}
	return nil
}
