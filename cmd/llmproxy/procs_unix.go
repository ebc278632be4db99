//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, in user and system
// mode, all its threads together.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
