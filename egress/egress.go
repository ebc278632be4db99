// Package egress opens the TCP connections that carry upstream traffic:
// directly, or through the operator's SOCKS5 or HTTP CONNECT proxy. Both
// transports and the WebSocket relay dial through the same Dialer, so
// --egress-proxy covers all upstream traffic and nothing reads HTTP_PROXY
// from the environment.
package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// Dialer opens a TCP connection to addr ("host:port").
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options configure New.
type Options struct {
	// Proxy is the egress proxy URL: socks5://[user:pass@]host:port or
	// http://[user:pass@]host:port. Empty means dial directly.
	Proxy string
	// Timeout bounds the TCP connect (and, through a proxy, the proxy
	// handshake). Default 10s.
	Timeout time.Duration
	// Forward dials the proxy itself, or the target when there is no proxy.
	// Default: a net.Dialer with Timeout and 30s TCP keep-alive.
	Forward Dialer
}

// New returns a Dialer for opts. A malformed proxy URL is an error that
// never repeats the URL, which may hold credentials.
func New(opts Options) (Dialer, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	forward := opts.Forward
	if forward == nil {
		forward = &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}
	}
	if opts.Proxy == "" {
		return forward, nil
	}
	u, err := url.Parse(opts.Proxy)
	if err != nil || u.Host == "" || u.Port() == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, errors.New("egress proxy must look like socks5://host:port or http://host:port")
	}
	switch u.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if u.User != nil {
			pass, _ := u.User.Password()
			auth = &proxy.Auth{User: u.User.Username(), Password: pass}
		}
		d, err := proxy.SOCKS5("tcp", u.Host, auth, contextDialer{forward})
		if err != nil {
			return nil, errors.New("egress proxy: bad SOCKS5 settings")
		}
		return timeoutDialer{d.(proxy.ContextDialer), opts.Timeout}, nil
	case "http":
		c := &connectDialer{forward: forward, addr: u.Host, timeout: opts.Timeout}
		if u.User != nil {
			pass, _ := u.User.Password()
			c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
		}
		return c, nil
	default:
		return nil, errors.New("egress proxy scheme must be socks5 or http")
	}
}

// contextDialer adapts a Dialer to proxy.ContextDialer (and proxy.Dialer).
type contextDialer struct{ Dialer }

func (c contextDialer) Dial(network, addr string) (net.Conn, error) {
	return c.DialContext(context.Background(), network, addr)
}

// timeoutDialer bounds a whole proxied dial, handshake included.
type timeoutDialer struct {
	d       proxy.ContextDialer
	timeout time.Duration
}

func (t timeoutDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.d.DialContext(ctx, network, addr)
}

// connectDialer tunnels through an HTTP proxy with CONNECT (RFC 9110 §9.3.6).
type connectDialer struct {
	forward Dialer
	addr    string
	auth    string
	timeout time.Duration
}

func (c *connectDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.forward.DialContext(ctx, network, c.addr)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{"User-Agent": {""}},
	}
	if c.auth != "" {
		req.Header.Set("Proxy-Authorization", c.auth)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, connectErr(ctx, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, connectErr(ctx, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 { // any 2xx opens the tunnel (RFC 9110 §9.3.6)
		conn.Close()
		return nil, fmt.Errorf("egress proxy refused CONNECT with status %d", resp.StatusCode)
	}
	if !stop() {
		conn.Close()
		return nil, connectErr(ctx, context.Cause(ctx))
	}
	if br.Buffered() > 0 {
		// The proxy sent bytes of the tunnel along with its answer.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

func connectErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	return fmt.Errorf("egress proxy CONNECT: %w", err)
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
