package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/providertest"
)

// readEvent reads one SSE event (up to the blank line) or fails the test
// after 10s: a proxy that buffers would leave it waiting.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\n" {
				ch <- result{b.String(), err}
				return
			}
		}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading event: %v (got %q)", res.err, res.s)
		}
		return res.s
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s: the proxy holds events back")
		return ""
	}
}

func TestSSEArrivesEventByEvent(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			next := make(chan struct{})
			fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: {\"n\":1}\n\n")
				w.(http.Flusher).Flush()
				select { // the upstream is still writing: event 2 waits for the client to see event 1
				case <-next:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: {\"n\":2}\n\ndata: [DONE]\n\n")
			}), &providertest.Options{HTTP2: true})
			cfg := testConfig(t, map[string]string{"openai": fake.URL})
			cfg.Transport = mode
			h := start(t, cfg)

			resp, err := h.client.Post(h.URL+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("X-Accel-Buffering") != "no" || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("headers: %v", resp.Header)
			}
			br := bufio.NewReader(resp.Body)
			if ev := readEvent(t, br); ev != "data: {\"n\":1}\n\n" {
				t.Fatalf("first event %q", ev)
			}
			close(next)
			if ev := readEvent(t, br); ev != "data: {\"n\":2}\n\n" {
				t.Fatalf("second event %q", ev)
			}
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "data: [DONE]\n\n" {
				t.Fatalf("end of stream %q, %v", rest, err)
			}
		})
	}
}

func errorOf(t *testing.T, body string) (typ, msg string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type == "" {
		t.Fatalf("not a JSON error: %q", body)
	}
	return e.Error.Type, e.Error.Message
}

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	reset := providertest.NewRaw(t, providertest.ResetAfterRequest)
	hang := providertest.NewRaw(t, providertest.SilentAfterRequest)
	refused := providertest.RefusedURL(t)

	cfg := testConfig(t, map[string]string{"openai": reset.URL, "groq": hang.URL, "mistral": refused})
	cfg.Timeouts.ResponseHeader = time.Second // only the hang waits for it; the others must answer in time
	h := start(t, cfg)
	tests := []struct {
		path   string
		status int
		typ    string
	}{
		{"/openai/v1/chat/completions", 502, typeUpstream},
		{"/groq/openai/v1/chat/completions", 504, typeTimeout},
		{"/mistral/v1/chat/completions", 502, typeUpstream},
	}
	for _, tc := range tests {
		status, header, body := h.do("POST", tc.path, http.Header{"Authorization": {"Bearer sk-secret-123"}}, `{}`)
		if status != tc.status || header.Get("X-Proxy-Error") != "true" {
			t.Errorf("%s: status %d (X-Proxy-Error %q), want %d", tc.path, status, header.Get("X-Proxy-Error"), tc.status)
		}
		typ, msg := errorOf(t, body)
		if typ != tc.typ {
			t.Errorf("%s: type %q, want %q", tc.path, typ, tc.typ)
		}
		if strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "https://") || strings.Contains(msg, "sk-secret") {
			t.Errorf("%s: message leaks the upstream or a key: %q", tc.path, msg)
		}
	}
	// The reset upstream got the request once: no fallback after sending.
	if n := reset.Conns(); n != 1 {
		t.Errorf("reset upstream saw %d connections, want 1 (no resend)", n)
	}
}

func TestResetMidStreamAbortsTheClient(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
				c.ReadRequest()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
				io.WriteString(c, "b\r\ndata: one\n\n\r\n")
				time.Sleep(50 * time.Millisecond)
				c.Reset()
			})
			cfg := testConfig(t, map[string]string{"openai": raw.URL})
			cfg.Transport = mode
			h := start(t, cfg)
			resp, err := h.client.Post(h.URL+"/openai/v1/chat/completions", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if string(body) != "data: one\n\n" {
				t.Errorf("received %q before the failure", body)
			}
			if err == nil {
				t.Fatal("the stream ended cleanly: an upstream failure must abort the client connection")
			}
			if strings.Contains(string(body), "[DONE]") {
				t.Error("the proxy made up an end")
			}
		})
	}
}

// untilCanceled is a fake upstream waiting until the proxy lets go of its
// request, then closing done; after 10s it gives up (the test failed), so
// that a regression fails the test instead of hanging its cleanup.
func untilCanceled(r *http.Request, done chan struct{}) {
	select {
	case <-r.Context().Done():
		close(done)
	case <-time.After(10 * time.Second):
	}
}

// A client that leaves an event stream cancels the upstream request at
// once: on a stream handed off, and on one a shutdown kept from being
// handed off (relayed in its handler: forward follows the client again
// after unlinking for the hand-off).
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		for _, refused := range []bool{false, true} {
			name := mode
			if refused {
				name += "/hand-off refused"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				upstreamDone := make(chan struct{})
				fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "data: first\n\n")
					w.(http.Flusher).Flush()
					untilCanceled(r, upstreamDone)
				}), &providertest.Options{HTTP2: true})
				cfg := testConfig(t, map[string]string{"openai": fake.URL})
				cfg.Transport = mode
				h := start(t, cfg)
				if refused {
					// What a shutdown does first: no more hand-offs.
					h.srv.handoffs.mu.Lock()
					h.srv.handoffs.closing = true
					h.srv.handoffs.mu.Unlock()
				}

				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "POST", h.URL+"/openai/v1/chat/completions", strings.NewReader("{}"))
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				readEvent(t, bufio.NewReader(resp.Body))
				if refused {
					handedOff(t, h, 0)
				} else {
					// The watch on the handed-off stream sees the client
					// leave (handoff.go), not net/http's background read.
					handedOff(t, h, 1)
				}
				cancel()
				resp.Body.Close()
				select {
				case <-upstreamDone:
				case <-time.After(5 * time.Second):
					t.Fatal("upstream request still running 5s after the client left")
				}
			})
		}
	}
}

func TestFallbackIsLoggedAndCounted(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), &providertest.Options{HTTP2Only: true})
	cfg := testConfig(t, map[string]string{"gemini": fake.URL})
	h := start(t, cfg)
	_, _, body := h.do("POST", "/gemini/v1beta/models/x:generateContent", nil, "{}")
	if body != "HTTP/2.0" {
		t.Fatalf("body %q", body)
	}
	h.do("POST", "/gemini/v1beta/models/x:generateContent", nil, "{}")
	logs := h.waitLog(2)
	if strings.Count(logs, "falling back to fetch") != 1 || !strings.Contains(logs, `"fallback":"tls"`) || !strings.Contains(logs, `"transport":"fetch"`) {
		t.Errorf("logs do not show the fallback once with its reason:\n%s", logs)
	}
}

func TestConnectionReuseThroughTheProxy(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"x"}`)
	}), nil)
	cfg := testConfig(t, map[string]string{"openai": fake.URL})
	cfg.Transport = "socket"
	h := start(t, cfg)
	for range 20 {
		if status, _, _ := h.do("POST", "/openai/v1/chat/completions", nil, "{}"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if n := fake.Conns(); n != 1 {
		t.Errorf("20 sequential requests opened %d upstream connections, want 1", n)
	}
}

func TestGracefulShutdownLetsStreamsFinish(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: before\n\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "data: after\n\n")
	}), nil)
	cfg := testConfig(t, map[string]string{"openai": fake.URL})
	h := start(t, cfg)
	resp, err := h.client.Post(h.URL+"/openai/v1/chat/completions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)

	h.cancel() // SIGTERM
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.Addr, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-h.done:
		t.Fatal("Serve returned while a stream was running")
	default:
	}
	close(next)
	if ev := readEvent(t, br); ev != "data: after\n\n" {
		t.Errorf("event after shutdown began: %q", ev)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
	if !h.served() {
		t.Fatal("Serve did not return after the last stream ended")
	}
}

func TestShutdownDrainDeadline(t *testing.T) {
	t.Parallel()
	// Handed off (handoff.go), and relayed in its handler (a client that
	// asked to close the connection after the answer).
	for _, inHandler := range []bool{false, true} {
		t.Run(map[bool]string{false: "handed off", true: "in its handler"}[inHandler], func(t *testing.T) {
			t.Parallel()
			fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: forever\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}), nil)
			cfg := testConfig(t, map[string]string{"openai": fake.URL})
			cfg.Timeouts.Shutdown = 200 * time.Millisecond
			h := start(t, cfg)
			req, _ := http.NewRequest("POST", h.URL+"/openai/v1/chat/completions", strings.NewReader("{}"))
			req.Close = inHandler
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			readEvent(t, br)
			handedOff(t, h, map[bool]int{false: 1, true: 0}[inHandler])
			h.cancel()
			if !h.served() {
				t.Fatal("Serve did not give up on an endless stream after the drain timeout")
			}
			if _, err := io.ReadAll(br); err == nil || errors.Is(err, io.EOF) {
				t.Errorf("a stream cut by shutdown must end in an error, got %v", err)
			}
			logs := h.waitLog(1)
			if !strings.Contains(logs, `"error":"cut off at shutdown"`) || strings.Contains(logs, "upstream failed") {
				t.Errorf("the log does not say the shutdown cut the stream:\n%s", logs)
			}
			if n := h.srv.stats.Snapshot().Totals.UpstreamErrors; n != 0 {
				t.Errorf("%d upstream errors counted for a stream the shutdown cut", n)
			}
		})
	}
}
