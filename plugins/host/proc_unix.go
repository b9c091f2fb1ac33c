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

// killGroup kills the process pid and the rest of its process group, which
// detach made pid's own: children the plugin started go with it, and none
// is left holding the plugin's stdout or stderr, which go-plugin waits to
// see closed before it takes the process as exited.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
