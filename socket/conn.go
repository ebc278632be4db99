package socket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmproxy/llmproxy/internal/relay"
	"github.com/llmproxy/llmproxy/internal/sockio"
)

// conn is one upstream connection. It serves one request at a time; between
// requests it waits in the Transport's idle pool.
type conn struct {
	t       *Transport
	key     string
	nc      net.Conn    // TLS over ic, or ic itself
	ic      *idleConn   // the TCP connection, keeping the idle timeout
	probe   *prober     // peeks at the TCP socket; nil where it cannot
	close   func()      // aborts the connection; made once, registered with every request's context
	lim     headerLimit // under br: bounds a response's header section
	br      *bufio.Reader
	idleAt  time.Time
	reused  bool
	written int64 // bytes written for the current request
}

func newConn(t *Transport, key string, nc net.Conn, ic *idleConn, tcp net.Conn) *conn {
	c := &conn{t: t, key: key, nc: nc, ic: ic}
	c.lim.r = nc
	c.br = bufio.NewReaderSize(&c.lim, 2<<10)
	// An abort closes the TCP connection under TLS: no close_notify, which
	// a Close of the TLS connection would write from the context's goroutine
	// while the request's goroutine may be using the connection, and to
	// which an HTTP/1.1 upstream may answer by ending its response as if
	// the stream were complete.
	c.close = func() { c.ic.Conn.Close() }
	if sc, ok := tcp.(syscall.Conn); ok {
		c.probe = newProber(sc)
	}
	return c
}

// Write writes to the upstream with an idle timeout, so a stalled
// upstream cannot block a request forever (see idleConn).
func (c *conn) Write(p []byte) (int, error) {
	c.ic.startWrite(c.t.idleTimeout())
	n, err := c.nc.Write(p)
	c.written += int64(n)
	return n, err
}

// extendRead starts a read of the response body under the idle timeout.
func (c *conn) extendRead() { c.ic.startRead(c.t.idleTimeout()) }

// Request writers are pooled: an open stream keeps only its reader.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// probeWait bounds each read that checks pending bytes on a pooled
// connection, and probeTries how many such reads are made.
const (
	probeWait  = time.Millisecond
	probeTries = 3
)

// alive reports whether a pooled connection is still usable. A read with an
// expired deadline never reaches the socket in Go's poller, so the probe
// peeks at the TCP socket itself; only when bytes are waiting (a TLS
// close_notify or session ticket) does it let TLS read them, briefly. EOF
// or stray response bytes mean the upstream closed the connection or broke
// the protocol. A read that times out is not taken as an answer by itself:
// on a busy machine the deadline can pass before the read starts, and then
// nothing was read. The socket is peeked at again: bytes gone means TLS
// consumed them (a session ticket) and waited for more; bytes still there
// mean they were never read, and the read is tried again. A connection
// whose bytes stay unread is not trusted. (A TLS read timeout is not
// sticky, unlike a write timeout, so the connection stays usable.)
func (c *conn) alive() bool {
	if c.probe == nil {
		return c.readsNothing()
	}
	for range probeTries {
		closed, pending := c.probe.peek()
		if closed {
			return false
		}
		if !pending {
			return true
		}
		if !c.readsNothing() {
			return false
		}
	}
	return false
}

// readsNothing lets the connection read briefly and reports whether the
// read timed out: no response bytes, no close.
func (c *conn) readsNothing() bool {
	c.ic.startFixed(c.t.probeWait())
	_, err := c.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// afterFunc is context.AfterFunc, minus its allocations and its goroutine
// for a context that has an AfterFunc method of its own: llmproxy's server
// gives one to the requests it forwards, which runs f in the goroutine
// that cancels. f (the connection's close) neither blocks nor takes a lock.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// The client leaving closes the upstream connection at once, whatever
	// step is blocked on it.
	stop := afterFunc(ctx, c.close)
	fail := func(op Op, sent bool, err error) (*http.Response, error) {
		stop()
		// Under TLS: a close_notify would wait on a send buffer that a
		// stalled upstream left full, for crypto/tls's own 5 s.
		c.close()
		return nil, &Error{Op: op, Reused: c.reused, Sent: sent, Err: ctxErr(ctx, err)}
	}

	c.written = 0
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	err := writeRequest(bw, req)
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		var be bodyError
		if errors.As(err, &be) {
			return fail(OpBody, c.written > 0, be.err)
		}
		if isTimeout(err) {
			err = ErrIdleTimeout
		}
		return fail(OpWrite, c.written > 0, err)
	}

	c.ic.startFixed(c.t.headerTimeout()) // the body's first read starts the idle timeout
	c.lim.remaining, c.lim.on = c.t.maxHeaderBytes(), true
	resp, err := c.readResponse(req)
	c.lim.on = false
	if err != nil {
		if isTimeout(err) {
			err = ErrResponseHeaderTimeout
		}
		return fail(OpRead, true, err)
	}

	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the caller (a WebSocket): the
		// request context no longer governs it, and it never returns to
		// the pool.
		if !stop() {
			c.nc.Close()
			return nil, &Error{Op: OpRead, Sent: true, Err: ctx.Err()}
		}
		c.ic.stopRead()
		c.ic.stopWrite()
		c.nc.SetDeadline(time.Time{})
		resp.Body = &upgraded{c}
		return resp, nil
	}

	b := &body{ctx: ctx, c: c, rc: resp.Body, stop: stop, reusable: !resp.Close && !req.Close,
		chunked: len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"}
	if resp.Body == http.NoBody {
		b.finish(true, io.EOF)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

func (c *conn) readResponse(req *http.Request) (*http.Response, error) {
	if _, err := c.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil, fmt.Errorf("%w (%v)", ErrNoResponse, err)
		}
		return nil, err
	}
	for range 10 {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		// 1xx informational (103 Early Hints, …): report and read on.
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("too many 1xx responses")
}

// headerLimit bounds what a response's header section may make the
// connection read: http.ReadResponse itself takes headers of any size, so
// a hostile upstream (generic mode reaches any) could make it allocate
// without end. net/http's Transport has MaxResponseHeaderBytes for this.
type headerLimit struct {
	r         io.Reader
	on        bool
	remaining int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if !l.on {
		n, err := l.r.Read(p)
		if n > 0 && err == sockio.ErrWouldBlock {
			// Bytes with "nothing more yet" (crypto/tls returns both when
			// it looks ahead for an alert): the bytes alone, so that the
			// buffer above keeps no error for a later read (Relay).
			err = nil
		}
		return n, err
	}
	if l.remaining <= 0 {
		return 0, ErrResponseHeaderTooLarge
	}
	if int64(len(p)) > l.remaining {
		p = p[:l.remaining]
	}
	n, err := l.r.Read(p)
	l.remaining -= int64(n)
	return n, err
}

func isTimeout(err error) bool {
	if err == sockio.ErrWouldBlock {
		return false // a relayed stream's read, once per event: no errors.As
	}
	if ne, ok := err.(net.Error); ok {
		return ne.Timeout()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// body streams a response body from the connection. Every read renews the
// idle deadline, so a body may take any time as long as bytes keep coming.
// At EOF the connection returns to the pool; on error or early Close it is
// closed, never drained (an SSE stream has no end to drain to).
type body struct {
	ctx      context.Context
	c        *conn
	rc       io.ReadCloser
	stop     func() bool
	reusable bool
	done     atomic.Bool
	err      error // the terminal error, once done

	chunked bool         // the body is chunked: Relay may decode it itself
	read    bool         // Read was called: net/http's decoder has begun
	dec     *chunked     // Relay's decoder, once it began
	relayed relay.Reader // Reads once Relay began
}

func (b *body) Read(p []byte) (int, error) {
	if b.done.Load() {
		// The connection may already serve another request: don't touch it.
		return 0, b.err
	}
	if b.dec != nil {
		// Relay has begun decoding: a Read is one relayed read.
		return b.relayed.Read(b, p)
	}
	b.read = true
	b.c.extendRead()
	n, err := b.rc.Read(p)
	if err != nil {
		err = b.end(err)
	}
	return n, err
}

// end ends the body with a read's error, which it returns as Read does:
// io.EOF as it is, a failure as an *Error.
func (b *body) end(err error) error {
	if err != io.EOF {
		if isTimeout(err) {
			err = ErrIdleTimeout
		}
		err = &Error{Op: OpResponse, Sent: true, Err: ctxErr(b.ctx, err)}
	}
	b.finish(err == io.EOF, err)
	return err
}

// ErrPaused is what Relay returns when put asked it to stop (relay's).
var ErrPaused = relay.ErrPaused

// Relay reads the body as a loop of Reads would and hands each read to
// put: next returns the buffer for a read, and put is told how many bytes
// of it were read. It returns io.EOF at the body's end and Read's error
// when a read fails; ErrPaused when put returned false, and then the next
// call goes on where this one stopped.
//
// A chunked body on a socket of sockio's is read within the socket's
// ReadLoop, and decoded here (chunked): a read that empties the socket is
// followed by the wait for more rather than by a read that finds nothing,
// which saves a stream one system call per event. put then runs within
// the loop and must not wait: rather than block (on a client's socket
// that is full), it returns false, and the caller blocks outside. Once
// Relay has begun decoding, a Read is one relayed read (relay.Reader); the
// gateway reads an answer's first bytes so (relay.Read), and may relay the
// rest.
func (b *body) Relay(next func() []byte, put func(n int) bool) error {
	if b.done.Load() {
		return b.err
	}
	loop, ok := b.c.ic.Conn.(readLooper)
	if !ok || !b.chunked || b.read {
		return b.relayReads(next, put)
	}
	if b.dec == nil {
		b.dec = &chunked{br: b.c.br}
	} else if b.dec.err != nil {
		// The read put paused on ended the body: done, without the socket
		// (which the client leaving meanwhile may have closed).
		return b.end(b.dec.err)
	}
	ic := b.c.ic
	ic.startRead(b.c.t.idleTimeout())
	for {
		var rerr error
		paused, yield := false, false
		err := loop.ReadLoop(func() bool {
			for reads := 0; ; reads++ {
				if reads == relayBurst {
					// Step out now and then: a Close of the socket (the
					// request canceled) waits for f to return.
					yield = true
					return false
				}
				p := next()
				n, err := b.dec.Read(p)
				// What the socket's last read brought may hold more than
				// this (a stream the proxy fell behind on: TLS records in
				// a row): it goes to put with this, in one write to the
				// client. The read that finds the socket empty is the
				// one the loop makes next anyway.
				for n > 0 && n < len(p) && err == nil {
					var m int
					m, err = b.dec.Read(p[n:])
					if m == 0 {
						break
					}
					n += m
				}
				if n > 0 && !put(n) {
					paused = true // a failure with it comes again from dec
					return false
				}
				if err == sockio.ErrWouldBlock {
					if loop.Skipped() {
						// The end of the stream or a reset may have come
						// with the last bytes (sockio): the socket is read
						// again soon, whatever comes. readFrom is the time
						// of the read the skip follows.
						ic.readBy(ic.readFrom.Add(recheckAfter))
					}
					if !put(0) { // the wait holds no buffer of next's
						paused = true // asked not to wait
						return false
					}
					return true
				}
				if err != nil {
					rerr = err
					return false
				}
			}
		})
		switch {
		case paused:
			return ErrPaused
		case rerr != nil:
			return b.end(rerr)
		case yield:
			continue
		case err == nil:
			panic("socket: ReadLoop returned while f asked to wait")
		case !isTimeout(err):
			return b.end(err)
		}
		// The socket's deadline fired: it may be earlier than the one due
		// (idleConn).
		due := ic.readDue()
		if !due.IsZero() && time.Until(due) <= 0 {
			return b.end(err)
		}
		ic.setRead(due)
	}
}

// Ready reports whether Relay would hand over bytes without waiting for
// the socket: the chunked body's next data is in the connection's buffer
// already (relay.Readier), as an event stream's first event usually is,
// read with the response's head.
func (b *body) Ready() bool {
	if b.done.Load() || !b.chunked || b.read {
		return false
	}
	if _, ok := b.c.ic.Conn.(readLooper); !ok {
		return false
	}
	if b.dec != nil {
		return b.dec.ready()
	}
	return (&chunked{br: b.c.br}).ready()
}

// readLooper is a socket of sockio's (sockio.Conn).
type readLooper interface {
	ReadLoop(f func() (wait bool)) error
	Skipped() bool
}

// relayBurst bounds the reads Relay makes in one call of its ReadLoop's f.
const relayBurst = 64

// recheckAfter bounds how long Relay waits for more after a read that
// skipped the socket: a stream the upstream ended or reset together with
// its last bytes is noticed this much later, at most.
const recheckAfter = 250 * time.Millisecond

// relayReads is Relay as a loop of Reads.
func (b *body) relayReads(next func() []byte, put func(n int) bool) error {
	for {
		n, err := b.Read(next())
		if n > 0 && !put(n) {
			return ErrPaused // a failure with it is b.err, returned next time
		}
		if err != nil {
			return err
		}
	}
}

// Close ends the body early. A connection mid-body cannot be reused.
func (b *body) Close() error {
	b.finish(false, errBodyClosed)
	return nil
}

var errBodyClosed = errors.New("socket: read on closed response body")

func (b *body) finish(eof bool, err error) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	b.err = err
	c := b.c
	// stop() is false when the context already fired and closed the conn.
	if b.stop() && eof && b.reusable && c.br.Buffered() == 0 {
		// The read deadline stays: an idle connection is not read, and the
		// next request's reads move it when it fires (idleConn).
		c.ic.stopRead()
		c.t.putIdle(c)
		return
	}
	c.nc.Close()
}

// upgraded is the body of a 101 response: the raw connection, for the
// WebSocket relay.
type upgraded struct{ c *conn }

func (u *upgraded) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }
func (u *upgraded) Close() error                { return u.c.nc.Close() }
