package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reading a client's connection for less.
//
// For every request net/http's server sets a client connection's read
// deadline seven times (read_header for the head, none for the body,
// client_idle after the answer, none again once the next request's first
// bytes arrive, and three more around its background read), and it starts
// a background read: a goroutine whose one-byte read notices the client
// leaving while the handler runs. That read meets an empty socket (a system
// call for EAGAIN), waits in the network poller, and is stopped when the
// handler ends by a deadline in the past. On a small request these cost a
// few microseconds, as much as everything llmproxy adds to net/http.
// The connection makes them cheaper without changing what they do:
//
//   - Deadlines: the socket's read deadline may be earlier than the one
//     net/http set (due), never later. A later deadline, or none, leaves
//     the socket's as it is; when it fires before due, the read sets due
//     and goes on. With the defaults (read_header 10 s, client_idle 2 min),
//     a kept-alive connection sets its socket's deadline about once every
//     ten seconds instead of four times per request.
//   - The background read waits in the connection, not in the socket: it
//     returns when net/http stops it (the deadline in the past, at once,
//     and without the socket unless a read is on it), and only a handler
//     still running after lazyReadAfter (50–100 ms) has it read the socket
//     for real. So a client leaving is noticed as
//     before, except in a request's first 50–100 ms, where it is noticed
//     that much later (the upstream request is canceled then); a request
//     that short is over before the difference matters.
//
// The background read is told from net/http's other reads by what it is:
// a read of one byte between requests, none of the next one's bytes read
// yet (net/http reads heads and bodies through a 4 KiB buffer). A read
// taken for it by mistake is slowed by at most twice lazyReadAfter, never
// lost. A deadline set
// while a read waits in the connection ends the wait only once it has
// passed when set (net/http's stop); a later one is kept from the moment
// the read goes to the socket.

// lazyReadAfter is how long a background read waits in the connection
// before reading the socket: between this and twice this.
const lazyReadAfter = 50 * time.Millisecond

// The background read's states (conn.bg).
const (
	bgNone    = iota // no background read waits in the connection
	bgParked         // one waits
	bgSocket         // woken to read the socket
	bgStopped        // woken to return a timeout: net/http stopped it
)

// connRead is a connection's read state, guarded by mu: Read runs on
// net/http's background reader and deadlines are set from the handler's
// goroutine.
type connRead struct {
	mu      sync.Mutex
	due     time.Time // the read deadline set on the connection; zero: none
	sock    time.Time // the socket's: never later than due; zero: none
	bg      uint8
	stale   atomic.Bool   // due has passed: reads time out without the socket
	reading atomic.Int32  // reads on the socket (readSocket)
	wset    atomic.Bool   // a write deadline is set on the socket
	seq     uint64        // background reads parked, to tell one from the next
	wake    chan struct{} // a parked read's wake-up; made on first use
	closed  bool

	awaiting atomic.Bool // given back after a stream, none of the next request read (readAwaited)
	idle     time.Time   // until when that request is waited for; zero: without end
}

// readSocket reads the socket, setting the socket's deadline to due and
// reading again when an earlier one fired.
func (c *conn) readSocket(p []byte) (int, error) {
	// Counted before stale is looked at, which SetReadDeadline sets before
	// it looks at the count: a deadline in the past reaches the socket
	// only when a read is on it, and no read misses it.
	c.rd.reading.Add(1)
	defer c.rd.reading.Add(-1)
	if c.rd.stale.Load() {
		return 0, errReadTimeout
	}
	for {
		n, err := c.Conn.Read(p)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		c.rd.mu.Lock()
		due := c.rd.due
		if !due.IsZero() && time.Until(due) <= 0 {
			c.rd.mu.Unlock()
			return n, err
		}
		c.rd.sock = due
		c.Conn.SetReadDeadline(due) // failing, the connection is closed: the read says so
		c.rd.mu.Unlock()
	}
}

// errReadTimeout is the error of a read whose deadline passed without the
// socket's knowing, as the socket's would be (net/http asks it Timeout();
// one value, as nothing changes it).
var errReadTimeout error = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// read is Read's socket side: a background read waits in the connection
// (park); any other read reads the socket.
func (c *conn) read(p []byte) (int, error) {
	if c.rd.awaiting.Load() {
		return c.readAwaited(p)
	}
	if len(p) == 1 && c.ln != nil {
		c.mu.Lock()
		rest := c.fr.atRest()
		c.mu.Unlock()
		if rest && c.park() {
			return 0, errReadTimeout
		}
	}
	return c.readSocket(p)
}

// awaitRequest has the next read wait for the next request's first bytes
// until idle (zero: without end): c is given back after a stream
// (framingListener.giveBack), before that request came.
func (c *conn) awaitRequest(idle time.Time) {
	c.rd.mu.Lock()
	c.rd.idle = idle
	c.rd.mu.Unlock()
	c.rd.awaiting.Store(true)
}

// readAwaited is the first read on a connection given back after a
// stream. net/http takes the connection for a new one and reads its first
// request under read_header from the start; the read waits for the
// request's first bytes until rd.idle instead (timeouts.client_idle, as
// net/http waits on a kept-alive connection), and read_header counts from
// those bytes, as net/http's does between requests. A timeout or a failure
// here ends the connection without an answer, as net/http's idle wait
// does.
func (c *conn) readAwaited(p []byte) (int, error) {
	r := &c.rd
	r.mu.Lock()
	r.sock = r.idle
	c.Conn.SetReadDeadline(r.idle) // failing, the connection is closed: the read says so
	r.mu.Unlock()
	r.reading.Add(1)
	n, err := c.Conn.Read(p)
	r.reading.Add(-1)
	c.ln.awaited(c)
	r.mu.Lock()
	r.awaiting.Store(false)
	if n > 0 && !r.due.IsZero() && c.ln.readHeader > 0 {
		r.due = time.Now().Add(c.ln.readHeader)
	}
	r.sock = r.due
	c.Conn.SetReadDeadline(r.due)
	r.mu.Unlock()
	return n, err
}

// park waits for a background read's end: true when net/http stopped it
// (a deadline in the past, before or while it waited), false when it is
// to read the socket (a handler still running after lazyReadAfter, or the
// connection closed).
func (c *conn) park() (stopped bool) {
	r := &c.rd
	r.mu.Lock()
	if !r.due.IsZero() && time.Until(r.due) <= 0 {
		r.mu.Unlock()
		return true
	}
	if r.closed || r.bg != bgNone { // (one read waits at a time: net/http's)
		r.mu.Unlock()
		return false
	}
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
	r.bg = bgParked
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	if !c.ln.lazy.add(c, seq) {
		c.toSocket(seq) // the listener is closed
	}
	<-r.wake
	r.mu.Lock()
	stopped = r.bg == bgStopped
	r.bg = bgNone
	r.mu.Unlock()
	return stopped
}

// wakeLocked ends a parked read's wait, with r.mu held.
func (r *connRead) wakeLocked(to uint8) {
	r.bg = to
	r.wake <- struct{}{} // one send per park: never blocks
}

// toSocket has the background read parked as seq read the socket.
func (c *conn) toSocket(seq uint64) {
	r := &c.rd
	r.mu.Lock()
	if r.bg == bgParked && r.seq == seq {
		r.wakeLocked(bgSocket)
	}
	r.mu.Unlock()
}

// SetReadDeadline records t as due and sets the socket's deadline only
// when t is earlier than the socket's. A deadline in the past stops a
// parked background read at once.
func (c *conn) SetReadDeadline(t time.Time) error {
	r := &c.rd
	r.mu.Lock()
	defer r.mu.Unlock()
	r.due = t
	r.stale.Store(false)
	if t.IsZero() {
		return nil
	}
	if time.Until(t) <= 0 {
		// net/http stopping its background read. Parked, it returns at
		// once; a read that comes later returns the timeout without the
		// socket (stale). Only a read on the socket needs the socket's
		// deadline (it may not have parked, or gone on to the socket).
		if r.bg == bgParked {
			r.wakeLocked(bgStopped)
		}
		r.stale.Store(true)
		if r.reading.Load() == 0 {
			return nil
		}
	}
	if r.sock.IsZero() || t.Before(r.sock) {
		r.sock = t
		return c.Conn.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline sets the socket's write deadline, except to clear one
// that was never set: net/http clears it after every request.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() && !c.rd.wset.Load() {
		return nil
	}
	c.rd.mu.Lock() // the flag and the socket's deadline change together
	defer c.rd.mu.Unlock()
	c.rd.wset.Store(!t.IsZero())
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close closes the socket; a parked background read reads it, and so
// fails as a read of a closed connection does.
func (c *conn) Close() error {
	r := &c.rd
	r.mu.Lock()
	r.closed = true
	if r.bg == bgParked {
		r.wakeLocked(bgSocket)
	}
	r.mu.Unlock()
	return c.Conn.Close()
}

// lazyReads has the background reads parked longer than lazyReadAfter
// read their sockets: one goroutine, running while any are parked, looks
// every lazyReadAfter at those parked before its last look. Once the
// listener is closed, every background read reads its socket at once.
type lazyReads struct {
	mu       sync.Mutex
	young    []parkedRead // parked since the last look
	old      []parkedRead // parked before it
	running  bool
	closed   bool
	stop     chan struct{} // closed by close: the loop ends
	interval time.Duration // lazyReadAfter; tests change it
}

type parkedRead struct {
	c   *conn
	seq uint64
}

// add watches the read parked as seq on c; false once closed.
func (l *lazyReads) add(c *conn, seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.young = append(l.young, parkedRead{c, seq})
	if !l.running {
		if l.stop == nil {
			l.stop = make(chan struct{})
		}
		l.running = true
		go l.loop()
	}
	return true
}

func (l *lazyReads) loop() {
	interval := l.interval
	if interval == 0 {
		interval = lazyReadAfter
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	var due []parkedRead
	for {
		select {
		case <-t.C:
		case <-l.stop:
			return
		}
		l.mu.Lock()
		if len(l.young) == 0 && len(l.old) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		// Those parked before the last look have waited at least an
		// interval; those since, until the next look.
		due, l.old, l.young = l.old, l.young, due[:0]
		l.mu.Unlock()
		for i, p := range due {
			p.c.toSocket(p.seq)
			due[i] = parkedRead{}
		}
		t.Reset(interval)
	}
}

// close has every parked read read its socket and ends the loop.
func (l *lazyReads) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	all := append(l.old, l.young...)
	l.old, l.young = nil, nil
	if l.stop != nil {
		close(l.stop)
	}
	l.mu.Unlock()
	for _, p := range all {
		p.c.toSocket(p.seq)
	}
}
