package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/llmproxy/llmproxy/internal/relay"
)

// Handing a stream off.
//
// An open event stream spends nearly all its life waiting for the next
// event. Relayed inside its handler it would hold, while it waits, the
// handler's goroutine (its stack grown to 8 KiB on the way to the
// upstream), net/http's read and write buffers and response state, and
// net/http's background reader. So once a stream's headers are out, forward
// hands it off: it takes the client's connection over, starts a relay
// goroutine that writes the chunked body itself, and returns; what the
// handler and net/http held for the request is freed.
//
// One epoll set per listener (clientWatcher) watches every handed-off
// connection for what net/http's background reader would notice: the
// client leaving cancels the upstream request at once; bytes of its next
// request end the watch. When the stream ends cleanly the relay gives the
// connection back to the server (framingListener.giveBack), which waits
// for the client's next request on it up to timeouts.client_idle, as
// net/http does with a kept-alive connection. The request's log line,
// statistics and usage are settled when the stream ends, as before.
//
// Only what needs nothing more of net/http is handed off: an HTTP/1.1
// event stream of unknown length without trailers, on a connection that
// may be kept alive, whose request body was read to its end. Everything
// else is relayed in the handler.

// handoffs are the streams handed off and not yet given back or closed; a
// shutdown waits for them as net/http waits for its own connections.
type handoffs struct {
	mu      sync.Mutex
	m       map[*handoff]struct{}
	closing bool
	empty   chan struct{} // closed when m empties after closing
}

func (hs *handoffs) add(h *handoff) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.closing {
		return false
	}
	if hs.m == nil {
		hs.m = make(map[*handoff]struct{})
	}
	hs.m[h] = struct{}{}
	return true
}

func (hs *handoffs) remove(h *handoff) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	delete(hs.m, h)
	if hs.closing && len(hs.m) == 0 && hs.empty != nil {
		close(hs.empty)
		hs.empty = nil
	}
}

func (hs *handoffs) isClosing() bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.closing
}

// Open reports how many streams are handed off and not yet ended.
func (hs *handoffs) Open() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.m)
}

// shutdown takes no more streams and waits for the streams still running
// until ctx ends; then it cuts those off (the upstream request canceled,
// the client's connection closed without the end of the body). A stream
// that ends meanwhile closes its connection; those given back before, which
// wait for a next request, are closed with the listener (giveBack).
func (hs *handoffs) shutdown(ctx context.Context) {
	hs.mu.Lock()
	hs.closing = true
	var wait chan struct{}
	if len(hs.m) > 0 {
		wait = make(chan struct{})
		hs.empty = wait
	}
	hs.mu.Unlock()
	if wait == nil {
		return
	}
	select {
	case <-wait:
		return
	case <-ctx.Done():
	}
	hs.mu.Lock()
	left := make([]*handoff, 0, len(hs.m))
	for h := range hs.m {
		left = append(left, h)
	}
	hs.mu.Unlock()
	for _, h := range left {
		// Closed while the watcher may still hold the descriptor: the
		// kernel drops it from the epoll set; nothing joins the set any
		// more, so the relay's late remove finds no one else's there.
		h.closeConn(true)
		h.cancel()
	}
	// The relays end at once now; their log lines come before Serve's.
	select {
	case <-wait:
	case <-time.After(5 * time.Second):
	}
}

// handoff is one stream relayed outside its handler.
type handoff struct {
	s      *Server
	nc     net.Conn // the client's connection
	c      *conn    // nc, watched and to be given back; nil: closed after the stream
	w      *logWriter
	method string
	url    *url.URL
	body   io.ReadCloser      // the upstream's response body
	cancel context.CancelFunc // the outbound request's context

	token uint32 // the clientWatcher's, while watched
	fd    int

	mu      sync.Mutex
	ended   bool // the relay is done with the body
	gone    bool // the client left
	pending bool // the client sent bytes of its next request
	cut     bool // a shutdown cut the stream off
}

// canHandOff reports whether the stream in resp needs nothing more of
// net/http, so that it can be handed off.
func canHandOff(w *logWriter, r *http.Request, resp *http.Response) bool {
	c := connOf(r.Context())
	switch {
	case c == nil || c.ln == nil || c.ln.watch == nil,
		r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Close || r.Method == http.MethodHead,
		resp.ContentLength >= 0 || len(resp.Trailer) > 0,
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified,
		len(w.Header()["Connection"]) > 0 || len(w.Header()["Content-Length"]) > 0 || len(w.Header()["Transfer-Encoding"]) > 0,
		!bodyRead(w, r):
		return false
	}
	return true
}

// handOff takes over from the handler a stream canHandOff allows; it
// reports whether it did (not while shutting down). The response headers
// are written already (to net/http's buffer). Not handed off, the stream
// goes on in the handler; err is then what ended or broke its body
// (io.EOF: it ended), which the handler takes as its relay's.
func (s *Server) handOff(w *logWriter, r *http.Request, resp *http.Response, cancel context.CancelFunc) (done bool, err error) {
	c := connOf(r.Context())
	h := &handoff{s: s, w: w, method: r.Method, url: r.URL, body: resp.Body, cancel: cancel}
	if !s.handoffs.add(h) {
		return false, nil // shutting down: net/http waits for the handler
	}
	if relay.Ready(resp.Body) {
		// The first event came with the head, as it usually does: it goes
		// out with it, in one write. (Hijack would write the head, then
		// the relay the event: a write and a goroutine later, 30-50 µs on
		// an idle machine.)
		if err := writeReady(w, resp.Body.(relay.Readier)); err != nil {
			s.handoffs.remove(h)
			return false, err
		}
	}
	// Hijack writes the headers out (Transfer-Encoding: chunked, as the
	// handler's own writes would have had) and stops net/http's
	// background read.
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		s.handoffs.remove(h)
		return false, nil
	}
	h.mu.Lock()
	h.nc = nc
	cut := h.cut // a shutdown's cut-off came between add and here
	h.mu.Unlock()
	if cut {
		nc.Close()
	}
	// Nothing of the handler's request may stay reachable: the writer
	// and the body reader hold net/http's connection and its buffers.
	w.ResponseWriter, w.flusher, w.handedOff = handedOffWriter{}, nil, true
	w.body.release()
	c.req = nil // no handler of the connection runs from here
	// A connection net/http wrapped is not ours to give back (it wraps none
	// today): it is closed after the stream.
	if nc == net.Conn(c) {
		// What the connection reads next is a new request head, whenever
		// the server gets it back.
		c.nextRequest()
		if n := brw.Reader.Buffered(); n > 0 {
			// The client sent its next request already (pipelining):
			// the server reads it when the connection comes back.
			b, _ := brw.Reader.Peek(n)
			c.unread = append([]byte(nil), b...)
			h.pending = true
		}
		h.c = c
		if !c.ln.watch.add(h) {
			h.c = nil // unwatched: closed after the stream
		}
	}
	go h.relay()
	return true, nil
}

// writeReady writes what body hands over without waiting, flushed with the
// response's head; io.EOF when the body ended.
func writeReady(w *logWriter, body relay.Readier) error {
	var buf bodyBuffer
	defer buf.release()
	b := buf.get()
	n, err := relay.TryRead(body, b)
	if n > 0 {
		if _, werr := w.Write(b[:n]); werr != nil {
			return werr
		}
		w.Flush()
	}
	return err
}

// bodyRead reports whether the request's body was read to its end, so
// that the next bytes on the connection are the next request's.
func bodyRead(w *logWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true
	}
	return r.ContentLength > 0 && w.bytesIn.Load() == r.ContentLength && w.bodyErr.Load() == nil
}

// closeConn closes the client's connection, once the handler gave it up
// (handOff closes it if the handler has not yet). cut: a shutdown cuts the
// stream off.
func (h *handoff) closeConn(cut bool) {
	h.mu.Lock()
	h.cut = h.cut || cut
	nc := h.nc
	h.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// clientEvent is the clientWatcher's news of the client: it left, or sent
// bytes of its next request (then, like net/http, nothing more is watched
// and a client leaving is noticed when a write fails).
func (h *handoff) clientEvent(gone bool) {
	h.mu.Lock()
	if h.ended {
		h.mu.Unlock()
		return
	}
	if gone {
		h.gone = true
	} else {
		h.pending = true
	}
	h.mu.Unlock()
	if gone {
		h.cancel()
	}
}

// relay copies the stream to the client, ends the request's bookkeeping,
// and then lets the connection carry the client's next request.
func (h *handoff) relay() {
	w := h.w
	aborted := true
	defer func() {
		if v := recover(); v != nil {
			// What net/http does for a handler: log it, close the
			// connection; the proxy carries on.
			h.s.log.Error("panic relaying a stream", "panic", v, "stack", string(debug.Stack()))
			w.reason = "internal error"
		}
		h.body.Close()
		h.cancel()
		h.s.endRequest(w, h.method, h.url, aborted)
		if !aborted {
			// The last chunk goes out after the bookkeeping, as net/http's
			// does after the handler: a client that sends its next request
			// the moment the stream ends finds its limits settled.
			if _, err := io.WriteString(h.nc, "0\r\n\r\n"); err != nil {
				aborted = true
			}
		}
		h.next(aborted)
	}()

	werr, rerr := h.copy()
	h.mu.Lock()
	gone, cut := h.gone, h.cut
	h.mu.Unlock()
	switch {
	case werr == nil && rerr == nil:
		aborted = false
	case cut:
		w.reason = reasonShutdown
	case werr != nil:
		w.reason = "client left mid-response"
		h.s.log.Debug("writing the stream to the client failed", "error", werr)
	case gone:
		w.reason = "client left mid-response"
	default:
		w.reason, w.failed = "upstream failed mid-response", true
		h.s.log.Debug("response body failed", "error", rerr)
	}
}

// next runs when the stream has ended: it gives the connection back to
// the server for the client's next request, or closes it.
func (h *handoff) next(aborted bool) {
	defer h.s.handoffs.remove(h)
	h.mu.Lock()
	h.ended = true // from here on the watcher's news is ignored
	h.mu.Unlock()
	if h.c != nil {
		h.c.ln.watch.remove(h)
	}
	h.mu.Lock()
	keep := !aborted && !h.gone && h.c != nil
	await := !h.pending
	h.mu.Unlock()
	if keep && h.s.handoffs.isClosing() {
		keep = false // shutting down: close now
	}
	if keep {
		var idle time.Time
		if d := h.s.cfg.Timeouts.ClientIdle; d > 0 {
			idle = time.Now().Add(d)
		}
		keep = h.c.ln.giveBack(h.c, await, idle)
	}
	if !keep {
		h.nc.Close()
	}
}

// reasonShutdown is the log's reason for a stream a shutdown cut off at
// its timeout.
const reasonShutdown = "cut off at shutdown"

// chunkRoom is the room left before each read for the chunk's size line:
// up to six hex digits and CRLF (a read is at most 32 KiB).
const chunkRoom = 8

// copy writes the body to the client as HTTP/1.1 chunks, one write per
// read: each event reaches the client the moment it arrives. It returns
// at the body's end, or at once on a failure on either side (then the
// connection is closed without the last chunk).
func (h *handoff) copy() (werr, rerr error) {
	if r, ok := h.body.(relay.Relayer); ok {
		if tw, ok := h.nc.(tryWriter); ok {
			return h.relayCopy(r, tw)
		}
	}
	var buf bodyBuffer
	defer buf.release()
	for {
		b := buf.get()
		n, err := h.body.Read(b[chunkRoom : len(b)-2])
		if n > 0 {
			start := chunkSize(b[:chunkRoom], n)
			end := chunkRoom + n
			b[end], b[end+1] = '\r', '\n'
			if _, werr := h.nc.Write(b[start : end+2]); werr != nil {
				return werr, nil
			}
			h.w.wrote(n)
			buf.used(n, len(b)-chunkRoom-2)
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// tryWriter writes what a connection takes at once, without waiting.
type tryWriter interface {
	TryWrite(p []byte) (int, error)
}

// relayCopy is copy for a body that relays itself (relay.Relayer: the
// socket transport's body, or the gateway's answer and meter over it):
// each chunk is written from within the relay when the client's socket
// takes it at once, as it nearly always does; when it does not, the relay
// pauses and the rest is written here, waiting as any write does.
func (h *handoff) relayCopy(r relay.Relayer, tw tryWriter) (werr, rerr error) {
	var buf bodyBuffer
	defer buf.release()
	var b []byte    // the buffer of the read under way
	var rest []byte // of the chunk put last, what the client's socket did not take
	var restN int   // that chunk's data bytes
	next := func() []byte {
		b = buf.get()
		return b[chunkRoom : len(b)-2]
	}
	put := func(n int) bool {
		if n == 0 {
			// The relay waits for the next event: the buffer goes back
			// to its pool meanwhile, and next takes one again.
			buf.release()
			b = nil
			return true
		}
		start := chunkSize(b[:chunkRoom], n)
		end := chunkRoom + n
		b[end], b[end+1] = '\r', '\n'
		m, err := tw.TryWrite(b[start : end+2])
		if err != nil {
			werr = err
			return false
		}
		if m < end+2-start {
			rest, restN = b[start+m:end+2], n
			return false
		}
		h.w.wrote(n)
		buf.used(n, len(b)-chunkRoom-2)
		return true
	}
	for {
		err := r.Relay(next, put)
		if werr != nil {
			return werr, nil
		}
		if rest != nil {
			if _, werr := h.nc.Write(rest); werr != nil {
				return werr, nil
			}
			h.w.wrote(restN)
			buf.used(restN, len(b)-chunkRoom-2)
			rest = nil
		}
		switch err {
		case relay.ErrPaused:
		case io.EOF:
			return nil, nil
		default:
			return nil, err
		}
	}
}

// chunkSize writes n in hex and CRLF at the end of room and returns where
// they start.
func chunkSize(room []byte, n int) int {
	const hex = "0123456789abcdef"
	i := len(room) - 2
	room[i], room[i+1] = '\r', '\n'
	for {
		i--
		room[i] = hex[n&0xf]
		n >>= 4
		if n == 0 {
			return i
		}
	}
}

// handedOffWriter stands in for the client's ResponseWriter once the
// stream was handed off: nothing may write to it.
type handedOffWriter struct{}

var errHandedOff = errors.New("the stream was handed off: its connection is the relay's")

func (handedOffWriter) Header() http.Header       { return http.Header{} }
func (handedOffWriter) Write([]byte) (int, error) { return 0, errHandedOff }
func (handedOffWriter) WriteHeader(int)           {}
