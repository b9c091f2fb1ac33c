//go:build !unix

package host

import (
	"os"
	"os/exec"
)

// detach does nothing where process groups do not exist.
func detach(*exec.Cmd) {}

// killGroup kills the process pid; without process groups its children
// are left alone.
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// endGroup does nothing where process groups do not exist: a plugin's
// children are left alone.
func endGroup(int) {}
