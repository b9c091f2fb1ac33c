package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunWritesACPUProfile runs a bridge on the embedded broker with
// --cpu-profile until it is ready, stops it as SIGTERM does, and reads the
// file back: a gzipped pprof profile whose sample type is CPU time.
func TestRunWritesACPUProfile(t *testing.T) {
	admin := freeAddr(t)
	dir := configDir(t, map[string]string{"hookbridge.yaml": `
kafka: {embedded: true}
admin: {listen: "` + admin + `"}
log: {level: warn}
routes:
  - name: r
    topics: [t]
    target: {webhook: {url: "http://127.0.0.1:9/h"}}
`})
	t.Chdir(dir)
	profile := filepath.Join(dir, "cpu.pprof")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "-c", "hookbridge.yaml", "--cpu-profile", profile}, &stdout, &stderr)
	}()

	deadline := time.Now().Add(time.Minute)
	for !ready(admin) {
		select {
		case code := <-done:
			t.Fatalf("run exited with %d before it was ready; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after a minute; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitOK, stderr.String())
	}

	f, err := os.Open(profile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("the profile is not gzipped, as pprof writes it: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// The profile's string table names its sample types: "samples"/"count"
	// and "cpu"/"nanoseconds" for a CPU profile.
	for _, s := range []string{"samples", "cpu", "nanoseconds"} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("profile (%d bytes) has no %q in its string table", len(raw), s)
		}
	}
}

// TestRunCPUProfileThatCannotBeWritten is a usage error, reported before
// the bridge starts.
func TestRunCPUProfileThatCannotBeWritten(t *testing.T) {
	dir := configDir(t, map[string]string{"hookbridge.yaml": validConfig})
	bad := filepath.Join(dir, "no-such-dir", "cpu.pprof")
	code, stdout, stderr := runCLI(t, dir, "run", "--cpu-profile", bad)
	if code != exitUsage || stdout != "" {
		t.Fatalf("exit code %d, stdout %q; want %d and nothing; stderr:\n%s", code, stdout, exitUsage, stderr)
	}
	if !strings.Contains(stderr, "cpu profile") || !strings.Contains(stderr, bad) {
		t.Errorf("stderr %q does not say which profile file failed", stderr)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
