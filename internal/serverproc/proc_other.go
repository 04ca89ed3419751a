//go:build !linux

package serverproc

import (
	"os"
	"os/exec"
)

// terminate is the signal that asks a server to shut down.
var terminate = os.Interrupt

// detach does nothing here: only Linux kills a child with its parent.
func detach(*exec.Cmd) {}

// kill kills cmd's process.
func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
