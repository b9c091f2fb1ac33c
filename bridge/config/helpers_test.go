package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf returns a lookup function over vars.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// mustParse parses src and fails the test on any problem.
func mustParse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	c, err := Parse("test.yaml", []byte(src), envOf(vars))
	if err != nil {
		t.Fatalf("Parse: unexpected problems:\n%v", err)
	}
	return c
}

// problemsOf parses src and returns its problems, failing the test when
// there are none or the error is not Errors.
func problemsOf(t *testing.T, src string, vars map[string]string) Errors {
	t.Helper()
	_, err := Parse("test.yaml", []byte(src), envOf(vars))
	return asErrors(t, err)
}

// asErrors returns err as Errors, failing the test if it is not.
func asErrors(t *testing.T, err error) Errors {
	t.Helper()
	if err == nil {
		t.Fatal("expected problems, got none")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not config.Errors", err, err)
	}
	return errs
}

// wantProblem fails the test unless errs holds a problem at path whose
// message contains msg, and returns it.
// checkParse parses src: with msg empty it must parse without a problem;
// otherwise one of its problems must be at path and contain msg, on line
// (unless line is 0). It returns the problems.
func checkParse(t *testing.T, src string, vars map[string]string, path, msg string, line int) Errors {
	t.Helper()
	if msg == "" {
		mustParse(t, src, vars)
		return nil
	}
	errs := problemsOf(t, src, vars)
	if p := wantProblem(t, errs, path, msg); line != 0 && p.Line != line {
		t.Errorf("line %d, want %d", p.Line, line)
	}
	return errs
}

func wantProblem(t *testing.T, errs Errors, path, msg string) Problem {
	t.Helper()
	for _, p := range errs {
		if p.Path == path && strings.Contains(p.Message, msg) {
			return p
		}
	}
	t.Fatalf("no problem at %q containing %q in:\n%v", path, msg, errs)
	return Problem{}
}

// writeFile writes content to dir/rel, creating directories, with mode.
func writeFile(t *testing.T, dir, rel, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeExecutable creates an executable shell script at dir/rel.
func writeExecutable(t *testing.T, dir, rel string) string {
	t.Helper()
	return writeFile(t, dir, rel, "#!/bin/sh\nexit 0\n", 0o755)
}

// unsetEnv unsets a variable for the test and restores it afterwards.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// secretOf returns a whsec_ secret of n bytes.
func secretOf(n int) string {
	return "whsec_" + b64(strings.Repeat("k", n))
}

// b64 is standard base64 with padding.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
