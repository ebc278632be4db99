//go:build unix

package main

import "syscall"

// maxStreams is how many streams one proxy can hold within the open-file
// limit: two descriptors each (client and upstream) and some spare.
func maxStreams() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1000
	}
	return int((lim.Max - 256) / 2)
}
