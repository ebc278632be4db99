// Package fetch is the fallback transport: net/http's Transport, HTTP/2
// capable, tuned to send exactly the headers the socket transport sends. It
// adds no User-Agent and no Accept-Encoding, follows no redirect (a Transport
// never does; only http.Client would), and reads no proxy from the
// environment: egress goes through the same dialer as the socket transport.
package fetch

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/llmproxy/llmproxy/internal/sockio"
)

var _ http.RoundTripper = (*Transport)(nil)

// Options configure New. Zero fields take the defaults named, which match
// the socket transport's.
type Options struct {
	// DialContext opens TCP connections. Default: a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig holds the trusted roots. Default: system roots.
	TLSClientConfig *tls.Config
	// DialTimeout default 10s; TLSHandshakeTimeout default 10s;
	// ResponseHeaderTimeout default 10m; IdleTimeout (longest silence on a
	// response body, longest write without progress) default 5m.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	IdleTimeout           time.Duration
	// MaxIdleConnsPerHost default 64; IdleConnTimeout default 90s.
	MaxIdleConnsPerHost int
	IdleConnTimeout     time.Duration
	// MaxResponseHeaderBytes bounds a response's header section. Default
	// 1 MiB, as the socket transport (net/http's own default is 10 MiB).
	MaxResponseHeaderBytes int64
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Transport wraps an *http.Transport with the idle timeouts net/http lacks
// and the header normalisation that keeps it in step with socket.
type Transport struct {
	base *http.Transport
	idle time.Duration
}

// New returns a fetch transport.
func New(opts Options) *Transport {
	dial := opts.DialContext
	dialTimeout := orDefault(opts.DialTimeout, 10*time.Second)
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	maxIdle := opts.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = 64
	}
	idle := orDefault(opts.IdleTimeout, 5*time.Minute)
	var tlsConfig *tls.Config
	if opts.TLSClientConfig != nil {
		tlsConfig = opts.TLSClientConfig.Clone()
	}
	base := &http.Transport{
		Proxy: nil, // never HTTP_PROXY from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newIdleConn(sockio.Wrap(c), idle), nil
		},
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    orDefault(opts.TLSHandshakeTimeout, 10*time.Second),
		ResponseHeaderTimeout:  orDefault(opts.ResponseHeaderTimeout, 10*time.Minute),
		IdleConnTimeout:        orDefault(opts.IdleConnTimeout, 90*time.Second),
		MaxIdleConnsPerHost:    maxIdle,
		MaxResponseHeaderBytes: cmp.Or(max(opts.MaxResponseHeaderBytes, 0), 1<<20),
		DisableCompression:     true, // no Accept-Encoding of our own
		ForceAttemptHTTP2:      true, // a custom dialer would otherwise turn HTTP/2 off
	}
	return &Transport{base: base, idle: idle}
}

// RoundTrip sends req. A write to the upstream (the request, its body) that
// makes no progress for IdleTimeout fails the round trip with an error that
// is ErrIdleTimeout (errors.Is) and closes the connection, HTTP/2's with
// all its streams; the response body fails with ErrIdleTimeout when it
// stays silent for IdleTimeout.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	out := req.WithContext(ctx) // the one copy: the caller's request stays as it is
	if _, ok := req.Header["User-Agent"]; !ok {
		// An empty User-Agent tells net/http (HTTP/1.1 and HTTP/2) to send
		// none instead of its Go-http-client default. The map is copied,
		// not the values: they are only read.
		out.Header = maps.Clone(req.Header)
		if out.Header == nil {
			out.Header = make(http.Header, 1)
		}
		out.Header["User-Agent"] = []string{""}
	}
	var conn net.Conn
	if _, ok := req.Header["Upgrade"]; ok {
		// A WebSocket's connection leaves the write timeout behind, as the
		// socket transport's does: the relay keeps its own.
		out = out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn },
		}))
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		cancel(nil)
		if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
			err = cause
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// A WebSocket: the caller owns the connection from here on. The
		// request context must not close it later, so it is left to end with
		// the caller's context.
		context.AfterFunc(req.Context(), func() { cancel(nil) })
		if tc, ok := conn.(*tls.Conn); ok {
			conn = tc.NetConn()
		}
		if ic, ok := conn.(*idleConn); ok {
			ic.stopWrite()
		}
		return resp, nil
	}
	resp.Body = newIdleBody(ctx, resp.Body, t.idle, cancel)
	return resp, nil
}

// CloseIdleConnections closes pooled connections.
func (t *Transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// ErrIdleTimeout is the error of a response body that stayed silent for the
// idle timeout, or of a write that made no progress for it. It is a
// net.Error with Timeout() true.
var ErrIdleTimeout error = idleTimeoutError{}

type idleTimeoutError struct{}

func (idleTimeoutError) Error() string   { return "upstream idle for too long" }
func (idleTimeoutError) Timeout() bool   { return true }
func (idleTimeoutError) Temporary() bool { return true }

// idleBody cancels the request when a read waits on the upstream for longer
// than the idle duration. The clock runs only inside Read, from its start,
// as the socket transport's does: a slow client is not an idle upstream,
// and the cut never comes before the full idle time since the last byte
// (which came no later than the start of this Read).
type idleBody struct {
	ctx   context.Context
	rc    io.ReadCloser
	idle  time.Duration
	timer *time.Timer
	stop  context.CancelCauseFunc
}

func newIdleBody(ctx context.Context, rc io.ReadCloser, idle time.Duration, cancel context.CancelCauseFunc) *idleBody {
	timer := time.AfterFunc(idle, func() { cancel(ErrIdleTimeout) })
	timer.Stop()
	return &idleBody{ctx: ctx, rc: rc, idle: idle, timer: timer, stop: cancel}
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	fired := !b.timer.Stop()
	if err != nil && (fired || context.Cause(b.ctx) == ErrIdleTimeout) {
		// The timer cancelled this read, or an earlier one that returned
		// data just as it fired. Even io.EOF is no clean end then: closing
		// the connection sends a TLS close_notify, and an HTTP/1.1 upstream
		// may answer it by ending its response, which would read as the
		// stream's end though the stream was cut.
		err = ErrIdleTimeout
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.stop(nil)
	return err
}
