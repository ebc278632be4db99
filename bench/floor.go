package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// The floor of our stack (`bench floor`): the least a net/http proxy can do
// to carry the benchmark's requests. An http.Server whose handler writes the
// upstream request by hand on a pooled TLS connection (HTTP/1.1), parses
// the answer with http.ReadResponse and copies the body back, flushing when
// the length is unknown (SSE). Nothing else: no header policy, no logging,
// no statistics, no timeouts, no retries, no liveness check on reuse. Its
// CPU per request is what llmproxy's own code is measured against: what
// remains above it is ours; what lies between it and nginx is the server
// underneath (goroutine per connection, net/http's background read).
//
// It stays correct for what the benchmark sends: keep-alive, bodies with a
// Content-Length or chunked, chunked SSE answers, a client that leaves
// mid-stream (the upstream connection is closed, not reused), an upstream
// that fails mid-body (the client's response is aborted, not ended).

// floorProxy is the handler.
type floorProxy struct {
	addr    string // host:port to dial
	host    string // the Host header: the upstream's
	dialer  tls.Dialer
	maxIdle int

	mu   sync.Mutex
	idle []*floorConn // most recently used last
}

var _ http.Handler = (*floorProxy)(nil)

// floorConn is one upstream connection; its reader lives as long as it
// does, the writer is pooled, since it is needed only while a request is
// written.
type floorConn struct {
	tc *tls.Conn
	br *bufio.Reader
}

var (
	floorWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
	// 2 KiB copy buffers, as llmproxy's forwarder starts with: an open
	// stream holds its buffer while it waits for the next event.
	floorBuffers = sync.Pool{New: func() any { b := make([]byte, 2<<10); return &b }}
)

func newFloorProxy(upstream *url.URL, cfg *tls.Config) *floorProxy {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return &floorProxy{addr: upstream.Host, host: upstream.Host, dialer: tls.Dialer{Config: cfg}, maxIdle: 256}
}

func (p *floorProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := p.get(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	// A client that leaves must not leave the upstream read blocked: net/http
	// cancels the request's context when its background read sees the
	// client's connection end.
	stop := context.AfterFunc(r.Context(), func() { c.tc.Close() })
	resp, err := c.roundTrip(r, p.host)
	if err != nil {
		stop()
		c.tc.Close()
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	err = copyFlushing(w, resp.Body, resp.ContentLength < 0)
	if !stop() || err != nil || resp.Close {
		c.tc.Close()
	} else {
		p.put(c)
	}
	if err != nil {
		// Either side failed mid-body: end the client's response as broken
		// rather than as complete.
		panic(http.ErrAbortHandler)
	}
}

func (p *floorProxy) get(ctx context.Context) (*floorConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	// Dial on a goroutine of its own, as net/http and llmproxy do: the TLS
	// handshake's deep stack would otherwise stay with the handler's
	// goroutine, which may hold an idle stream open for hours.
	type dialed struct {
		nc  net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
		ch <- dialed{nc, err}
	}()
	d := <-ch
	if d.err != nil {
		return nil, d.err
	}
	tc := d.nc.(*tls.Conn)
	return &floorConn{tc: tc, br: bufio.NewReaderSize(tc, 2<<10)}, nil
}

func (p *floorProxy) put(c *floorConn) {
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.tc.Close()
	}
}

// closeIdle closes the pooled connections.
func (p *floorProxy) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.tc.Close()
	}
}

// roundTrip writes r on the connection and reads the response head.
func (c *floorConn) roundTrip(r *http.Request, host string) (*http.Response, error) {
	bw := floorWriters.Get().(*bufio.Writer)
	bw.Reset(c.tc)
	err := writeFloorRequest(bw, r, host)
	bw.Reset(nil)
	floorWriters.Put(bw)
	if err != nil {
		return nil, err
	}
	return http.ReadResponse(c.br, r)
}

// floorSkip reports the request headers the floor writes itself or must not
// forward: framing and connection management (RFC 9112 §6, RFC 9110
// §7.6.1). Everything else goes as received: net/http's server has already
// checked every name and value.
func floorSkip(name string) bool {
	switch name {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// writeFloorRequest writes r as an HTTP/1.1 request for host, with its body,
// and flushes bw.
func writeFloorRequest(bw *bufio.Writer, r *http.Request, host string) error {
	target := r.RequestURI
	if len(target) == 0 || target[0] != '/' {
		// Absolute-form (RFC 9112 §3.2.2) goes upstream in origin-form;
		// anything else (an opaque URL, "*") is no request for this proxy.
		if target = r.URL.RequestURI(); len(target) == 0 || target[0] != '/' {
			return errors.New("floor: request target is not origin-form")
		}
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range r.Header {
		if floorSkip(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	switch {
	case hasBody && r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if _, err := io.Copy(bw, r.Body); err != nil {
			return err
		}
	case hasBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, r.Body); err != nil {
			return err
		}
		cw.Close()
		bw.WriteString("\r\n") // no trailers
	default:
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("floor: writing to the client failed")

// copyFlushing copies src to w, flushing after every write when flush is
// set, so that each SSE event leaves as soon as it arrives.
func copyFlushing(w http.ResponseWriter, src io.Reader, flush bool) error {
	bp := floorBuffers.Get().(*[]byte)
	defer floorBuffers.Put(bp)
	f, _ := w.(http.Flusher)
	for {
		n, rerr := src.Read(*bp)
		if n > 0 {
			if _, err := w.Write((*bp)[:n]); err != nil {
				return errClientWrite
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// floorMetrics serves the Go runtime figures the idle-stream test reads,
// with the names llmproxy's /metrics gives them, on a listener of its own
// so that the proxied path holds no route but the one.
func floorMetrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\ngo_goroutines %d\n",
		m.HeapInuse, m.StackInuse, runtime.NumGoroutine())
}

// runFloor is `bench floor`: the floor proxy on addr, its runtime figures on
// metricsAddr.
func runFloor(addr, metricsAddr, upstream, caFile string) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		log.Fatalf("floor: -upstream must be an https URL")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// The server name comes from the address dialled, as in llmproxy.
	p := newFloorProxy(u, &tls.Config{RootCAs: pool})
	if metricsAddr != "" {
		// Profiles too, to see what an idle stream holds
		// (go tool pprof http://<metrics>/debug/pprof/heap?gc=1).
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", floorMetrics)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { log.Fatal(http.ListenAndServe(metricsAddr, mux)) }()
	}
	srv := &http.Server{Addr: addr, Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	log.Fatal(srv.ListenAndServe())
}
