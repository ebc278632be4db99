// Package fallback chooses the transport for a request: the private socket
// transport first and, in auto mode, the net/http fetch transport when the
// socket path fails in a way that proves the request never left (DNS,
// connection refused, TLS handshake, an HTTP/2-only upstream). A request that
// may have reached the upstream is not sent again, unless the operator turned
// on aggressive fallback and the body can be replayed: LLM requests are not
// idempotent and a second send can be billed twice.
package fallback

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/llmproxy/llmproxy/replay"
	"github.com/llmproxy/llmproxy/socket"
)

// Mode selects the transport.
type Mode string

const (
	Auto   Mode = "auto"   // socket, else fetch
	Socket Mode = "socket" // socket only
	Fetch  Mode = "fetch"  // net/http only
)

// ParseMode parses a transport name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, Socket, Fetch:
		return m, nil
	}
	return "", fmt.Errorf("transport must be auto, socket or fetch, not %q", s)
}

var _ http.RoundTripper = (*Transport)(nil)

// Transport sends requests for one preset (or for generic mode).
type Transport struct {
	Socket http.RoundTripper
	Fetch  http.RoundTripper
	Mode   Mode // default Auto
	// Aggressive also falls back after the request was sent but before any
	// response header arrived. The body is buffered (up to MaxReplayBody) so
	// it can go out again.
	Aggressive bool
	// MaxReplayBody bounds the body buffered for aggressive fallback; a
	// larger body streams and cannot fall back once sent. Default 32 MiB.
	MaxReplayBody int64
	// OnFallback, if set, is called once for every request that falls back,
	// with the reason (one of the Reason constants).
	OnFallback func(req *http.Request, reason Reason)
	// Blocked reports errors that must never fall back (the address guard
	// refused the destination: fetch would refuse it too).
	Blocked func(error) bool

	mu        sync.Mutex
	fetchOnly map[string]time.Time // upstreams known to refuse HTTP/1.1
}

// Reason says why a request fell back to fetch. The set is small and fixed
// so that it can label metrics.
type Reason string

const (
	ReasonDNS         Reason = "dns"
	ReasonRefused     Reason = "refused"
	ReasonDialTimeout Reason = "dial_timeout"
	ReasonDial        Reason = "dial"
	ReasonTLS         Reason = "tls"
	ReasonALPN        Reason = "alpn"       // HTTP/2-only upstream
	ReasonRemembered  Reason = "http2_only" // upstream known to need HTTP/2
	ReasonWrite       Reason = "write"
	ReasonAfterSend   Reason = "after_send" // aggressive fallback
)

// rememberFetch is how long an upstream that refused HTTP/1.1 goes straight
// to fetch, sparing every request a failed handshake.
const rememberFetch = 10 * time.Minute

// RoundTrip sends req over the transport its mode selects.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rep := ReportFrom(req.Context())
	switch t.Mode {
	case Socket:
		rep.Transport = string(Socket)
		return t.Socket.RoundTrip(req)
	case Fetch:
		rep.Transport = string(Fetch)
		return t.Fetch.RoundTrip(req)
	}
	if t.knownFetchOnly(req.URL.Host) {
		rep.Transport, rep.Fallback = string(Fetch), ReasonRemembered
		return t.Fetch.RoundTrip(req)
	}

	if t.Aggressive {
		var err error
		if req, err = t.replayable(req); err != nil {
			return nil, err
		}
	}
	// The socket transport closes the body it was given; the original stays
	// open so that fetch can still send it if the socket never touched it.
	body := req.Body
	first := req
	if body != nil && body != http.NoBody {
		r := *req
		r.Body = noClose{body}
		first = &r
	}
	rep.Transport = string(Socket)
	resp, err := t.Socket.RoundTrip(first)
	if err == nil {
		if body != nil {
			body.Close()
		}
		return resp, nil
	}
	next, reason, ok := t.fallback(req, err)
	if !ok {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	rep.Transport, rep.Fallback = string(Fetch), reason
	if t.OnFallback != nil {
		t.OnFallback(req, reason)
	}
	resp, err = t.Fetch.RoundTrip(next)
	// The socket's handshake failed where net/http's, offering HTTP/2,
	// succeeded: the upstream wants HTTP/2. Spare the next requests the
	// doomed handshake.
	if err == nil && resp.ProtoMajor == 2 && (reason == ReasonALPN || reason == ReasonTLS) {
		t.rememberFetchOnly(req.URL.Host)
	}
	return resp, err
}

// fallback decides whether a failed socket round trip may go again over
// fetch, and with which request.
func (t *Transport) fallback(req *http.Request, err error) (*http.Request, Reason, bool) {
	var se *socket.Error
	if !errors.As(err, &se) || req.Context().Err() != nil {
		return nil, "", false
	}
	if t.Blocked != nil && t.Blocked(err) {
		return nil, "", false
	}
	switch {
	case se.BodyIntact():
		return req, classify(se), true
	case se.NothingSent():
		if next, ok := replay.Rewind(req); ok {
			return next, ReasonWrite, true
		}
	case t.Aggressive && (se.Op == socket.OpWrite || se.Op == socket.OpRead):
		if next, ok := replay.Rewind(req); ok {
			return next, ReasonAfterSend, true
		}
	}
	return nil, "", false
}

func classify(se *socket.Error) Reason {
	err := se.Err
	var dnsErr *net.DNSError
	var alert tls.AlertError
	switch {
	case errors.Is(err, socket.ErrALPN):
		return ReasonALPN
	case errors.As(err, &alert) && alert == 120: // no_application_protocol
		return ReasonALPN
	case se.Op == socket.OpTLS:
		return ReasonTLS
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case se.Timeout():
		return ReasonDialTimeout
	}
	return ReasonDial
}

func (t *Transport) knownFetchOnly(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.fetchOnly[host]
	if ok && time.Now().After(until) {
		delete(t.fetchOnly, host)
		return false
	}
	return ok
}

func (t *Transport) rememberFetchOnly(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fetchOnly == nil {
		t.fetchOnly = make(map[string]time.Time)
	}
	t.fetchOnly[host] = time.Now().Add(rememberFetch)
}

// replayable buffers req's body so that it can be sent twice. A body
// larger than MaxReplayBody streams, without aggressive fallback.
func (t *Transport) replayable(req *http.Request) (*http.Request, error) {
	limit := t.MaxReplayBody
	if limit <= 0 {
		limit = 32 << 20
	}
	r := *req
	if _, err := replay.Buffer(&r, limit); err != nil {
		return nil, &socket.Error{Op: socket.OpBody, Err: err}
	}
	return &r, nil
}

type noClose struct{ io.Reader }

func (noClose) Close() error { return nil }

// Report records which transport carried a request and why it fell back, for
// the request's log line.
type Report struct {
	Transport string
	Fallback  Reason
}

type reportKey struct{}

// WithReport returns a context whose round trips fill in r.
func WithReport(ctx context.Context, r *Report) context.Context {
	return context.WithValue(ctx, reportKey{}, r)
}

// ReportFrom returns the context's Report, or a throwaway one.
func ReportFrom(ctx context.Context) *Report {
	if r, ok := ctx.Value(reportKey{}).(*Report); ok {
		return r
	}
	return &Report{}
}
