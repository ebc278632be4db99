//go:build unix

package socket

import (
	"errors"
	"syscall"
)

// peekSocket looks at a pooled connection's TCP socket without blocking and
// without consuming anything: MSG_PEEK|MSG_DONTWAIT. It answers whether the
// upstream closed the connection (FIN or error) and whether bytes wait
// (for TLS, a close_notify alert or a session ticket).
func peekSocket(sc syscall.Conn) (closed, pending bool) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, false
	}
	var n int
	var rerr error
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readability
	})
	switch {
	case err != nil:
		return true, false
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
		return false, false
	case rerr != nil, n == 0:
		return true, false
	}
	return false, true
}
