package serverproc

import (
	"os/exec"
	"syscall"
)

// terminate is the signal that asks a server to shut down.
var terminate = syscall.SIGTERM

// detach starts cmd in a process group of its own, so that killing the
// group stops the server and anything it started, and has the kernel kill
// it when the thread that started it ends, so that a test binary or a
// program that dies (a test's timeout, a signal) leaves no server behind.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// kill kills cmd's process group.
func kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
