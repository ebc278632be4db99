package fallback

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/socket"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

type fallbacks struct {
	mu      sync.Mutex
	reasons []Reason
}

func (f *fallbacks) add(_ *http.Request, r Reason) {
	f.mu.Lock()
	f.reasons = append(f.reasons, r)
	f.mu.Unlock()
}

func newAuto(t *testing.T, aggressive bool) (*Transport, *fallbacks) {
	ca := providertest.CA(t)
	s := &socket.Transport{TLSClientConfig: ca.ClientTLS()}
	f := fetch.New(fetch.Options{TLSClientConfig: ca.ClientTLS()})
	t.Cleanup(func() { s.CloseIdleConnections(); f.CloseIdleConnections() })
	fb := &fallbacks{}
	return &Transport{Socket: s, Fetch: f, Mode: Auto, Aggressive: aggressive, OnFallback: fb.add, Blocked: netguard.IsBlocked}, fb
}

func post(t *testing.T, tr http.RoundTripper, url, body string) (*http.Response, *Report, error) {
	t.Helper()
	rep := &Report{}
	req, _ := http.NewRequestWithContext(WithReport(context.Background(), rep), "POST", url, strings.NewReader(body))
	req.GetBody = nil // as for a proxied request: the body streams once
	resp, err := tr.RoundTrip(req)
	if err == nil {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	return resp, rep, err
}

func TestFallbackToFetchOnHTTP2OnlyUpstream(t *testing.T) {
	t.Parallel()
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Proto+" "+string(body))
	}), &providertest.Options{HTTP2Only: true})
	tr, fb := newAuto(t, false)

	resp, rep, err := post(t, tr, srv.URL+"/v1/chat", `{"n":1}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `HTTP/2.0 {"n":1}` {
		t.Errorf("upstream answered %q: the same request with its body must go over fetch", body)
	}
	if rep.Transport != "fetch" || rep.Fallback != ReasonTLS || len(fb.reasons) != 1 {
		t.Errorf("report %+v, fallbacks %v", rep, fb.reasons)
	}
	// The next request goes straight to fetch: no failed handshake first.
	_, rep, err = post(t, tr, srv.URL+"/v1/chat", `{"n":2}`)
	if err != nil || rep.Transport != "fetch" || rep.Fallback != ReasonRemembered {
		t.Errorf("second request: %+v, %v", rep, err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("upstream received %d requests, want 2", n)
	}
}

func TestNoFallbackAfterSend(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		_, body, err := c.ReadRequest()
		if err != nil {
			return
		}
		mu.Lock()
		got = append(got, string(body))
		mu.Unlock()
		c.Reset() // read the request, then reset: it may have been acted on
	})
	tr, fb := newAuto(t, false)
	_, rep, err := post(t, tr, raw.URL+"/v1/chat", `{"bill":"me once"}`)
	if err == nil {
		t.Fatal("want an error")
	}
	if rep.Transport != "socket" || len(fb.reasons) != 0 {
		t.Errorf("report %+v, fallbacks %v: must not fall back after sending", rep, fb.reasons)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Errorf("upstream received the request %d times, want once", len(got))
	}
}

func TestAggressiveFallbackReplaysTheBody(t *testing.T) {
	t.Parallel()
	// The socket path (HTTP/1.1) is reset after the request; fetch reaches
	// the same host over HTTP/2 and gets an answer.
	var mu sync.Mutex
	var h1 int
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			mu.Lock()
			h1++
			mu.Unlock()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, "h2 got "+string(body))
	}), &providertest.Options{HTTP2: true})
	tr, fb := newAuto(t, true)
	resp, rep, err := post(t, tr, srv.URL+"/v1/chat", `{"replay":true}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `h2 got {"replay":true}` || rep.Fallback != ReasonAfterSend || len(fb.reasons) != 1 {
		t.Errorf("body %q, report %+v, fallbacks %v", body, rep, fb.reasons)
	}
	if h1 != 1 {
		t.Errorf("socket attempts = %d, want 1", h1)
	}
}

func TestRefusedFallsBackAndFailsHonestly(t *testing.T) {
	t.Parallel()
	url := providertest.RefusedURL(t)
	tr, fb := newAuto(t, false)
	_, rep, err := post(t, tr, url, "{}")
	if err == nil || rep.Fallback != ReasonRefused || rep.Transport != "fetch" || len(fb.reasons) != 1 {
		t.Errorf("err %v, report %+v", err, rep)
	}
}

func TestBlockedNeverFallsBack(t *testing.T) {
	t.Parallel()
	blocked := &socket.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &netguard.BlockedError{Why: "loopback"}
	}}
	called := false
	tr := &Transport{Socket: blocked, Fetch: roundTripFunc(func(*http.Request) (*http.Response, error) {
		called = true
		return nil, errors.New("should not be called")
	}), Blocked: netguard.IsBlocked}
	_, _, err := post(t, tr, "https://127.0.0.1:1/", "{}")
	if !netguard.IsBlocked(err) || called {
		t.Errorf("err = %v, fetch called = %v", err, called)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestModes(t *testing.T) {
	t.Parallel()
	srv := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), &providertest.Options{HTTP2: true})
	for mode, want := range map[Mode]string{Socket: "HTTP/1.1", Fetch: "HTTP/2.0", Auto: "HTTP/1.1"} {
		tr, _ := newAuto(t, false)
		tr.Mode = mode
		_, rep, err := post(t, tr, srv.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		if got := reqs[len(reqs)-1].Proto; got != want {
			t.Errorf("mode %s: upstream saw %s, want %s (report %+v)", mode, got, want, rep)
		}
	}
	if _, err := ParseMode("carrier-pigeon"); err == nil {
		t.Error("ParseMode accepted nonsense")
	}
}
