package receiver

import (
	"fmt"
	"os"
	"testing"

	"github.com/hookbridge/hookbridge/test/internal/testkit"
)

// bridgeBin is the hookbridge binary TestMain builds.
var bridgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookbridge-receiver")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bridgeBin, err = testkit.BuildBridge(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Secrets of the tests: the bridge signs with both (a rotation); receivers
// hold the new one only, so a request passes only through its second
// signature.
const (
	oldSecret = "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	newSecret = "whsec_" + "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
)
