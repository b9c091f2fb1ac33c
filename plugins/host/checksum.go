package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrChecksumMismatch is wrapped by the error of a plugin whose executable
// does not have the configured sha256.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifyChecksum checks the plugin's executable against the configured
// sum, naming both when they differ.
func verifyChecksum(name, path, want string) error {
	got, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("plugin %s: checksum of %s: %w", name, path, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("plugin %s: refusing to start %s: %w: its sha256 is %s, plugins.%s.sha256 expects %s",
			name, path, ErrChecksumMismatch, got, name, strings.ToLower(want))
	}
	return nil
}
