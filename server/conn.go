package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/internal/sockio"
)

// Two things net/http's server decides before any handler runs, which
// llmproxy needs to see or change, are handled on the connection:
//
//   - A request head with both Content-Length and Transfer-Encoding is a
//     smuggling attempt or a broken client: RFC 9112 §6.1 says to close the
//     connection after answering it. net/http drops the Content-Length and
//     carries on, so the handler cannot tell; the connection follows the
//     request stream as it is read (framing.go), notes it, and the handler
//     adds Connection: close.
//   - net/http answers requests it cannot parse (431 headers too large, 400
//     malformed, 501 transfer coding) with plain text of its own; every
//     error llmproxy gives is JSON with X-Proxy-Error, so those answers are
//     rewritten as they are written.

// framingListener wraps accepted connections in *conn. It also takes back
// connections a stream was handed off on (handoff.go): the server reads
// their next request as if they were new.
type framingListener struct {
	net.Listener
	maxHeader int
	// watch is nil when streams are not handed off: no epoll, or a
	// listener a deadline cannot wake from Accept to take a connection back.
	watch *clientWatcher

	// readHeader is timeouts.read_header: on a connection given back, it
	// counts from the next request's first bytes (conn.readAwaited).
	readHeader time.Duration

	mu       sync.Mutex
	back     []*conn            // handed back, for Accept to return
	awaiting map[*conn]struct{} // given back, no byte of the next request read yet
	closed   bool

	lazy lazyReads // background reads waiting in their connections (conn_read.go)
}

// deadliner is a listener whose Accept a deadline can interrupt (TCP and
// Unix listeners): that is how a connection handed back wakes it.
type deadliner interface{ SetDeadline(time.Time) error }

func newFramingListener(ln net.Listener, maxHeader int) *framingListener {
	l := &framingListener{Listener: ln, maxHeader: maxHeader}
	if _, ok := ln.(deadliner); ok {
		if cw, err := newClientWatcher(); err == nil {
			l.watch = cw
		}
	}
	return l
}

func (l *framingListener) Accept() (net.Conn, error) {
	for {
		if c := l.takeBack(); c != nil {
			return c, nil
		}
		c, err := l.Listener.Accept()
		if err == nil {
			return &conn{Conn: sockio.Wrap(c), ln: l, maxHeader: l.maxHeader}, nil
		}
		var ne net.Error
		if l.watch == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
		// Woken by giveBack's deadline: clear it, then look again (in
		// that order, so that a connection given back after the look
		// sets a deadline that wakes the next Accept).
		l.Listener.(deadliner).SetDeadline(time.Time{})
	}
}

func (l *framingListener) takeBack() *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.back) == 0 {
		return nil
	}
	c := l.back[0]
	l.back[0] = nil
	l.back = l.back[1:]
	return c
}

// giveBack queues c for Accept and wakes it. It reports false, and leaves
// c alone, when the listener cannot take connections back or is closed.
//
// A connection is given back as its stream ends, before the client's next
// request comes: the server's read for it then waits in the socket, as on
// any kept-alive connection, and the request goes straight to it when it
// comes. (Given back only once the request's first bytes came, it waited
// for the listener's Accept and a new goroutine first: about 150 µs more
// before the next request reached the upstream, on an idle machine.)
// await says that none of the next request was read yet: the server's
// first read waits for it until idle (zero: without end), as net/http waits
// timeouts.client_idle between requests, not read_header as for a new
// connection (conn.readAwaited), and closing the listener closes the
// connection while it waits, as a shutdown closes idle connections.
func (l *framingListener) giveBack(c *conn, await bool, idle time.Time) bool {
	if l.watch == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if await {
		c.awaitRequest(idle)
		if l.awaiting == nil {
			l.awaiting = make(map[*conn]struct{})
		}
		l.awaiting[c] = struct{}{}
	}
	l.back = append(l.back, c)
	l.Listener.(deadliner).SetDeadline(time.Unix(1, 0))
	return true
}

// awaited forgets c's wait for its next request: bytes of it came, or the
// wait ended.
func (l *framingListener) awaited(c *conn) {
	l.mu.Lock()
	delete(l.awaiting, c)
	l.mu.Unlock()
}

// Close closes the listener, the connections given back and not yet
// taken, and those that wait for their next request.
func (l *framingListener) Close() error {
	l.mu.Lock()
	l.closed = true
	back := l.back
	l.back = nil
	for c := range l.awaiting {
		back = append(back, c)
	}
	l.awaiting = nil
	l.mu.Unlock()
	for _, c := range back {
		c.Close()
	}
	l.lazy.close()
	return l.Listener.Close()
}

type connKey struct{}

// connContext is http.Server.ConnContext: it makes the connection
// reachable from its requests.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// conn follows the request stream that goes by and rewrites net/http's own
// plain-text error answers.
type conn struct {
	net.Conn
	ln        *framingListener
	maxHeader int
	unread    []byte // read off the socket while a stream was handed off: the next request's first bytes

	mu sync.Mutex // Read runs on net/http's background reader too
	fr framing    // the request stream, as read (framing.go)

	both atomic.Bool // a head had both framing headers (fr.both, read without mu)

	// The request being forwarded upstream (outbound.go), canceled when
	// a read or a write on the connection fails: where net/http's own
	// background read and writes notice the client leaving and cancel
	// the request's context.
	out  atomic.Pointer[outbound]
	gone atomic.Bool // a read or a write failed: the client left
	// req is the nearest cancelable context (context.Cause's key) of the
	// request the connection carries, net/http's own, while its handler
	// runs (ServeHTTP): a request made in process from it (the admin
	// panel's test) may add cancellations of its own, which the
	// connection does not know of.
	req any

	rd connRead // deadlines and net/http's background read (conn_read.go)
}

func (c *conn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.unread) > 0 {
		n = copy(p, c.unread)
		c.unread = c.unread[n:]
	} else {
		n, err = c.read(p)
		if ne, ok := err.(net.Error); err != nil && !(ok && ne.Timeout()) {
			// A timeout is a deadline's: net/http's abortPendingRead
			// stopping its background read, or a head read too slowly.
			c.left()
		}
	}
	if n > 0 {
		c.mu.Lock()
		c.fr.feed(p[:n])
		if c.fr.both {
			c.both.Store(true)
		}
		c.mu.Unlock()
	}
	return n, err
}

// nextRequest is called when a handed-off stream gives the connection
// back: what comes next on it (net/http's buffered bytes, read again from
// unread) starts a new head.
func (c *conn) nextRequest() {
	c.mu.Lock()
	c.fr.restart()
	c.mu.Unlock()
}

// stopWatch stops following the connection's bytes: it was hijacked for
// something else than HTTP/1.1 requests (a WebSocket).
func (c *conn) stopWatch() {
	c.mu.Lock()
	c.fr.stop()
	c.mu.Unlock()
}

// bothFraming reports whether a head on the connection had both
// Content-Length and Transfer-Encoding, or its framing could not be
// followed: the answer under way closes it.
func (c *conn) bothFraming() bool { return c.both.Load() }

// goErrorHeaders follows the status line of net/http's own error answers
// (net/http/server.go, conn.serve).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *conn) Write(p []byte) (int, error) {
	// net/http's own error answers are 4xx or 5xx; a handler's response is
	// not searched.
	if len(p) > 12 && (p[9] == '4' || p[9] == '5') && bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		if i := bytes.Index(p, []byte(goErrorHeaders)); i > 0 && bytes.IndexByte(p[:i], '\n') < 0 {
			if out := c.jsonError(p[:i]); out != nil {
				if _, err := c.Conn.Write(out); err != nil {
					return 0, err
				}
				return len(p), nil
			}
		}
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.left()
	}
	return n, err
}

// TryWrite writes what the socket takes of p at once, without waiting
// (sockio's; a relayed stream's chunks, see handoff.relayCopy). On a
// socket that cannot, it writes nothing: the caller then writes with
// Write.
func (c *conn) TryWrite(p []byte) (int, error) {
	tw, ok := c.Conn.(tryWriter)
	if !ok {
		return 0, nil
	}
	// No c.left() on a failure, unlike Write: TryWrite runs within the
	// upstream socket's read loop, whose Close (the request canceled)
	// would wait for that loop. The relay reports the failure itself.
	return tw.TryWrite(p)
}

// left cancels the request being forwarded: the client left.
func (c *conn) left() {
	c.gone.Store(true)
	if o := c.out.Swap(nil); o != nil {
		o.cancel()
	}
}

// follow has the connection cancel o when the client leaves, until
// unfollow; at once if it left already.
func (c *conn) follow(o *outbound) {
	c.out.Store(o)
	if c.gone.Load() && c.out.CompareAndSwap(o, nil) {
		o.cancel()
	}
}

// unfollow stops the connection canceling o. It reports false when the
// client left and o was canceled (or is being canceled) for it.
func (c *conn) unfollow(o *outbound) bool {
	return c.out.CompareAndSwap(o, nil)
}

// jsonError rewrites net/http's status line "HTTP/1.1 431 Request Header
// Fields Too Large" (or "400 Bad Request: reason") as llmproxy's JSON error.
func (c *conn) jsonError(statusLine []byte) []byte {
	rest := statusLine[len("HTTP/1.1 "):]
	if len(rest) < 3 {
		return nil
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 {
		return nil
	}
	msg := "the request could not be read as HTTP/1.1"
	if _, reason, ok := bytes.Cut(rest, []byte(": ")); ok && len(reason) < 200 {
		msg += ": " + string(reason)
	}
	switch status {
	case 431:
		msg = "request headers are larger than " + strconv.Itoa(c.maxHeader) + " bytes (max_header_bytes)"
	case 501:
		msg = "unsupported transfer encoding: only chunked is accepted"
	}
	var body bytes.Buffer
	rec := &headerRecorder{h: http.Header{}}
	typ := typeOf(status)
	if status == http.StatusNotImplemented {
		typ = typeBadRequest // a transfer coding the client chose
	}
	writeErrorCode(rec, status, typ, "", msg)
	body.Write(rec.body.Bytes())
	var out bytes.Buffer
	out.Write(statusLine)
	out.WriteString("\r\n")
	for name, vs := range rec.h {
		for _, v := range vs {
			out.WriteString(name + ": " + v + "\r\n")
		}
	}
	out.WriteString("Content-Length: " + strconv.Itoa(body.Len()) + "\r\nConnection: close\r\n\r\n")
	out.Write(body.Bytes())
	return out.Bytes()
}

// headerRecorder is the ResponseWriter jsonError writes the error into.
type headerRecorder struct {
	h    http.Header
	body bytes.Buffer
}

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *headerRecorder) WriteHeader(int)             {}

// CloseWrite lets net/http half-close after an error answer, as it does
// on a bare TCP connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
