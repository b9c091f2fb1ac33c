package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `make build` writes binaries an operator copies to a host or an image:
// every go build it runs is static (CGO_ENABLED=0, so no libc is needed
// where it runs) and -trimpath (no path of the build machine inside), as
// the image's build is.
func TestMakeBuildIsStaticAndTrimpath(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	cmd := exec.Command("make", "-n", "build", "BIN="+filepath.Join(t.TempDir(), "hookbridge"))
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	n := 0
	for line := range strings.SplitSeq(string(out), "\n") {
		if !strings.Contains(line, " build ") {
			continue
		}
		n++
		if !strings.HasPrefix(line, "CGO_ENABLED=0 ") {
			t.Errorf("make build runs %q: not with CGO_ENABLED=0, the binary needs the build machine's libc", line)
		}
		if !strings.Contains(line, " -trimpath ") {
			t.Errorf("make build runs %q: without -trimpath, the binary holds the build machine's paths", line)
		}
	}
	if n != 3 {
		t.Errorf("make build runs %d go builds, want 3 (the bridge and two plugins):\n%s", n, out)
	}
}
