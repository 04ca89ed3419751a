package dynamotest

import (
	"os/exec"
	"syscall"
)

// detach starts cmd in a process group of its own, so that killing the
// group stops node and anything it started, and has the kernel kill it
// when the thread that started it ends (a test binary that dies leaves no
// server behind).
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// kill kills cmd's process group.
func kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
