//go:build unix

package host

import (
	"os/exec"
	"syscall"
	"time"
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

// endGroup stops what is left of the process group of pid once pid itself
// has exited and was reaped: children the plugin started and left running
// (a wrapper script's background job, a daemon that kept the group). They
// get SIGTERM, and SIGKILL if any is still there after groupGrace. With
// nothing left, it returns at once.
//
// The group's id cannot belong to anyone else here: Linux does not reuse a
// pid while a process group of that id has a member, and with no member
// left the first signal finds nothing (a new process would have to get the
// same pid and make it a group's id in between).
//
// A child reparented to the bridge (when the bridge is the container's
// PID 1 and no init runs) is reaped here too, so it does not stay a zombie.
func endGroup(pid int) {
	if syscall.Kill(-pid, syscall.SIGTERM) != nil {
		return // no process left in the group
	}
	deadline := time.Now().Add(groupGrace)
	for {
		reapGroup(pid)
		if syscall.Kill(-pid, 0) != nil {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			time.Sleep(10 * time.Millisecond)
			reapGroup(pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reapGroup reaps the bridge's own exited children in the process group
// pid, if it has any (it has only when they were reparented to it).
func reapGroup(pid int) {
	for {
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(-pid, &ws, syscall.WNOHANG, nil); got <= 0 || err != nil {
			return
		}
	}
}
