//go:build linux && !msan && !asan

// Package sockio reads and writes a connected socket with raw system
// calls, without entering the Go scheduler's system-call state.
//
// The sockets Go's network poller owns are non-blocking: a read or write
// returns at once, with data or with EAGAIN. Go still wraps each one in
// the scheduler's system-call bookkeeping, made for calls that may block:
// while the call runs, its P may be handed to another thread, and the
// runtime's monitor thread (sysmon) keeps waking every 20 µs as long as it
// finds such calls to take Ps from. On a busy machine, where a write that
// wakes the reader is often preempted on its way out of the kernel, that
// monitor costs a proxy as much CPU as a tenth of each request. A raw call
// leaves the P where it is; the monitor backs off to its long sleep.
//
// Waiting still goes through the network poller (syscall.RawConn), so
// deadlines, Close and the poller's wake-ups work as for any net.Conn. The
// calls are read(2) and write(2), as net's own: the kernel counts them in
// /proc/<pid>/io as it does net's (the benchmark reads that), and a write
// to a closed peer is EPIPE as for any socket of a Go program.
//
// A raw call relies on what net's calls rely on: the socket is
// non-blocking, which the poller makes every socket it owns. Only what
// nothing else holds is wrapped (a connection just accepted or dialed),
// and the wrapper offers no File: a blocking duplicate, which would make a
// raw call wait in the kernel while holding its P, cannot be made from it.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Raw reports whether Wrap wraps connections in this build.
const Raw = true

// Conn is a net.Conn whose Read and Write bypass the scheduler's system
// call state. Like any net.Conn it may be used from several goroutines.
type Conn struct {
	net.Conn
	raw     syscall.RawConn
	network string // for errors, as the wrapped connection's

	// The current read's and write's state, kept here (not in a closure
	// made per call) so that a read or write allocates nothing; rmu and
	// wmu keep concurrent reads (writes) from sharing it, as the poller's
	// own lock keeps them from sharing the socket.
	rmu     sync.Mutex
	rp      []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(uintptr) bool
	wmu     sync.Mutex
	wp      []byte
	wn      int
	werr    error
	wtry    bool // TryWrite: EAGAIN ends the write instead of waiting
	writeFn func(uintptr) bool

	// ReadLoop's state, used only by the goroutine in it.
	looping bool
	loopFD  uintptr
	drained bool // a read in this call of ReadLoop's f left the socket empty
	skipped bool // the last ErrWouldBlock came without a read (Skipped)
}

// Wrap returns c as a *Conn when it is a stream socket the poller owns (a
// TCP or Unix stream connection), and c itself otherwise (a TLS
// connection, a pipe, a datagram socket, a connection a dialer wraps).
func Wrap(c net.Conn) net.Conn {
	var sc syscall.Conn
	network := "tcp"
	switch t := c.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		// Only a stream: a datagram's empty read is not the end.
		if !isStream(t.LocalAddr()) && !isStream(t.RemoteAddr()) {
			return c
		}
		sc, network = t, "unix"
	default:
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	s := &Conn{Conn: c, raw: raw, network: network}
	s.readFn = s.read
	s.writeFn = s.write
	return s
}

func isStream(a net.Addr) bool {
	u, ok := a.(*net.UnixAddr)
	return ok && u != nil && u.Net == "unix"
}

func (c *Conn) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rp[0])), uintptr(len(c.rp)))
		switch e {
		case 0:
			c.rn = int(n)
			afterRead(fd, c.rp, c.rn)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

// ready is the callback of an empty read or write: it takes the poller's
// lock and checks the connection, and calls nothing.
func ready(uintptr) bool { return true }

func (c *Conn) Read(p []byte) (int, error) {
	if c.looping {
		return c.loopRead(p)
	}
	if len(p) == 0 {
		if err := c.raw.Read(ready); err != nil {
			return 0, c.opError("read", err)
		}
		return 0, nil
	}
	c.rmu.Lock()
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.raw.Read(c.readFn)
	n, e := c.rn, c.rerr
	c.rp = nil
	c.rmu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case e != 0:
		return 0, c.opError("read", os.NewSyscallError("read", e))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

var errOverlong = errors.New("sockio: the kernel reported more bytes sent than were given")

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wp) {
		rest := c.wp[c.wn:]
		beforeWrite(rest)
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return c.wtry
		case e != 0:
			c.werr = os.NewSyscallError("write", e)
			return true
		case n == 0: // as net's: a stream that takes nothing is not written to
			c.werr = io.ErrUnexpectedEOF
			return true
		case int(n) > len(rest):
			c.werr = errOverlong
			return true
		}
		c.wn += int(n)
	}
	return true
}

func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		if err := c.raw.Write(ready); err != nil {
			return 0, c.opError("write", err)
		}
		return 0, nil
	}
	c.wmu.Lock()
	c.wp, c.wn, c.werr = p, 0, nil
	err := c.raw.Write(c.writeFn)
	n, werr := c.wn, c.werr
	c.wp, c.werr = nil, nil
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case werr != nil:
		return n, c.opError("write", werr)
	}
	return n, nil
}

// TryWrite writes what the socket takes of p at once, without waiting for
// room: n < len(p) with a nil error means the socket's buffer is full.
func (c *Conn) TryWrite(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	c.wp, c.wn, c.werr, c.wtry = p, 0, nil, true
	err := c.raw.Write(c.writeFn)
	n, werr := c.wn, c.werr
	c.wp, c.werr, c.wtry = nil, nil, false
	c.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case werr != nil:
		return n, c.opError("write", werr)
	}
	return n, nil
}

// ReadLoop calls f, and calls it again each time the socket has become
// readable since, until f returns false or the wait fails. While f runs,
// Read on c — made by f itself or by what f reads through (TLS, a
// buffer) — never waits: when the socket has nothing, it returns
// ErrWouldBlock, and after a read that emptied the socket (it returned
// fewer bytes than asked for) it does so without a system call (Skipped
// then reports true). f returns true to wait for more.
//
// That is the read a loop of Reads cannot skip. The poller forgets, at
// the start of every Read, whether the socket became readable meanwhile,
// so each Read must try the socket before it may wait: a stream whose
// reads empty the socket pays a read that finds nothing (EAGAIN) for
// every one that finds something. Within ReadLoop nothing is forgotten
// between f's return and the wait, and bytes that arrive after a read
// emptied the socket make the poller report it readable again, so the
// wait ends for them.
//
// One thing is not reported again: the peer's end of the stream (FIN) or
// a reset that came with the bytes a skipping read follows (the poller
// told of both at once, and the read took the bytes). So a caller must
// not wait long after a skipped read: it keeps a deadline, and when that
// fires, calls ReadLoop again, whose first read reaches the socket.
//
// No other goroutine may read c meanwhile. A deadline or Close ends the
// wait, as it ends a Read's, with the same errors (*net.OpError around
// os.ErrDeadlineExceeded or net.ErrClosed); a Close while f runs takes
// effect when f returns.
func (c *Conn) ReadLoop(f func() (wait bool)) error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	err := c.raw.Read(func(fd uintptr) bool {
		c.looping, c.loopFD, c.drained, c.skipped = true, fd, false, false
		defer func() { c.looping = false }()
		return !f()
	})
	if err != nil {
		return c.opError("read", err)
	}
	return nil
}

// Skipped reports whether the last ErrWouldBlock of the current ReadLoop
// came without a system call, after a read that emptied the socket. Only
// f may ask.
func (c *Conn) Skipped() bool { return c.skipped }

// loopRead is Read within ReadLoop.
func (c *Conn) loopRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.drained {
		c.skipped = true
		return 0, ErrWouldBlock
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, c.loopFD, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			afterRead(c.loopFD, p, int(n))
			if n == 0 {
				return 0, io.EOF
			}
			// A stream socket's read returns less than asked when nothing
			// more is queued (or, rarely, at TCP's urgent mark or between
			// Unix-socket messages that carry descriptors: what follows
			// waits for the caller's recheck, as an end that came with
			// the bytes does).
			c.drained = int(n) < len(p)
			return int(n), nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			c.drained, c.skipped = true, false
			return 0, ErrWouldBlock
		}
		return 0, c.opError("read", os.NewSyscallError("read", e))
	}
}

// opError wraps err as net.Conn's own methods do: a *net.OpError with the
// operation "read" or "write" (RawConn's say "raw-read"), around the
// poller's error (net.ErrClosed, os.ErrDeadlineExceeded) or the call's.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// SyscallConn returns the socket's RawConn, as the wrapped connection's.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// CloseWrite shuts down the writing side, as the wrapped connection's
// (TCP and Unix connections both have one).
func (c *Conn) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}
