package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// ResolveExecutable finds a plugin's executable, name being command[0] and
// dir the directory of the configuration file ("" for none). An absolute
// name is used as it is. A relative name with a path separator
// ("./bin/enrich") is looked up in dir, then in the current directory. A
// bare name ("enrich") is looked up in dir (directories aside), then in PATH
// (never in the current directory, as with exec.LookPath). The file must be
// a regular executable file. A file found in dir is returned as an absolute
// path, so that exec.Command never searches PATH for it.
func ResolveExecutable(dir, name string) (string, error) {
	if name == "" {
		return "", errors.New("command is empty")
	}
	if filepath.IsAbs(name) {
		return executable(name)
	}
	bare := !strings.ContainsRune(name, filepath.Separator) && !strings.ContainsRune(name, '/')
	if dir != "" {
		if candidate, err := filepath.Abs(filepath.Join(dir, name)); err == nil && exists(candidate, bare) {
			return executable(candidate)
		}
	}
	if !bare {
		if exists(name, false) {
			return executable(name)
		}
		return "", fmt.Errorf("%q not found in %sthe current directory", name, dirOr(dir))
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%q not found in %sPATH", name, dirOr(dir))
	}
	return path, nil
}

// executable returns path if it is a regular file the process may run.
func executable(path string) (string, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%q does not exist", path)
	case err != nil:
		return "", fmt.Errorf("cannot use %q: %v", path, errors.Unwrap(err))
	case info.IsDir():
		return "", fmt.Errorf("%q is a directory", path)
	case !info.Mode().IsRegular():
		return "", fmt.Errorf("%q is not a regular file", path)
	case runtime.GOOS != "windows" && info.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%q is not executable", path)
	}
	return path, nil
}

// exists reports whether a file, or a directory unless fileOnly, is at path.
func exists(path string, fileOnly bool) bool {
	info, err := os.Stat(path)
	return err == nil && !(fileOnly && info.IsDir())
}

// configDir is the directory of the configuration file; "" when there is no file.
func configDir(file string) string {
	if file == "" {
		return ""
	}
	return filepath.Dir(file)
}

// dirOr names dir as the first place looked in, or nothing when there is none.
func dirOr(dir string) string {
	if dir == "" {
		return ""
	}
	return dir + " or "
}

// sortedKeys returns the keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// FileSHA256 returns the hex SHA-256 of the file at path, as a plugin's
// sha256 gives it.
func FileSHA256(path string) (string, error) {
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
