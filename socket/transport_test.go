package socket

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/providertest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newTransport(t *testing.T) *Transport {
	tr := &Transport{TLSClientConfig: providertest.CA(t).ClientTLS()}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// readRawHead reads request header lines up to the blank line, as sent.
func readRawHead(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	type sent struct {
		head string
		body []byte
	}
	got := make(chan sent, 1)
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			head, err := readRawHead(c.R)
			if err != nil {
				return
			}
			// Parse the head again to read the body with its real framing.
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				return
			}
			var body []byte
			switch {
			case len(req.TransferEncoding) > 0:
				req.Body.Close()
				body, _ = io.ReadAll(httputil.NewChunkedReader(c.R))
				c.R.ReadString('\n') // the CRLF after the last chunk
			case req.ContentLength > 0:
				body = make([]byte, req.ContentLength)
				io.ReadFull(c.R, body)
			}
			got <- sent{head, body}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	host := strings.TrimPrefix(raw.URL, "https://")

	tests := []struct {
		name     string
		method   string
		target   string
		header   http.Header
		body     io.Reader
		length   int64
		wantHead string
		wantBody string
	}{
		{
			name:   "post with length, headers sorted, framing and hop-by-hop from the map dropped",
			method: "POST", target: "/v1/chat%2Fcompletions?a=1;b=%zz&c",
			header: http.Header{
				"Content-Type":      {"application/json"},
				"Authorization":     {"Bearer sk-test"},
				"Content-Length":    {"999"},
				"Transfer-Encoding": {"chunked"},
				"Connection":        {"keep-alive, X-Foo"},
				"Keep-Alive":        {"timeout=5"},
				"Te":                {"trailers"},
				"User-Agent":        {""},
				"X-Multi":           {"one", "two"},
			},
			body: strings.NewReader(`{"a":1}`), length: 7,
			wantHead: "POST /v1/chat%2Fcompletions?a=1;b=%zz&c HTTP/1.1\r\n" +
				"Host: " + host + "\r\n" +
				"Content-Length: 7\r\n" +
				"Authorization: Bearer sk-test\r\n" +
				"Content-Type: application/json\r\n" +
				"X-Multi: one\r\nX-Multi: two\r\n\r\n",
			wantBody: `{"a":1}`,
		},
		{
			name: "get without body has no framing header", method: "GET", target: "/v1/models",
			header:   http.Header{"User-Agent": {"sdk/1.0"}},
			wantHead: "GET /v1/models HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: sdk/1.0\r\n\r\n",
		},
		{
			name: "post without body says Content-Length 0", method: "POST", target: "/x",
			header:   http.Header{},
			wantHead: "POST /x HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name: "unknown length is chunked", method: "PUT", target: "/up",
			header: http.Header{}, body: io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")), length: -1,
			wantHead: "PUT /up HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n",
			wantBody: "hello world",
		},
	}
	tr := newTransport(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, raw.URL+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			if tc.body != nil {
				req.Body = io.NopCloser(tc.body)
				req.ContentLength = tc.length
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s := <-got
			if s.head != tc.wantHead {
				t.Errorf("request head:\n got %q\nwant %q", s.head, tc.wantHead)
			}
			if string(s.body) != tc.wantBody {
				t.Errorf("body = %q, want %q", s.body, tc.wantBody)
			}
		})
	}
}

func TestResponseFraming(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			req, _, err := c.ReadRequest()
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/chunked":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
			case "/head":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
			case "/nocontent":
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			case "/early-hints":
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
			case "/close-delimited":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
				return
			}
		}
	})
	tr := newTransport(t)
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		var hints atomic.Int32
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			hints.Add(1)
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, raw.URL+path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s body: %v", method, path, err)
		}
		if path == "/early-hints" && hints.Load() != 1 {
			t.Errorf("Got1xxResponse called %d times, want 1", hints.Load())
		}
		return resp, string(body)
	}
	if _, body := do("GET", "/chunked"); body != "hello world" {
		t.Errorf("chunked body = %q", body)
	}
	if resp, body := do("HEAD", "/head"); body != "" || resp.ContentLength != 1234 {
		t.Errorf("HEAD: body %q, length %d", body, resp.ContentLength)
	}
	if resp, body := do("GET", "/nocontent"); resp.StatusCode != 204 || body != "" {
		t.Errorf("204: status %d body %q", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/early-hints"); resp.StatusCode != 200 || body != "body" {
		t.Errorf("103 then 200: status %d body %q", resp.StatusCode, body)
	}
	// All of the above on one connection: each body was read to its end.
	if n := raw.Conns(); n != 1 {
		t.Errorf("connections = %d, want 1 (reuse)", n)
	}
	if _, body := do("GET", "/close-delimited"); body != "until the end" {
		t.Errorf("close-delimited body = %q", body)
	}
}

func TestReuseOnlyAfterBodyReadToEnd(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			if _, _, err := c.ReadRequest(); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
		}
	})
	tr := newTransport(t)
	get := func(readAll bool) {
		req, _ := http.NewRequest("GET", raw.URL+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if readAll {
			io.ReadAll(resp.Body)
		} else {
			resp.Body.Read(make([]byte, 3))
		}
		resp.Body.Close()
	}
	for range 5 {
		get(true)
	}
	if n := raw.Conns(); n != 1 {
		t.Fatalf("5 sequential requests used %d connections, want 1", n)
	}
	get(false) // closed early: this connection must not be reused
	get(true)
	if n := raw.Conns(); n != 2 {
		t.Fatalf("after an unfinished body, connections = %d, want 2", n)
	}
}

func TestStalePooledConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		probeRead time.Duration
	}{
		{"probe reads the close_notify", 0},
		// Every probe read times out before it starts, as when the machine
		// is busy: the close_notify waiting on the socket is never read, and
		// the connection must not be taken as alive for that.
		{"probe read never starts", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The upstream answers once per connection, then closes it a
			// little later, so that its close_notify waits on the socket
			// rather than arriving with the answer.
			raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
				if _, _, err := c.ReadRequest(); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(10 * time.Millisecond)
			})
			tr := newTransport(t)
			tr.probeRead = tc.probeRead
			for i := range 3 {
				req, _ := http.NewRequest("POST", raw.URL+"/", strings.NewReader("not replayable"))
				req.GetBody = nil
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
				raw.WaitClosed(t)
				time.Sleep(2 * freshIdle) // past the window in which a pooled connection is not probed
			}
			if n := raw.Conns(); n != 3 {
				t.Errorf("connections = %d, want 3: a closed pooled connection must be noticed before use", n)
			}
		})
	}
}

func TestClosedWithoutResponseOnReusedConn(t *testing.T) {
	t.Parallel()
	// First request on each connection is answered; the second is read and
	// dropped without a byte, as when an upstream closes a keep-alive
	// connection just as a request arrives.
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		if _, _, err := c.ReadRequest(); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.ReadRequest()
	})
	tr := newTransport(t)
	roundTrip := func(method string, body io.Reader) error {
		req, _ := http.NewRequest(method, raw.URL+"/", body)
		req.GetBody = nil
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.ReadAll(resp.Body)
		return resp.Body.Close()
	}
	if err := roundTrip("GET", nil); err != nil {
		t.Fatal(err)
	}
	// A GET may go again on a fresh connection.
	if err := roundTrip("GET", nil); err != nil {
		t.Fatalf("idempotent request on a dropped pooled connection: %v", err)
	}
	// A POST may have been acted on: it must fail, not be sent twice.
	err := roundTrip("POST", strings.NewReader("{}"))
	var se *Error
	if !errors.As(err, &se) || !errors.Is(err, ErrNoResponse) || !se.Sent {
		t.Fatalf("POST on a dropped pooled connection: err = %v, want ErrNoResponse with Sent", err)
	}
}

func TestFailuresAreClassified(t *testing.T) {
	t.Parallel()
	reset := providertest.NewRaw(t, providertest.ResetAfterRequest)
	hang := providertest.NewRaw(t, providertest.SilentAfterRequest)
	h2only := providertest.NewServer(t, http.NotFoundHandler(), &providertest.Options{HTTP2Only: true})
	refused := providertest.RefusedURL(t)

	tr := newTransport(t)
	tr.ResponseHeaderTimeout = time.Second // only the hang waits for it
	tests := []struct {
		name        string
		url         string
		op          Op
		nothingSent bool
		timeout     bool
		is          error
	}{
		{"refused", refused, OpDial, true, false, nil},
		{"HTTP/2-only upstream", h2only.URL, OpTLS, true, false, nil},
		{"reset before headers", reset.URL, OpRead, false, false, ErrNoResponse},
		{"no answer", hang.URL, OpRead, false, true, ErrResponseHeaderTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", tc.url+"/v1", strings.NewReader("{}"))
			_, err := tr.RoundTrip(req)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *socket.Error", err)
			}
			if se.Op != tc.op || se.NothingSent() != tc.nothingSent || se.Timeout() != tc.timeout {
				t.Errorf("got op=%s nothingSent=%v timeout=%v, want op=%s nothingSent=%v timeout=%v (%v)",
					se.Op, se.NothingSent(), se.Timeout(), tc.op, tc.nothingSent, tc.timeout, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

func TestIdleTimeoutOnBody(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		c.ReadRequest()
		io.WriteString(c, sseHead)
		io.WriteString(c, "7\r\ndata: 1\r\n")
		c.R.ReadByte() // then silence
	})
	tr := newTransport(t)
	tr.IdleTimeout = 150 * time.Millisecond
	req, _ := http.NewRequest("GET", raw.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if string(body) != "data: 1" {
		t.Errorf("body before the silence = %q", body)
	}
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("err = %v, want ErrIdleTimeout", err)
	}
}

func TestCancelClosesUpstreamAtOnce(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		c.ReadRequest()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		// Block until the client side closes the connection.
		io.Copy(io.Discard, c.R)
		close(closed)
	})
	tr := newTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := resp.Body.Read(buf); readErr <- err }()
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream connection still open 5s after the context was cancelled")
	}
	if err := <-readErr; !errors.Is(err, context.Canceled) {
		t.Errorf("blocked read returned %v, want context.Canceled", err)
	}
	resp.Body.Close()
}

func TestInvalidHeaderNeverEchoesValue(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	secret := "sk-secret-key-value\n"
	req, _ := http.NewRequest("GET", "https://127.0.0.1:1/", nil)
	req.Header["Authorization"] = []string{"Bearer " + secret}
	_, err := tr.RoundTrip(req)
	var he *HeaderError
	if !errors.As(err, &he) || he.Name != "Authorization" {
		t.Fatalf("err = %v, want HeaderError for Authorization", err)
	}
	if strings.Contains(err.Error(), "sk-secret") {
		t.Fatalf("error message leaks the header value: %q", err)
	}
}

func TestUpgradeHandsOverTheConnection(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		req, _, err := c.ReadRequest()
		if err != nil || req.Header.Get("Upgrade") != "websocket" || req.Header.Get("Connection") != "Upgrade" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, c.R) // echo
	})
	tr := newTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL+"/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	cancel() // the handshake context no longer governs the connection
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body is %T, want io.ReadWriteCloser", resp.Body)
	}
	defer rwc.Close()
	if _, err := io.WriteString(rwc, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestRequestBodyErrorsAreTheClients(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) { c.ReadRequest() })
	tr := newTransport(t)
	boom := errors.New("client went away")
	req, _ := http.NewRequest("POST", raw.URL+"/", nil)
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader("part"), errReader{boom}))
	req.ContentLength = 100
	_, err := tr.RoundTrip(req)
	var se *Error
	if !errors.As(err, &se) || se.Op != OpBody || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want OpBody wrapping the body's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestUntrustedCertificateFailsHandshake(t *testing.T) {
	t.Parallel()
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hi")
	}), nil)
	tr := &Transport{TLSClientConfig: &tls.Config{}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	_, err := tr.RoundTrip(req)
	var se *Error
	if !errors.As(err, &se) || se.Op != OpTLS {
		t.Fatalf("untrusted certificate: err = %v, want OpTLS", err)
	}
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		t.Errorf("err = %v, want a certificate verification error", err)
	}
}
