package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/stats"
)

// logWriter wraps the client's ResponseWriter to record what the request
// log line reports: status, bytes, route, transport and failure reason.
type logWriter struct {
	http.ResponseWriter
	flusher  http.Flusher
	start    time.Time
	status   int
	bytesIn  atomic.Int64 // added to by whatever goroutine reads the request body
	bytesOut int64
	route    string       // preset name, "generic/https", "health", …
	stats    *stats.Route // nil for requests that are not proxied
	report   fallback.Report
	reason   string // why the request failed, if it did
	failed   bool   // the upstream failed: unreachable, timed out, broke off
	hijacked bool
	// handedOff: a relay goroutine took the stream over (handoff.go) and
	// ends the request when the stream ends.
	handedOff bool

	headerAt  time.Duration // from start to the response headers
	firstByte time.Duration // from start to the first body byte sent
	streaming bool          // an event stream is being relayed

	wsEnd  string // how a WebSocket session ended
	wsCode int    // the close code its client received

	api          gateway.Kind          // the error format the client parses ("" = llmproxy's own)
	plan         *gateway.Plan         // the gateway's work, for the log line
	ticket       access.Ticket         // the limiter's, settled when the answer ends (nil: not admitted)
	caller       *access.Caller        // who called, when a credential was checked
	usage        gateway.Result        // an answered gateway request's, set when its answer ended
	refusedToken bool                  // the first path segment was a wrong token: never log it
	bodyErr      atomic.Pointer[error] // the client's body failed to read
	body         countingBody          // the request body, counted (kept here: no allocation of its own)
}

// proxied marks the request as bound for a route and counts it.
func (w *logWriter) proxied(name string, r *stats.Route) {
	w.route, w.stats = name, r
	r.Request()
}

func newLogWriter(w http.ResponseWriter) *logWriter {
	f, _ := w.(http.Flusher)
	return &logWriter{ResponseWriter: w, flusher: f, start: time.Now()}
}

func (w *logWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
		w.headerAt = time.Since(w.start)
		if w.stats != nil && isEventStream(w.Header().Get("Content-Type")) {
			w.streaming = true
			w.stats.StreamOpened()
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.wrote(n)
	return n, err
}

// wrote counts n body bytes sent to the client.
func (w *logWriter) wrote(n int) {
	if w.firstByte == 0 && n > 0 {
		w.firstByte = time.Since(w.start)
	}
	w.bytesOut += int64(n)
}

// Flush sends buffered bytes to the client now (SSE).
func (w *logWriter) Flush() {
	if w.flusher != nil {
		w.flusher.Flush()
	}
}

// Hijack hands the connection over (WebSocket upgrade).
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if c, ok := nc.(*conn); ok {
		c.stopWatch() // WebSocket frames from here on
	}
	return nc, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body bytes read. net/http's transport
// may still read the body after the handler returned (after the last byte
// it reads once more, for bytes beyond Content-Length), hence the atomic
// and the lock. Its Close does nothing: a transport closing the body must
// not make the server drain a body the client has not sent yet (the server
// cleans up after the handler).
type countingBody struct {
	mu  sync.Mutex // rc against release
	rc  io.ReadCloser
	n   *atomic.Int64
	err *atomic.Pointer[error] // the read error of a broken body (bad chunking, cut off)
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.rc.Read(p)
	b.mu.Unlock()
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.broke(err)
	}
	return n, err
}

// broke records the error of a broken body (out of Read, so that Read's
// own error does not escape to the heap on every call).
func (b *countingBody) broke(err error) {
	var tooLarge *http.MaxBytesError
	if !errors.As(err, &tooLarge) {
		b.err.Store(&err)
	}
}

func (b *countingBody) Close() error { return nil }

// release lets go of the body reader, which holds net/http's connection
// and buffers, once a stream was handed off (handoff.go, when the body was
// read to its end): a transport still reading gets EOF from then on.
func (b *countingBody) release() {
	b.mu.Lock()
	b.rc = http.NoBody
	b.mu.Unlock()
}

// logRequest writes the request's one log line. It runs deferred, also when
// the handler aborts the connection (an upstream failure mid-stream, or the
// client leaving), and then passes the abort on to the server.
//
// A stream handed off to a relay (handoff.go) has not ended when its
// handler returns: the relay calls endRequest when it does.
func (s *Server) logRequest(w *logWriter, r *http.Request) {
	aborted := recover()
	if w.handedOff {
		if aborted != nil {
			panic(aborted)
		}
		return
	}
	if aborted != nil {
		// The status line went out already; the log says how it ended.
		if s.cutting.Load() {
			w.reason, w.failed = reasonShutdown, false
		} else if clientLeft(r) {
			w.reason = "client left mid-response"
		} else {
			w.reason = "upstream failed mid-response"
			w.failed = true
		}
	}
	s.endRequest(w, r.Method, r.URL, aborted != nil)
	if aborted != nil {
		panic(aborted)
	}
}

// endRequest settles what the request's answer used (gateway requests),
// counts it, and writes its log line. aborted: the client's connection was
// cut off mid-response.
func (s *Server) endRequest(w *logWriter, method string, u *url.URL, aborted bool) {
	now := time.Now()
	if w.ticket != nil {
		s.settle(w, w.plan, w.ticket, now)
	}
	status := w.status
	duration := now.Sub(w.start)
	if w.stats != nil {
		if w.streaming {
			w.stats.StreamClosed()
		}
		first := w.firstByte
		if first == 0 { // no body: the headers were the first bytes
			first = w.headerAt
		}
		w.stats.Done(now, status, w.bytesIn.Load(), w.bytesOut, first, duration, w.failed)
	}
	level := slog.LevelInfo
	if aborted || status >= 500 {
		level = slog.LevelWarn
	}
	// Room for a gateway line's fields (client, model, provider, key,
	// tokens, cost, transport) without growing the slice.
	ap := lineAttrs.Get().(*[]slog.Attr)
	var attrs []slog.Attr
	defer func() {
		clear(attrs) // no request's strings kept alive in the pool
		*ap = attrs[:0]
		lineAttrs.Put(ap)
	}()
	attrs = append((*ap)[:0],
		slog.String("route", w.route),
		slog.String("method", method),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(duration.Microseconds())/1000),
		slog.Int64("bytes_in", w.bytesIn.Load()),
		slog.Int64("bytes_out", w.bytesOut),
	)
	if w.caller != nil {
		attrs = append(attrs, slog.String("client", w.caller.Name()))
	}
	if p := w.plan; p != nil {
		rep := p.Report()
		if m := p.Model(); m != "" {
			attrs = append(attrs, slog.String("model", m))
		}
		if rep.Attempts > 0 && w.route != rep.Provider {
			attrs = append(attrs, slog.String("provider", rep.Provider))
		}
		if rep.Key != "" && rep.Key != "-" {
			attrs = append(attrs, slog.String("provider_key", rep.Key))
		}
		if rep.Model != "" && rep.Model != p.Model() {
			attrs = append(attrs, slog.String("upstream_model", rep.Model))
		}
		if rep.Attempts > 1 {
			attrs = append(attrs, slog.Int("attempts", rep.Attempts), slog.String("failovers", strings.Join(rep.Failovers, "; ")))
		}
	}
	if u := &w.usage; !u.Usage.IsZero() {
		attrs = append(attrs, slog.Int64("tokens_in", u.Usage.Input), slog.Int64("tokens_out", u.Usage.Output))
		if u.Currency != "" {
			attrs = append(attrs, slog.Float64("cost", float64(u.Cost)/1e9), slog.String("currency", u.Currency))
		}
	}
	if w.report.Transport != "" {
		attrs = append(attrs, slog.String("transport", w.report.Transport))
	}
	if w.report.Fallback != "" {
		attrs = append(attrs, slog.String("fallback", string(w.report.Fallback)))
	}
	if w.reason != "" {
		attrs = append(attrs, slog.String("error", w.reason))
	}
	if w.wsEnd != "" {
		attrs = append(attrs, slog.String("websocket_end", w.wsEnd), slog.Int("websocket_close", w.wsCode))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		// Debug only, and redacted: the token segment, key= values and
		// Telegram bot tokens never reach the log. A first segment that
		// was refused as a token may be a near miss of the token: never
		// logged at all.
		uri := u.RequestURI()
		if w.refusedToken {
			_, rest := splitSegment(u.EscapedPath())
			uri = "/" + privacy.Placeholder + rest
		}
		attrs = append(attrs, slog.String("path", s.redact.String(uri)))
	}
	// The handler is called directly: Logger.LogAttrs would walk the stack
	// for the caller's PC on every request, and no handler llmproxy sets up
	// prints a source.
	h := s.log.Handler()
	if !h.Enabled(context.Background(), level) {
		return
	}
	if ah, ok := h.(attrsHandler); ok {
		ah.HandleAttrs(now, level, "request", attrs)
		return
	}
	rec := slog.NewRecord(now, level, "request", 0)
	rec.AddAttrs(attrs...)
	h.Handle(context.Background(), rec)
}

// attrsHandler is a log handler that also takes a record as its parts, the
// attributes in a slice (cmd/llmproxy's JSON handler): the request line,
// written for every request, then is not copied into a slog.Record, whose
// room for five attributes it outgrows. HandleAttrs must not keep attrs or
// anything in it past its return: the slice is cleared and reused. (A
// handler wrapping another must not pass this method on by embedding it,
// or the request line would bypass its Handle.)
type attrsHandler interface {
	HandleAttrs(t time.Time, level slog.Level, msg string, attrs []slog.Attr) error
}

// lineAttrs holds the request line's attribute slices between requests.
var lineAttrs = sync.Pool{New: func() any { a := make([]slog.Attr, 0, 16); return &a }}
