package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/providertest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newFetch(t *testing.T, idle time.Duration) *Transport {
	tr := New(Options{TLSClientConfig: providertest.CA(t).ClientTLS(), IdleTimeout: idle})
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestAddsNothingOfItsOwn(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), &providertest.Options{HTTP2: h2})
		tr := newFetch(t, 0)
		req, _ := http.NewRequest("GET", srv.URL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer x")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := srv.Requests()[0]
		if h2 != (got.Proto == "HTTP/2.0") {
			t.Errorf("http2=%v: upstream saw %s", h2, got.Proto)
		}
		for _, name := range []string{"User-Agent", "Accept-Encoding"} {
			if v, ok := got.Header[name]; ok {
				t.Errorf("%s: fetch sent %s: %q", got.Proto, name, v)
			}
		}
		if got.Header.Get("Authorization") != "Bearer x" {
			t.Errorf("%s: Authorization lost", got.Proto)
		}
	}
}

func TestNoProxyFromEnvironmentNoRedirects(t *testing.T) {
	// A proxy in the environment that does not exist: using it would fail.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.test/steal", http.StatusFound)
	}), nil)
	tr := newFetch(t, 0)
	req, _ := http.NewRequest("POST", srv.URL+"/v1", nil)
	req.Header.Set("X-Api-Key", "k")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("fetch used the environment's proxy? %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://elsewhere.test/steal" {
		t.Errorf("status %d: the redirect must come back, not be followed", resp.StatusCode)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), &providertest.Options{HTTP2: true})
	defer close(release)
	tr := newFetch(t, 150*time.Millisecond)
	req, _ := http.NewRequest("GET", srv.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if string(body) != "data: 1\n\n" || !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("body %q, err %v; want the first event then ErrIdleTimeout", body, err)
	}
}

// TestIdleTimeoutHonoured: over HTTP/1.1 and HTTP/2, a stream that falls
// silent is cut no earlier than the idle timeout after the last byte the
// client read (a lower bound: it fails only if the timer fires early), and
// it is cut, with ErrIdleTimeout.
func TestIdleTimeoutHonoured(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			t.Parallel()
			srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 8 {
					fmt.Fprintf(w, "data: %d\n\n", i)
					w.(http.Flusher).Flush()
					if i < 6 {
						time.Sleep(idle / 10)
					} else {
						time.Sleep(5 * time.Millisecond)
					}
				}
				<-r.Context().Done() // silence until the client gives up
			}), &providertest.Options{HTTP2: h2})
			tr := newFetch(t, idle)
			ctx, cancel := context.WithTimeout(context.Background(), 20*idle)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := make([]byte, 64)
			var last time.Time
			for {
				n, err := resp.Body.Read(buf)
				if n > 0 {
					last = time.Now()
				}
				if err == nil {
					continue
				}
				silent := time.Since(last)
				if !errors.Is(err, ErrIdleTimeout) {
					t.Fatalf("after %v of silence: err = %v, want ErrIdleTimeout", silent, err)
				}
				if silent < idle {
					t.Fatalf("cut after %v of silence, before the idle timeout of %v", silent, idle)
				}
				return
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestWriteIdleTimeout: an upstream that reads the request head and never
// its body holds the body's write, which ResponseHeaderTimeout does not
// cover (it starts once the body is written). The write is cut after the
// idle timeout without progress, as the socket transport's, with an error
// that is ErrIdleTimeout and a timeout (a 504), not when the client leaves.
func TestWriteIdleTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		http.ReadRequest(c.R) // the head only: the body is never read
		<-release
	})
	defer close(release)
	tr := newFetch(t, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const size = 64 << 20
	req, _ := http.NewRequestWithContext(ctx, "POST", raw.URL+"/v1/files", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.Is(err, ErrIdleTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("err = %v, want ErrIdleTimeout, a timeout", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		t.Fatal("a request body write stalled for 5s (idle timeout 300ms) was not cut")
	}
}

// TestWriteIdleTimeoutPooled: a pooled connection keeps the write deadline
// its last request left; a request sent on it long after that deadline has
// passed goes out whole, on the same connection, over HTTP/1.1 and HTTP/2.
func TestWriteIdleTimeoutPooled(t *testing.T) {
	t.Parallel()
	const idle = 100 * time.Millisecond
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			t.Parallel()
			srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), &providertest.Options{HTTP2: h2})
			tr := newFetch(t, idle)
			body := strings.Repeat("x", 256<<10)
			for i := range 2 {
				if i > 0 {
					time.Sleep(3 * idle)
				}
				req, _ := http.NewRequest("POST", srv.URL+"/v1", strings.NewReader(body))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			got := srv.Requests()
			if len(got) != 2 || string(got[1].Body) != body {
				t.Fatalf("the upstream got %d requests, the second's body whole: %v", len(got), len(got) == 2 && string(got[1].Body) == body)
			}
			if n := srv.Conns(); n != 1 {
				t.Errorf("%d connections, want the pooled one reused", n)
			}
		})
	}
}

// TestWriteIdleTimeoutEndsOnUpgrade: a WebSocket's connection is the
// caller's, without the write timeout, as the socket transport's: a write
// the upstream does not take waits until the caller gives up.
func TestWriteIdleTimeoutEndsOnUpgrade(t *testing.T) {
	t.Parallel()
	const idle = 100 * time.Millisecond
	release := make(chan struct{})
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		http.ReadRequest(c.R)
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		<-release // reads nothing more
	})
	defer close(release)
	tr := newFetch(t, idle)
	req, _ := http.NewRequest("GET", raw.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	rwc := resp.Body.(io.ReadWriteCloser)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(rwc, io.LimitReader(zeros{}, 64<<20))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the write to an upgraded connection ended: %v", err)
	case <-time.After(10 * idle):
	}
	rwc.Close()
	<-done
}

// TestWriteIdleTimeoutFromTheWritesStart: a write that starts while an
// earlier write's deadline is still ahead (it is moved only now and then)
// is cut no earlier than the idle timeout after its own start: the
// earlier deadline, when it fires, is moved on (a lower bound: it fails
// only if the cut comes early).
func TestWriteIdleTimeoutFromTheWritesStart(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newIdleConn(a, idle)
	go b.Read(make([]byte, 1))
	if _, err := c.Write([]byte("x")); err != nil { // sets the deadline
		t.Fatal(err)
	}
	time.Sleep(idle / 8) // less than idle/4: the next write keeps the deadline
	start := time.Now()
	_, err := c.Write([]byte("y")) // nobody reads
	took := time.Since(start)
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("err = %v, want ErrIdleTimeout", err)
	}
	if took < idle {
		t.Fatalf("cut %v after the write started, before the idle timeout of %v", took, idle)
	}
	if _, err := c.Write([]byte("z")); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("a write after the cut: %v, want ErrIdleTimeout at once", err)
	}
}
