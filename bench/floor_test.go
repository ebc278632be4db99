package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// floorHarness is a TLS upstream behind the floor proxy.
type floorHarness struct {
	up     *httptest.Server
	front  *httptest.Server
	proxy  *floorProxy
	client *http.Client
	conns  atomic.Int64 // upstream connections accepted
}

func newFloorHarness(t *testing.T, upstream http.Handler) *floorHarness {
	t.Helper()
	h := &floorHarness{}
	h.up = httptest.NewUnstartedServer(upstream)
	h.up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	h.up.StartTLS()
	u, _ := url.Parse(h.up.URL)
	pool := x509.NewCertPool()
	pool.AddCert(h.up.Certificate())
	h.proxy = newFloorProxy(u, &tls.Config{RootCAs: pool})
	h.front = httptest.NewServer(h.proxy)
	h.client = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		// A test that failed mid-stream leaves requests open: cut them, so
		// that Close does not wait for them forever.
		h.up.CloseClientConnections()
		h.front.CloseClientConnections()
		h.front.Close()
		h.proxy.closeIdle()
		h.up.Close()
	})
	return h
}

// do sends a request through the floor, bounded so that a proxy that holds
// a response back fails the test instead of hanging it.
func (h *floorHarness) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	t.Cleanup(cancel)
	resp, err := h.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// echo answers with what reached it, in headers and body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Target", r.RequestURI)
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Auth", r.Header.Get("Authorization"))
	w.Header().Set("X-Hop", r.Header.Get("Keep-Alive")+r.Header.Get("Proxy-Connection"))
	w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// onlyReader hides a body's length, so that the client sends it chunked.
type onlyReader struct{ io.Reader }

func TestFloorCarriesRequests(t *testing.T) {
	t.Parallel()
	h := newFloorHarness(t, http.HandlerFunc(echo))
	upHost := strings.TrimPrefix(h.up.URL, "https://")
	tests := []struct {
		name, method, path string
		body               io.Reader
		wantBody           string
		wantLength         string // Content-Length the upstream saw
	}{
		{"POST with a length", "POST", "/v1/chat/completions", strings.NewReader(`{"model":"bench-1"}`), `{"model":"bench-1"}`, "19"},
		{"POST chunked", "POST", "/v1/chat/completions", onlyReader{strings.NewReader("chunked body")}, "chunked body", "-1"},
		{"GET with a query", "GET", "/sse?n=3&gap=0s&x=%2F", nil, "", "0"},
		{"HEAD", "HEAD", "/head", nil, "", "0"},
		{"escaped path kept as sent", "GET", "/a%2Fb/c%20d", nil, "", "0"},
	}
	// Sequential on purpose: every request must reuse the one upstream
	// connection.
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, h.front.URL+tt.path, tt.body)
		req.Header.Set("Authorization", "Bearer sk-bench-0000")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Connection", "keep-alive")
		resp := h.do(t, req)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, c := range []struct{ header, want string }{
			{"X-Method", tt.method}, {"X-Target", tt.path}, {"X-Host", upHost}, {"X-Auth", "Bearer sk-bench-0000"},
			{"X-Hop", ""}, {"X-Length", tt.wantLength},
		} {
			if v := resp.Header.Get(c.header); v != c.want {
				t.Errorf("%s: upstream saw %s %q, want %q", tt.name, c.header, v, c.want)
			}
		}
		if resp.StatusCode != 200 || string(got) != tt.wantBody {
			t.Errorf("%s: %d %q, want 200 %q", tt.name, resp.StatusCode, got, tt.wantBody)
		}
	}
	if n := h.conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for %d sequential requests, want 1", n, len(tests))
	}
}

func TestFloorFlushesEachEvent(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	h := newFloorHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	req, _ := http.NewRequest("GET", h.front.URL+"/sse", nil)
	resp := h.do(t, req)
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// The upstream sends the next event only once the client has the one
	// before: a proxy that buffers blocks here until do's deadline.
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		br.ReadString('\n')
		if i < 2 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the last event: %q, %v", rest, err)
	}
}

func TestFloorClientGoneClosesUpstream(t *testing.T) {
	t.Parallel()
	gone := make(chan struct{}, 1)
	h := newFloorHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			echo(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: alive\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		gone <- struct{}{}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.front.URL+"/slow", nil)
	resp := h.do(t, req)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: alive\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	cancel() // the client leaves: its connection closes
	resp.Body.Close()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request outlived its client")
	}
	// The abandoned connection is not reused.
	req, _ = http.NewRequest("GET", h.front.URL+"/after", nil)
	resp = h.do(t, req)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.conns.Load() != 2 {
		t.Errorf("after a departed client: status %d, %d upstream connections, want 200 and 2", resp.StatusCode, h.conns.Load())
	}
}

func TestFloorUpstreamFailures(t *testing.T) {
	t.Parallel()
	t.Run("body cut short", func(t *testing.T) {
		t.Parallel()
		h := newFloorHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			brw.Flush()
			c.Close()
		}))
		// The client must see a failure, before or after the headers
		// (the server may not have sent them yet), never a clean end.
		resp, err := h.client.Get(h.front.URL + "/")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("a cut-short body arrived whole: %d %q", resp.StatusCode, b)
		}
	})
	t.Run("upstream unreachable", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := newFloorProxy(&url.URL{Scheme: "https", Host: addr}, &tls.Config{})
		front := httptest.NewServer(p)
		defer front.Close()
		resp, err := http.Get(front.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		http.DefaultClient.CloseIdleConnections()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	})
}

// The request writer against http.ReadRequest: whatever net/http's server
// would hand the handler is written so that it reads back the same, less
// the framing and hop-by-hop headers, with the upstream's Host.
func FuzzWriteFloorRequest(f *testing.F) {
	f.Add("POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	f.Add("POST /x?y=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	f.Add("GET http://example.com/abs?q HTTP/1.1\r\nHost: b\r\nKeep-Alive: 1\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		in, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		// What net/http's server refuses never reaches the handler.
		if err != nil || in.Method == http.MethodConnect || in.ProtoMajor != 1 {
			return
		}
		for k, vs := range in.Header { // what net/http's server checks
			if !httpguts.ValidHeaderFieldName(k) {
				return
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					return
				}
			}
		}
		inBody := new(bytes.Buffer)
		in.Body = io.NopCloser(io.TeeReader(in.Body, inBody))
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		wantTarget := in.RequestURI
		if !strings.HasPrefix(wantTarget, "/") {
			wantTarget = in.URL.RequestURI() // absolute-form becomes origin-form
		}
		err = writeFloorRequest(bw, in, "upstream.test:443")
		if !strings.HasPrefix(wantTarget, "/") {
			if err == nil || out.Len()+bw.Buffered() > 0 {
				t.Errorf("target %q: %v, %d bytes written", in.RequestURI, err, out.Len()+bw.Buffered())
			}
			return
		}
		if err != nil {
			return // a body that ends early or a bad chunk
		}
		back, err := http.ReadRequest(bufio.NewReader(&out))
		if err != nil {
			t.Fatalf("wrote what does not parse: %v\n%q", err, out.String())
		}
		backBody, err := io.ReadAll(back.Body)
		if err != nil {
			t.Fatalf("body does not read back: %v", err)
		}
		if back.Method != in.Method || back.RequestURI != wantTarget || back.Host != "upstream.test:443" {
			t.Errorf("request line %s %s Host %s, want %s %s upstream.test:443", back.Method, back.RequestURI, back.Host, in.Method, wantTarget)
		}
		if !bytes.Equal(backBody, inBody.Bytes()) {
			t.Errorf("body %q, want %q", backBody, inBody.Bytes())
		}
		for _, hop := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
			if _, ok := back.Header[hop]; ok {
				t.Errorf("%s went upstream", hop)
			}
		}
		// Values compare without surrounding whitespace, which is not part
		// of a field value (RFC 9110 §5.5); textproto can leave some in one
		// that was folded over lines (obs-fold).
		ows := func(vs []string) string {
			var b strings.Builder
			for _, v := range vs {
				b.WriteString(strings.Trim(v, " \t"))
				b.WriteByte(0)
			}
			return b.String()
		}
		for k, vs := range in.Header {
			if floorSkip(k) {
				continue
			}
			if got := back.Header[k]; ows(got) != ows(vs) {
				t.Errorf("header %s: %q, want %q", k, got, vs)
			}
		}
		for k := range back.Header {
			if _, ok := in.Header[k]; !ok && k != "Content-Length" {
				t.Errorf("header %s appeared", k)
			}
		}
	})
}
