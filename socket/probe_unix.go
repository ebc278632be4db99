//go:build unix

package socket

import (
	"errors"
	"syscall"
)

// prober looks at a pooled connection's TCP socket without blocking and
// without consuming anything: recv with MSG_PEEK|MSG_DONTWAIT. It answers
// whether the upstream closed the connection (FIN or error) and whether
// bytes wait (for TLS, a close_notify alert or a session ticket). It is
// made once per connection so that a probe allocates nothing.
type prober struct {
	rc   syscall.RawConn
	fn   func(fd uintptr)
	n    int
	err  error
	byte [1]byte
}

func newProber(sc syscall.Conn) *prober {
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.fn = p.recv
	return p
}

func (p *prober) recv(fd uintptr) {
	p.n, _, p.err = syscall.Recvfrom(int(fd), p.byte[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
}

func (p *prober) peek() (closed, pending bool) {
	// Control, not Read: a read deadline that passed while the connection
	// was pooled (one a relayed stream kept close, see body.Relay) would
	// fail a Read before it reached the socket.
	if err := p.rc.Control(p.fn); err != nil {
		return true, false
	}
	switch {
	case errors.Is(p.err, syscall.EAGAIN) || errors.Is(p.err, syscall.EWOULDBLOCK):
		return false, false
	case p.err != nil, p.n == 0:
		return true, false
	}
	return false, true
}
