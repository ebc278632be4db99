package fetch

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/llmproxy/llmproxy/internal/clock"
)

// idleConn is the TCP connection under TLS, keeping the idle timeout on
// writes that net/http lacks: a write that makes no progress for the idle
// timeout fails with ErrIdleTimeout (a request body an upstream stopped
// reading, which ResponseHeaderTimeout does not cover: it starts once the
// body is written). It is the socket transport's write timeout, made
// implicit: each Write starts the clock, each byte written moves it.
//
// Setting a deadline resets a runtime timer, too dear to do on every
// write, so the socket's write deadline moves only when a quarter of the
// idle timeout has passed since it last moved. When an earlier deadline
// fires, Write checks the one due (the idle timeout after the later of its
// start and its last byte) and, when it has not come, waits on until it.
//
// A deadline set by the caller (crypto/tls sets one around its
// close_notify) holds instead until it is cleared. Once cut, the
// connection fails every write at once: crypto/tls's close_notify would
// otherwise wait for its own 5 s on a send buffer the upstream left full.
//
// Writes may come from several goroutines (HTTP/2, crypto/tls's Close):
// mu guards the state, never the write itself.
type idleConn struct {
	net.Conn
	idle time.Duration

	mu     sync.Mutex
	from   time.Time // the idle clock runs from here: the last write's start or byte
	pushed time.Time // when the socket's write deadline was last set to pushed+idle; zero: none
	fixed  bool      // the caller set a write deadline: no idle timeout
	off    bool      // stopWrite: no idle timeout for good (an upgraded connection)
	cut    error     // set once the idle timeout cut a write
}

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	return &idleConn{Conn: c, idle: idle}
}

// stopWrite ends the idle timeout on writes: the connection now belongs to
// a WebSocket, whose relay keeps its own, as the socket transport's.
func (c *idleConn) stopWrite() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut == nil && !c.fixed && !c.pushed.IsZero() {
		c.Conn.SetWriteDeadline(time.Time{})
	}
	c.off, c.pushed = true, time.Time{}
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.cut != nil {
		c.mu.Unlock()
		return 0, c.cut
	}
	if c.fixed || c.off {
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	now := clock.Now()
	c.from = now
	if now.Sub(c.pushed) > c.idle/4 {
		c.Conn.SetWriteDeadline(now.Add(c.idle))
		c.pushed = now
	}
	c.mu.Unlock()
	written := 0
	for {
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
		c.mu.Lock()
		if c.fixed || c.off || c.cut != nil {
			// A deadline of the caller's came meanwhile: its error.
			c.mu.Unlock()
			return written, err
		}
		now := clock.Now()
		if n > 0 {
			c.from = now
		}
		due := c.from.Add(c.idle)
		if due.After(now) {
			// An earlier deadline fired (left by an earlier write, or
			// the clock moved since): wait on until the one due.
			c.Conn.SetWriteDeadline(due)
			c.pushed = c.from
			c.mu.Unlock()
			continue
		}
		c.cut = &net.OpError{Op: "write", Net: c.RemoteAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: ErrIdleTimeout}
		c.mu.Unlock()
		return written, c.cut
	}
}

// SetWriteDeadline and SetDeadline set a fixed write deadline, as on any
// connection; the zero time brings the idle timeout back.
func (c *idleConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixed, c.pushed = !t.IsZero(), time.Time{}
	return c.Conn.SetWriteDeadline(t)
}

func (c *idleConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixed, c.pushed = !t.IsZero(), time.Time{}
	return c.Conn.SetDeadline(t)
}
