package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
