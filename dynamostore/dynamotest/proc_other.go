//go:build !linux

package dynamotest

import "os/exec"

// detach does nothing here: only Linux kills a child with its parent.
func detach(*exec.Cmd) {}

// kill kills cmd's process.
func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
