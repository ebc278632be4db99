//go:build linux && race && !msan && !asan

package sockio

import (
	"runtime"
	"syscall"
	"unsafe"
)

// The race detector learns from syscall.Read and syscall.Write that what a
// goroutine did before writing to a socket happens before what another
// does after reading from one (a test's handler and its client): the
// syscall package synchronizes on a variable of its own around each call.
// Raw calls skip that, so under the race detector each raw call is paired
// with an empty one through the syscall package.

const raceEnabled = true

// afterRead follows a raw read of n bytes into p on fd.
func afterRead(fd uintptr, p []byte, n int) {
	if n > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), n)
	}
	syscall.Read(int(fd), nil) // an empty read returns at once: the acquire
}

// beforeWrite precedes a raw write of p.
func beforeWrite(p []byte) {
	syscall.Write(-1, nil) // the release; no socket is touched
	if len(p) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	}
}
