package redistest

import (
	"os/exec"
	"syscall"
)

// terminate is the signal that asks redis-server to shut down.
var terminate = syscall.SIGTERM

// setParentDeath has the kernel kill the server when the thread that
// started it ends, so that a test binary or a program that dies (a
// test's timeout, a signal) leaves no server behind.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
