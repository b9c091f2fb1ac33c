//go:build linux

package host

import "golang.org/x/sys/unix"

// processExited reports whether the plugin process pid, a child of the
// bridge, has exited, reaped or not. go-plugin reaps a process (and
// client.Exited turns true) only once its stdout and stderr are closed: a
// process the plugin started that still holds them (a wrapper script's
// background job, a helper that inherited them) keeps a plugin that died
// from counting as exited, and the pool from replacing it. waitid with
// WNOWAIT looks without reaping: go-plugin's own wait is left intact.
func processExited(pid int) bool {
	if pid <= 0 {
		return false
	}
	var info unix.Siginfo // zeroed by the kernel when no child is waitable
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	switch {
	case err == unix.ECHILD:
		return true // reaped already
	case err != nil:
		return false
	}
	return info.Signo == int32(unix.SIGCHLD)
}
