// Package socket is llmproxy's private transport: an http.RoundTripper that
// dials the upstream itself, does TLS itself (ALPN http/1.1 only), writes a
// minimal HTTP/1.1 request by hand and parses the answer with
// http.ReadResponse. Nothing is added to the request but the Host header and
// one framing header of its own, so the upstream sees exactly the headers the
// privacy policy let through.
package socket

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/llmproxy/llmproxy/internal/clock"
	"github.com/llmproxy/llmproxy/internal/sockio"
	"github.com/llmproxy/llmproxy/replay"
)

var _ http.RoundTripper = (*Transport)(nil)

// Transport is an HTTP/1.1 round tripper over connections it dials and pools
// itself. The zero value is ready to use with the defaults below.
type Transport struct {
	// DialContext opens TCP connections (directly, through an egress proxy,
	// or through the address guard). Default: a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSClientConfig holds the roots trusted for upstream certificates.
	// ServerName and NextProtos are set per connection. Default: system roots.
	TLSClientConfig *tls.Config
	// DialTimeout bounds the TCP connect. Default 10s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Default 10s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request is written. A non-streaming completion only answers when the
	// model is done, so the default is generous: 10m.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout is the longest a response body may stay silent, or a write
	// may stall. There is no cap on a whole response: a stream that keeps
	// moving may run for hours. Default 5m.
	IdleTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections are kept per upstream.
	// Default 64.
	MaxIdleConnsPerHost int
	// IdleConnTimeout is how long an idle connection is kept. Default 90s.
	IdleConnTimeout time.Duration
	// MaxResponseHeaderBytes bounds the response's header section, 1xx
	// answers included. Default 1 MiB, as fetch.
	MaxResponseHeaderBytes int64

	endpoints sync.Map // endpointKey → endpoint

	mu         sync.Mutex
	idle       map[string]*idleList
	tlsConfigs map[string]*tls.Config
	sweeping   bool
	sessions   tls.ClientSessionCache

	// probeRead replaces probeWait in tests: a negative one makes every
	// probe read time out before it starts, as on an overloaded machine.
	probeRead time.Duration
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (t *Transport) dialTimeout() time.Duration { return orDefault(t.DialTimeout, 10*time.Second) }
func (t *Transport) handshakeTimeout() time.Duration {
	return orDefault(t.TLSHandshakeTimeout, 10*time.Second)
}
func (t *Transport) headerTimeout() time.Duration {
	return orDefault(t.ResponseHeaderTimeout, 10*time.Minute)
}
func (t *Transport) idleTimeout() time.Duration { return orDefault(t.IdleTimeout, 5*time.Minute) }
func (t *Transport) idleConnTimeout() time.Duration {
	return orDefault(t.IdleConnTimeout, 90*time.Second)
}

func (t *Transport) probeWait() time.Duration {
	if t.probeRead != 0 {
		return t.probeRead
	}
	return probeWait
}

func (t *Transport) maxHeaderBytes() int64 {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeaderBytes
}

// DefaultMaxResponseHeaderBytes is the default bound on a response's
// header section: no API sends more than a few kilobytes of headers.
const DefaultMaxResponseHeaderBytes = 1 << 20

func (t *Transport) maxIdle() int {
	if t.MaxIdleConnsPerHost > 0 {
		return t.MaxIdleConnsPerHost
	}
	return 64
}

// RoundTrip sends req and returns the response headers; the body streams from
// the connection. Cancelling req's context closes the connection at once,
// during the round trip and while the body is read.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	target, err := t.endpoint(req.URL)
	if err == nil {
		err = checkRequest(req)
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, err := t.getConn(ctx, target)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the upstream closed just as we picked it: the
		// request never got through, so one more try on a fresh connection
		// is safe when the body can be sent again.
		var se *Error
		if attempt == 0 && c.reused && errors.As(err, &se) && retryable(req, se) {
			if next, ok := replay.Rewind(req); ok {
				req = next
				continue
			}
		}
		closeBody(req)
		return nil, err
	}
}

// endpoint returns where a URL's requests go, computed once per scheme and
// host.
func (t *Transport) endpoint(u *url.URL) (endpoint, error) {
	if u == nil {
		return endpointOf(u)
	}
	key := endpointKey{u.Scheme, u.Host}
	if ep, ok := t.endpoints.Load(key); ok {
		return ep.(endpoint), nil
	}
	ep, err := endpointOf(u)
	if err == nil {
		t.endpoints.Store(key, ep)
	}
	return ep, err
}

// retryable follows net/http: a request of which nothing was written may go
// again; one that was written to a connection that then closed without a
// response only when it is idempotent, since the upstream may have acted on
// it.
func retryable(req *http.Request, e *Error) bool {
	if e.Op == OpWrite && !e.Sent {
		return true
	}
	if e.Op == OpWrite || e.Op == OpRead && errors.Is(e.Err, ErrNoResponse) {
		return idempotent(req)
	}
	return false
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	return ok
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// CloseIdleConnections closes every pooled connection.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, l := range idle {
		for _, c := range l.conns {
			c.nc.Close()
		}
	}
}

// getConn returns a live pooled connection to target or dials a new one.
func (t *Transport) getConn(ctx context.Context, target endpoint) (*conn, error) {
	now := clock.Now()
	for {
		c := t.popIdle(target.key, now)
		if c == nil {
			break
		}
		// A connection pooled a moment ago is taken without a probe: on a
		// busy proxy, where the probe's syscall per request costs, a
		// connection comes back into use within a millisecond or two.
		// Anything idle longer is checked: some upstreams close a
		// keep-alive connection soon after answering without saying so.
		if now.Sub(c.idleAt) < freshIdle || c.alive() {
			c.reused = true
			return c, nil
		}
		c.nc.Close()
	}
	return t.dial(ctx, target)
}

// freshIdle is how long after its last answer a pooled connection is
// reused without checking it for a close by the upstream.
const freshIdle = 5 * time.Millisecond

// idleList is one endpoint's pooled connections, oldest first. The pool
// maps to a pointer so that taking or returning a connection hashes the
// key once.
type idleList struct{ conns []*conn }

func (t *Transport) popIdle(key string, now time.Time) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[key]
	if l == nil {
		return nil
	}
	for len(l.conns) > 0 {
		// Newest first: the least likely to have been closed by the upstream.
		c := l.conns[len(l.conns)-1]
		l.conns[len(l.conns)-1] = nil
		l.conns = l.conns[:len(l.conns)-1]
		if now.Sub(c.idleAt) < t.idleConnTimeout() {
			return c
		}
		c.nc.Close()
	}
	return nil
}

// putIdle pools c for reuse, or closes it when the pool is full.
func (t *Transport) putIdle(c *conn) {
	c.idleAt = clock.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[string]*idleList)
	}
	l := t.idle[c.key]
	if l == nil {
		l = &idleList{}
		t.idle[c.key] = l
	}
	if len(l.conns) >= t.maxIdle() {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	l.conns = append(l.conns, c)
	if !t.sweeping {
		t.sweeping = true
		time.AfterFunc(t.idleConnTimeout(), t.sweep)
	}
	t.mu.Unlock()
}

// sweep closes connections idle for longer than IdleConnTimeout, so that
// they do not hold sockets until the next request to the same upstream.
func (t *Transport) sweep() {
	var expired []*conn
	t.mu.Lock()
	for key, l := range t.idle {
		conns := l.conns
		kept := conns[:0]
		for _, c := range conns {
			if time.Since(c.idleAt) >= t.idleConnTimeout() {
				expired = append(expired, c)
			} else {
				kept = append(kept, c)
			}
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(t.idle, key)
		} else {
			l.conns = kept
		}
	}
	t.sweeping = len(t.idle) > 0
	if t.sweeping {
		time.AfterFunc(t.idleConnTimeout()/2, t.sweep)
	}
	t.mu.Unlock()
	for _, c := range expired {
		c.nc.Close()
	}
}

// tlsConfig returns the client TLS config for a server name, cached.
func (t *Transport) tlsConfig(serverName string) *tls.Config {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cfg, ok := t.tlsConfigs[serverName]; ok {
		return cfg
	}
	var cfg *tls.Config
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = serverName
	// Only HTTP/1.1: an HTTP/2-only upstream then fails the handshake or the
	// ALPN check, before anything is sent, and auto mode falls back to fetch.
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.ClientSessionCache == nil {
		if t.sessions == nil {
			t.sessions = tls.NewLRUClientSessionCache(256)
		}
		cfg.ClientSessionCache = t.sessions
	}
	if t.tlsConfigs == nil {
		t.tlsConfigs = make(map[string]*tls.Config)
	}
	t.tlsConfigs[serverName] = cfg
	return cfg
}

// dial opens a new connection on a goroutine of its own, as net/http does:
// the TLS handshake's deep stack (its post-quantum key exchange keeps large
// arrays on the stack) then does not grow the request's goroutine, which
// may go on to hold a stream open for hours.
func (t *Transport) dial(ctx context.Context, target endpoint) (*conn, error) {
	type result struct {
		c   *conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := t.dialConn(ctx, target)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() { // the dial ends soon after its context; tidy up
			if r := <-ch; r.c != nil {
				r.c.nc.Close()
			}
		}()
		return nil, &Error{Op: OpDial, Err: ctx.Err()}
	}
}

func (t *Transport) dialConn(ctx context.Context, target endpoint) (*conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, t.dialTimeout())
	defer cancel()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	nc, err := dial(dialCtx, "tcp", target.addr)
	if err != nil {
		return nil, &Error{Op: OpDial, Err: ctxErr(ctx, err)}
	}
	tcp := nc
	ic := &idleConn{Conn: sockio.Wrap(nc)}
	nc = ic
	if target.tls {
		tc := tls.Client(ic, t.tlsConfig(target.serverName))
		hsCtx, cancel := context.WithTimeout(ctx, t.handshakeTimeout())
		err := tc.HandshakeContext(hsCtx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, &Error{Op: OpTLS, Err: ctxErr(ctx, err)}
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			nc.Close()
			return nil, &Error{Op: OpTLS, Err: ErrALPN}
		}
		nc = tc
	}
	return newConn(t, target.key, nc, ic, tcp), nil
}

// ctxErr prefers the context's error when the context ended the step, so
// that a client leaving reads as context.Canceled and not as a net error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &timeoutError{"timeout: " + err.Error()}
	}
	return err
}

var _ io.ReadWriteCloser = (*upgraded)(nil)
