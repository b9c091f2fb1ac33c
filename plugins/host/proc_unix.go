//go:build unix

package host

import (
	"os/exec"
	"syscall"
)

// detach puts the plugin in a process group of its own, so that a signal
// sent to the bridge's group (Ctrl-C in a terminal) does not stop it while
// the bridge drains: the bridge stops its plugins itself, last.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
