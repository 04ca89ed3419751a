//go:build !linux

package redistest

import (
	"os"
	"os/exec"
)

// terminate is the signal that asks redis-server to shut down.
var terminate = os.Interrupt

// setParentDeath does nothing here: only Linux kills a child with its
// parent.
func setParentDeath(*exec.Cmd) {}
