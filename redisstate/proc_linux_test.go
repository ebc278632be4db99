package redisstate

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills redis-server if the test binary dies first (a
// timeout's panic runs no cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
