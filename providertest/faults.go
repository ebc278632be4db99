package providertest

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// FaultRequest describes one request a fake received. A fake's Fault hook
// gets it to decide how to misbehave, and its Respond hook to decide what to
// answer. The hooks run on the server's handler goroutines, concurrently
// when requests are: guard what they share with the test.
type FaultRequest struct {
	N      int    // 1-based number of this request among all the fake received
	KeyN   int    // 1-based number among the requests that carried the same Key
	Key    string // the credential, read where the fake expects it; "" when there is none
	Model  string // from the body (OpenAI, Anthropic) or the path (Gemini); "" when none
	Path   string // URL path, e.g. "/v1/chat/completions"
	Stream bool   // the client asked for a stream
	Header http.Header
	Body   []byte
}

type faultKind int

const (
	faultNone faultKind = iota
	faultStatus
	faultRateLimited
	faultQuota
	faultContextLength
	faultReset
	faultHang
	faultCutBeforeFirstByte
	faultCutAfter
	faultEndEarly
)

// Fault is how a fake misbehaves on one request. The zero Fault answers
// normally. Build one with the constructors below; the same Fault works for
// every fake, which renders error bodies in its own provider's format.
type Fault struct {
	kind       faultKind
	status     int
	code       string
	message    string
	retryAfter string
	events     int
	header     http.Header
}

// Status answers with the HTTP status code and an error body in the fake's
// format, with the provider's usual error type and message for that status
// (e.g. 401 invalid_api_key / authentication_error / UNAUTHENTICATED,
// 503 server_error / UNAVAILABLE, 529 overloaded_error). It panics if code
// is not a three-digit status, which net/http would refuse to send.
func Status(code int) Fault {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("providertest.Status(%d): not an HTTP status code", code))
	}
	return Fault{kind: faultStatus, status: code}
}

// RateLimited answers 429 with the provider's rate-limit error. retryAfter
// (e.g. "7"; "" for none) goes into a Retry-After header for OpenAI and
// Anthropic; Gemini sends no such header but a google.rpc.RetryInfo detail
// with retryDelay "7s", so the fake does that.
func RateLimited(retryAfter string) Fault {
	return Fault{kind: faultRateLimited, status: http.StatusTooManyRequests, retryAfter: retryAfter}
}

// QuotaExceeded answers as a provider does when the key's credit is gone:
// OpenAI 429 insufficient_quota, Anthropic 400 invalid_request_error "Your
// credit balance is too low…", Gemini 429 RESOURCE_EXHAUSTED with a
// QuotaFailure detail. Unlike a rate limit, waiting does not help.
func QuotaExceeded() Fault { return Fault{kind: faultQuota} }

// ContextLengthExceeded answers 400 as the provider does for a prompt over
// the model's context window (OpenAI code context_length_exceeded, Anthropic
// "prompt is too long", Gemini "input token count … exceeds"). Another key
// or retry does not help.
func ContextLengthExceeded() Fault {
	return Fault{kind: faultContextLength, status: http.StatusBadRequest}
}

// ResetBeforeHeaders resets the connection (TCP RST) before any byte of the
// response. Under HTTP/2 the stream is reset instead.
func ResetBeforeHeaders() Fault { return Fault{kind: faultReset} }

// Hang never answers: the handler waits until the client gives up (the
// request's context ends) or the fake shuts down, then drops the connection.
func Hang() Fault { return Fault{kind: faultHang} }

// CutBeforeFirstByte sends 200 with the usual headers (text/event-stream
// for a stream), flushes them, then resets the connection before the first
// body byte: the failure a client sees after it has committed to a stream.
func CutBeforeFirstByte() Fault { return Fault{kind: faultCutBeforeFirstByte} }

// CutAfterEvents sends n events of the stream (SSE events, or elements of
// Gemini's JSON array; the first OpenAI chunk, which carries only the role,
// counts) and then resets the connection. The events that end a stream
// (finish_reason, usage, [DONE], message_delta, message_stop, Gemini's
// finishReason chunk, response.completed) are never sent, so n is capped
// just before them. A non-streaming answer is cut halfway through its body.
func CutAfterEvents(n int) Fault { return Fault{kind: faultCutAfter, events: max(n, 0)} }

// EndEarly sends n events of the stream, capped like CutAfterEvents, then
// ends the response cleanly (the terminating chunk, then FIN, since it also
// sends Connection: close): no finish_reason, no [DONE], no message_stop.
// SDKs that do not check for the stream's proper end report success. A
// non-streaming answer ends cleanly halfway through its JSON.
func EndEarly(n int) Fault { return Fault{kind: faultEndEarly, events: max(n, 0)} }

// WithHeader returns f with a response header added, e.g.
// Status(503).WithHeader("Retry-After", "2").
func (f Fault) WithHeader(key, value string) Fault {
	h := f.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Add(key, value)
	f.header = h
	return f
}

// WithCode returns f with the provider's machine-readable reason replaced:
// OpenAI's error.code, Anthropic's error.type, Gemini's error.status.
func (f Fault) WithCode(code string) Fault { f.code = code; return f }

// WithMessage returns f with the error message replaced.
func (f Fault) WithMessage(msg string) Fault { f.message = msg; return f }

// Sequence returns a Fault hook that gives request N (overall, 1-based)
// faults[N-1] and every later request no fault: Sequence(Status(503)) fails
// the first request only.
func Sequence(faults ...Fault) func(FaultRequest) Fault {
	return func(r FaultRequest) Fault {
		if r.N >= 1 && r.N <= len(faults) {
			return faults[r.N-1]
		}
		return Fault{}
	}
}

// String describes f the way it was built, e.g. "RateLimited(7)", for
// test logs.
func (f Fault) String() string {
	var s string
	switch f.kind {
	case faultNone:
		return "no fault"
	case faultStatus:
		s = fmt.Sprintf("Status(%d)", f.status)
	case faultRateLimited:
		s = fmt.Sprintf("RateLimited(%q)", f.retryAfter)
	case faultQuota:
		s = "QuotaExceeded()"
	case faultContextLength:
		s = "ContextLengthExceeded()"
	case faultReset:
		s = "ResetBeforeHeaders()"
	case faultHang:
		s = "Hang()"
	case faultCutBeforeFirstByte:
		s = "CutBeforeFirstByte()"
	case faultCutAfter:
		s = fmt.Sprintf("CutAfterEvents(%d)", f.events)
	case faultEndEarly:
		s = fmt.Sprintf("EndEarly(%d)", f.events)
	}
	for _, k := range slices.Sorted(maps.Keys(f.header)) {
		for _, v := range f.header[k] {
			s += fmt.Sprintf(".WithHeader(%q, %q)", k, v)
		}
	}
	if f.code != "" {
		s += fmt.Sprintf(".WithCode(%q)", f.code)
	}
	if f.message != "" {
		s += fmt.Sprintf(".WithMessage(%q)", f.message)
	}
	return s
}

// isError reports whether f answers with an error status.
func (f Fault) isError() bool {
	switch f.kind {
	case faultStatus, faultRateLimited, faultQuota, faultContextLength:
		return true
	}
	return false
}

// retryDelaySeconds is Retry-After as a number of seconds, or -1 when it is
// absent or an HTTP-date (RFC 9110 §10.2.3 allows both).
func (f Fault) retryDelaySeconds() int {
	n, err := strconv.Atoi(f.retryAfter)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// core is what the three fakes share: request numbering, per-key counts,
// the Fault hook, the chunk delay and shutdown.
type core struct {
	fault func(FaultRequest) Fault
	delay time.Duration
	done  chan struct{}

	mu     sync.Mutex
	n      int
	perKey map[string]int
}

func newCore(fault func(FaultRequest) Fault, delay time.Duration) *core {
	return &core{fault: fault, delay: delay, done: make(chan struct{}), perKey: map[string]int{}}
}

// begin numbers a request and asks the Fault hook about it.
func (c *core) begin(r *http.Request, body []byte, key, model string, stream bool) (FaultRequest, Fault) {
	c.mu.Lock()
	c.n++
	c.perKey[key]++
	fr := FaultRequest{
		N: c.n, KeyN: c.perKey[key], Key: key, Model: model, Path: r.URL.Path,
		Stream: stream, Header: r.Header.Clone(), Body: body,
	}
	c.mu.Unlock()
	var f Fault
	if c.fault != nil {
		f = c.fault(fr)
	}
	return fr, f
}

func (c *core) keyRequests(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perKey[key]
}

// answer writes one response, applying the request's Fault.
type answer struct {
	w     http.ResponseWriter
	r     *http.Request
	f     Fault
	delay time.Duration
	done  <-chan struct{}
}

func (c *core) answer(w http.ResponseWriter, r *http.Request, f Fault) *answer {
	for k, vs := range f.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	return &answer{w: w, r: r, f: f, delay: c.delay, done: c.done}
}

// early carries out the faults that strike before a response starts. It
// reports whether it answered (the caller must then stop).
func (a *answer) early() bool {
	switch a.f.kind {
	case faultReset:
		abort(a.w)
		return true
	case faultHang:
		select {
		case <-a.r.Context().Done():
		case <-a.done:
		}
		abort(a.w)
		return true
	}
	return false
}

// start writes a 200 with the content type and flushes it. It reports false
// when the Fault cut the connection right there.
func (a *answer) start(contentType string) bool {
	h := a.w.Header()
	h.Set("Content-Type", contentType)
	if contentType == "text/event-stream" {
		h.Set("Cache-Control", "no-cache")
	}
	if a.f.kind == faultEndEarly {
		h.Set("Connection", "close")
	}
	a.w.WriteHeader(http.StatusOK)
	http.NewResponseController(a.w).Flush()
	if a.f.kind == faultCutBeforeFirstByte {
		abort(a.w)
		return false
	}
	return true
}

// body writes a whole non-streaming answer.
func (a *answer) body(contentType string, b []byte) {
	cut := a.f.kind == faultCutAfter || a.f.kind == faultEndEarly
	if !cut && a.f.kind != faultCutBeforeFirstByte {
		a.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	}
	if !a.start(contentType) {
		return
	}
	if cut {
		b = b[:len(b)/2]
	}
	a.w.Write(b)
	if a.f.kind == faultCutAfter {
		http.NewResponseController(a.w).Flush()
		abort(a.w)
	}
}

// stream writes framed events; events[end:] are the ones that close the
// stream, which CutAfterEvents and EndEarly never send. ChunkDelay passes
// before every event but the first.
func (a *answer) stream(contentType string, events [][]byte, end int) {
	if !a.start(contentType) {
		return
	}
	limit := len(events)
	if a.f.kind == faultCutAfter || a.f.kind == faultEndEarly {
		limit = min(a.f.events, end)
	}
	rc := http.NewResponseController(a.w)
	for i, ev := range events[:limit] {
		if i > 0 && a.delay > 0 {
			t := time.NewTimer(a.delay)
			select {
			case <-t.C:
			case <-a.r.Context().Done():
				t.Stop()
				return
			case <-a.done:
				t.Stop()
				abort(a.w)
				return
			}
		}
		if _, err := a.w.Write(ev); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if a.f.kind == faultCutAfter {
		abort(a.w)
	}
}

// abort drops the connection with a TCP RST; whatever the handler wrote
// must have been flushed, since hijacking discards the writer's buffer.
// Closing the TLS connection
// would send close_notify first, which a client may read as a clean end, so
// the TCP socket underneath is closed with SO_LINGER 0. Under HTTP/2, which
// cannot be hijacked, the handler panics with http.ErrAbortHandler and the
// server resets the stream (RST_STREAM).
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}
