// Package providertest runs fake LLM providers over real TLS for tests: an
// HTTP server that records what it received, and a raw TLS listener for
// upstreams that misbehave on purpose (reset, hang, cut a stream). Every
// server's certificate is signed by a CA written to a PEM file, so the proxy
// under test verifies it like a real provider's (via --upstream-ca).
package providertest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// Authority is a test CA and a server certificate it signed for localhost,
// 127.0.0.1, ::1 and *.test.
type Authority struct {
	Pool   *x509.CertPool
	Cert   tls.Certificate
	CAFile string // PEM of the CA, for --upstream-ca
}

var (
	authOnce sync.Once
	auth     *Authority
	authErr  error
)

// TB is the part of testing.TB that CA needs, so that the benchmark harness
// can use the authority outside a test.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// CA returns the shared test authority, creating it (and its PEM file in
// the system temp dir) on first use.
func CA(t TB) *Authority {
	t.Helper()
	authOnce.Do(func() { auth, authErr = newAuthority() })
	if authErr != nil {
		t.Fatalf("test CA: %v", authErr)
	}
	return auth
}

func newAuthority() (*Authority, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "llmproxy test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "fake provider"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "*.test", "provider.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	dir, err := os.MkdirTemp("", "llmproxy-ca-")
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, caPEM, 0o600); err != nil {
		return nil, err
	}
	return &Authority{
		Pool:   pool,
		Cert:   tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CAFile: file,
	}, nil
}

// ClientTLS returns a client config that trusts the authority.
func (a *Authority) ClientTLS() *tls.Config { return &tls.Config{RootCAs: a.Pool} }

// Request is what a fake provider received.
type Request struct {
	Proto  string // "HTTP/1.1" or "HTTP/2.0"
	Method string
	URI    string // request target as received (escaped path and query)
	Host   string
	Header http.Header
	Body   []byte
}

// Server is a fake provider: a TLS HTTP server that records every request.
type Server struct {
	*httptest.Server
	CA *Authority

	mu       sync.Mutex
	requests []Request
	conns    int
}

// Options tune NewServer.
type Options struct {
	// HTTP2Only makes the server refuse HTTP/1.1 at ALPN, like an upstream
	// that only speaks HTTP/2.
	HTTP2Only bool
	// HTTP2 offers HTTP/2 besides HTTP/1.1.
	HTTP2 bool
}

// NewServer starts a fake provider running h. The request body is read and
// recorded before h runs; h sees it again in r.Body.
func NewServer(t testing.TB, h http.Handler, opts *Options) *Server {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	a := CA(t)
	s := &Server{CA: a}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			Proto: r.Proto, Method: r.Method, URI: r.RequestURI, Host: r.Host,
			Header: r.Header.Clone(), Body: body,
		})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	// Handshakes refused on purpose (HTTP/2-only, untrusted) are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableHTTP2 = opts.HTTP2 || opts.HTTP2Only
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{a.Cert}, NextProtos: []string{"http/1.1"}}
	switch {
	case opts.HTTP2Only:
		srv.TLS.NextProtos = []string{"h2"}
		// Go's TLS server lets HTTP/1.1-only clients in even so (Go issue
		// 46310); a real HTTP/2-only upstream refuses the handshake.
		srv.TLS.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if !slices.Contains(hello.SupportedProtos, "h2") {
				return nil, errors.New("this upstream speaks only HTTP/2")
			}
			return nil, nil
		}
	case opts.HTTP2:
		srv.TLS.NextProtos = []string{"h2", "http/1.1"}
	}
	srv.StartTLS()
	s.Server = srv
	t.Cleanup(srv.Close)
	return s
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Conns returns how many connections the server accepted.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// RefusedURL returns an https URL on loopback where nothing listens: a
// connection to it is refused. The port stays taken until the test ends,
// so that no other test's listener gets it meanwhile (where the platform
// allows: see refusedAddr).
func RefusedURL(t interface {
	TB
	Cleanup(func())
}) string {
	t.Helper()
	addr, release, err := refusedAddr()
	if err != nil {
		t.Fatalf("a port where nothing listens: %v", err)
	}
	t.Cleanup(release)
	return "https://" + addr
}

// Raw is a TLS listener whose connections a test script handles directly.
type Raw struct {
	URL string // https://127.0.0.1:port
	ln  net.Listener
	wg  sync.WaitGroup

	mu    sync.Mutex
	conns int
	open  map[net.Conn]bool
}

// RawConn is one accepted connection with a reader for the request.
type RawConn struct {
	net.Conn
	R *bufio.Reader
}

// ReadRequest reads one request (headers and body) from the connection.
func (c *RawConn) ReadRequest() (*http.Request, []byte, error) {
	req, err := http.ReadRequest(c.R)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

// Reset closes the connection with a TCP RST instead of a FIN.
func (c *RawConn) Reset() {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
	}
	c.Conn.Close()
}

// ResetAfterRequest is a Raw script: read the request, then reset the
// connection without a byte of answer.
func ResetAfterRequest(c *RawConn) {
	c.ReadRequest()
	c.Reset()
}

// SilentAfterRequest is a Raw script: read the request, then never answer,
// until the client gives up.
func SilentAfterRequest(c *RawConn) {
	c.ReadRequest()
	c.R.ReadByte()
}

// NewRaw starts a TLS listener (HTTP/1.1 at ALPN) that runs script for
// every connection.
func NewRaw(t testing.TB, script func(c *RawConn)) *Raw {
	t.Helper()
	a := CA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{a.Cert},
		NextProtos:   []string{"http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Raw{URL: "https://" + ln.Addr().String(), ln: ln, open: make(map[net.Conn]bool)}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns++
			r.open[conn] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() {
					conn.Close()
					r.mu.Lock()
					delete(r.open, conn)
					r.mu.Unlock()
				}()
				script(&RawConn{Conn: conn, R: bufio.NewReader(conn)})
			}()
		}
	}()
	t.Cleanup(r.Close)
	return r
}

// Conns returns how many connections were accepted.
func (r *Raw) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// WaitClosed waits until every accepted connection's script has returned
// and the connection is closed (its close_notify and FIN sent), or fails
// the test after five seconds.
func (r *Raw) WaitClosed(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		n := len(r.open)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d upstream connections still open after 5s", n)
		}
	}
}

// Close stops the listener, closes open connections and waits for scripts.
func (r *Raw) Close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
