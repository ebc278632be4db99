// Package relay is the contract between a response body that relays itself
// and the layers that carry it to the client.
//
// The socket transport's body reads a chunked stream within one wait on its
// socket (socket.body.Relay): a read that empties the socket is followed by
// the wait for more, not by a read that finds nothing, which saves a stream
// one system call per event. A Read cannot do that (each Read is a wait of
// its own, which must begin with a read), so the layers between the body
// and the client's connection — the gateway's answer and its usage meter —
// pass Relay through rather than Read.
package relay

import (
	"errors"
	"io"
)

// Relayer is a body that reads itself to the end: next returns the buffer
// for a read, and put is told how many bytes of it were read (they are the
// caller's now, whatever put returns). put may run where it must not wait;
// it returns false to stop the relay, which then returns ErrPaused and
// goes on where it stopped at its next call. Relay returns io.EOF at the
// body's end and the read's error when a read fails.
//
// put(0) says the relay is about to wait for more: until it calls next
// again it holds no buffer of next's, so the caller may give its buffer
// back meanwhile (an open stream waits far longer than it reads). Returning
// false, the caller asks it not to wait: Relay returns ErrPaused and goes
// on at its next call, as after put(n) (TryRead). A relay that never waits
// within Relay (a loop of Reads, which waits inside Read) need not say so,
// and cannot be asked not to wait: it is not a Readier.
type Relayer interface {
	Relay(next func() []byte, put func(n int) bool) error
}

// Readier is a Relayer that can tell whether its next Relay would hand
// over bytes without waiting for them (they are buffered: an event
// stream's first event usually comes with the response's head). Its Relay
// waits only where it calls put(0), and stops there when put says false.
type Readier interface {
	Relayer
	Ready() bool
}

// Ready reports whether r is a Readier with bytes ready.
func Ready(r any) bool {
	rd, ok := r.(Readier)
	return ok && rd.Ready()
}

// TryRead reads once from r into p, as Read does, except that where the
// relay would wait for bytes it returns (0, nil) instead: for a Readier
// (see Ready), it never waits.
func TryRead(r Readier, p []byte) (int, error) {
	rd := Reader{noWait: true}
	return rd.Read(r, p)
}

// ErrPaused is what Relay returns when put asked it to stop.
var ErrPaused = errors.New("relay: paused")

// Read reads once from r into p: the first read Relay hands over, paused
// after it. It is the first read of a body that is then relayed; Reader
// makes such reads again and again.
func Read(r Relayer, p []byte) (int, error) {
	var rd Reader
	return rd.Read(r, p)
}

// Reader makes Reads through a Relayer's Relay (a body's Read once its
// Relay began), with the callbacks made once rather than per Read. The
// zero value is ready to use.
type Reader struct {
	p      []byte
	n      int
	next   func() []byte
	put    func(int) bool
	noWait bool // TryRead's: where the relay would wait, the read returns nothing
}

// Read reads once from r into p, as the package's Read does.
func (rd *Reader) Read(r Relayer, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rd.next == nil {
		rd.next = func() []byte { return rd.p }
		rd.put = func(n int) bool {
			if n == 0 {
				return !rd.noWait // a wait: the read goes on, or stops (TryRead)
			}
			rd.n = n
			return false
		}
	}
	rd.p, rd.n = p, 0
	err := r.Relay(rd.next, rd.put)
	n := rd.n
	rd.p = nil
	if err == ErrPaused {
		return n, nil
	}
	return n, err
}

// Reads is Relay for a body that does not relay itself: a loop of Reads.
// pending keeps, between calls, an error that came with bytes put stopped
// at (the caller's, one per body).
func Reads(r io.Reader, pending *error, next func() []byte, put func(n int) bool) error {
	if err := *pending; err != nil {
		*pending = nil
		return err
	}
	for empty := 0; ; {
		n, err := r.Read(next())
		if n > 0 && !put(n) {
			*pending = err
			return ErrPaused
		}
		if err != nil {
			return err
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty == maxEmptyReads {
			return io.ErrNoProgress
		}
	}
}

// maxEmptyReads bounds consecutive (0, nil) reads, as bufio does.
const maxEmptyReads = 100
