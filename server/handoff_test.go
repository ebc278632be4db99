package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
)

// Streams handed off to a relay goroutine (handoff.go): the connection
// carries the client's next requests, the bookkeeping happens when the
// stream ends, and everything that cannot be handed off is relayed as
// before.

// streamProxy starts handoffUpstream behind a proxy and connects a
// client: the upstream's second event waits for release.
func streamProxy(t *testing.T) (fake *providertest.Server, release chan struct{}, h *harness, cc *clientConn) {
	t.Helper()
	release = make(chan struct{})
	fake = handoffUpstream(t, release)
	h = start(t, testConfigTB(t, fake.URL))
	return fake, release, h, dialProxy(t, h)
}

// handoffUpstream answers /v1/chat/completions with three SSE events, the
// second one after release is closed (never, when release is nil), and
// anything else with JSON.
func handoffUpstream(t *testing.T, release chan struct{}) *providertest.Server {
	return providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "data: two\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: [DONE]\n\n")
	}), nil)
}

const handoffEvents = "data: one\n\ndata: two\n\ndata: [DONE]\n\n"

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clientConn is one client connection speaking HTTP/1.1 by hand.
type clientConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialProxy(t *testing.T, h *harness) *clientConn {
	t.Helper()
	c, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &clientConn{t: t, c: c, br: bufio.NewReader(c)}
}

func postRequest(path, body string, extra ...string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n" +
		strings.Join(extra, "") + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func (cc *clientConn) send(request string) {
	cc.t.Helper()
	if _, err := io.WriteString(cc.c, request); err != nil {
		cc.t.Fatal(err)
	}
}

// response reads one response; its body is read to the end.
func (cc *clientConn) response() (*http.Response, string) {
	cc.t.Helper()
	resp, err := http.ReadResponse(cc.br, nil)
	if err != nil {
		cc.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		cc.t.Fatalf("reading a body: %v (got %q)", err, b) // see the log
	}
	return resp, string(b)
}

// openStream sends request and reads the answer's head and its first
// event; the rest of the body follows in the returned reader.
func (cc *clientConn) openStream(request string) (*http.Response, *bufio.Reader, string) {
	cc.t.Helper()
	cc.send(request)
	resp, err := http.ReadResponse(cc.br, nil)
	if err != nil {
		cc.t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	return resp, br, readEvent(cc.t, br)
}

// handedOff fails the test unless want streams are handed off.
func handedOff(t *testing.T, h *harness, want int) {
	t.Helper()
	if n := h.srv.handoffs.Open(); n != want {
		t.Fatalf("%d streams handed off, want %d", n, want)
	}
}

// closedByProxy reports whether the proxy closed the connection, waiting
// up to 5s.
func (cc *clientConn) closedByProxy() bool { return cc.closedWithin(5 * time.Second) }

// closedWithin reports whether the proxy closed the connection, waiting up
// to d.
func (cc *clientConn) closedWithin(d time.Duration) bool {
	cc.c.SetReadDeadline(time.Now().Add(d))
	_, err := cc.br.ReadByte()
	return errors.Is(err, io.EOF)
}

func TestHandedOffStreamKeepsItsConnection(t *testing.T) {
	t.Parallel()
	fake, release, h, cc := streamProxy(t)

	resp, br, ev := cc.openStream(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
	if resp.StatusCode != 200 || resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	if ev != "data: one\n\n" {
		t.Fatalf("first event %q", ev)
	}
	handedOff(t, h, 1) // the stream waits for its next event outside its handler
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "data: two\n\ndata: [DONE]\n\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}

	// The same connection carries the next requests: a JSON answer, then
	// another stream.
	cc.send(postRequest("/openai/v1/models", `{}`))
	if resp, body := cc.response(); resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("second request on the connection: %d %q", resp.StatusCode, body)
	}
	eventually(t, "the connection was not given back to the server", func() bool { return h.srv.handoffs.Open() == 0 })
	cc.send(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
	if resp, body := cc.response(); resp.StatusCode != 200 || body != handoffEvents {
		t.Fatalf("third request on the connection: %d %q", resp.StatusCode, body)
	}
	if n := fake.Conns(); n != 1 {
		t.Errorf("the upstream saw %d connections, want 1 (reused after each stream)", n)
	}

	// One log line per request, the streams' written when they ended, with
	// the bytes of the body (not of its chunk framing).
	logs := h.waitLog(3)
	var lines []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d request lines:\n%s", len(lines), logs)
	}
	for i, want := range []int{len(handoffEvents), len(`{"ok":true}`), len(handoffEvents)} {
		m := lines[i]
		if m["status"] != 200.0 || m["bytes_out"] != float64(want) || m["aborted"] != nil || m["error"] != nil || m["level"] != "INFO" {
			t.Errorf("line %d: %v", i, m)
		}
	}
	if s := h.srv.stats.Snapshot(); s.Totals.OpenStreams != 0 {
		t.Errorf("%d streams counted open after both ended", s.Totals.OpenStreams)
	}
}

func TestPipelinedRequestAfterAHandedOffStream(t *testing.T) {
	t.Parallel()
	_, release, h, cc := streamProxy(t)
	_, br, ev := cc.openStream(postRequest("/openai/v1/chat/completions", `{"stream":true}`) + postRequest("/openai/v1/models", `{}`))
	if ev != "data: one\n\n" {
		t.Fatalf("first event %q", ev)
	}
	handedOff(t, h, 1)
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "data: two\n\ndata: [DONE]\n\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}
	if resp, body := cc.response(); resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("the request sent behind it: %d %q", resp.StatusCode, body)
	}
}

// A request with both Content-Length and Transfer-Encoding sent right
// behind a stream is still seen as one (RFC 9112 §6.1: the connection
// closes by its answer at the latest), when the stream is handed off and
// when, read with the stream's request, it keeps the stream from being
// handed off.
func TestBothFramingHeadersBehindAHandedOffStream(t *testing.T) {
	t.Parallel()
	fake := handoffUpstream(t, nil)
	h := start(t, testConfigTB(t, fake.URL), func(o *Options) {
		// The handler returns only once the relay gave the connection
		// back: the server may be reading the next head already.
		o.afterHandOff = func(s *Server, _ *logWriter) {
			deadline := time.Now().Add(5 * time.Second)
			for s.handoffs.Open() > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	})
	both := "POST /openai/v1/models HTTP/1.1\r\nHost: proxy\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
	for i := range 6 {
		cc := dialProxy(t, h)
		stream := postRequest("/openai/v1/chat/completions", `{"stream":true}`)
		if i%2 == 0 {
			cc.send(stream + both)
		} else { // behind a stream handed off and ended
			cc.send(stream)
			if _, body := cc.response(); body != handoffEvents {
				t.Fatalf("stream %q", body)
			}
			cc.send(both)
			if resp, _ := cc.response(); !resp.Close {
				t.Fatalf("round %d: the answer to a request with both framing headers does not close the connection", i)
			}
			if !cc.closedByProxy() {
				t.Fatalf("round %d: the connection stayed open", i)
			}
			continue
		}
		resp, body := cc.response()
		if body != handoffEvents {
			t.Fatalf("stream %q", body)
		}
		if !resp.Close { // (it may close already: the next head was read with it)
			if resp, _ = cc.response(); !resp.Close {
				t.Fatalf("round %d: the answer to a request with both framing headers does not close the connection", i)
			}
		}
		if !cc.closedByProxy() {
			t.Fatalf("round %d: the connection stayed open", i)
		}
	}
}

func TestHandedOffConnectionIdleTimeout(t *testing.T) {
	t.Parallel()
	fake := handoffUpstream(t, nil)
	cfg := testConfigTB(t, fake.URL)
	cfg.Timeouts.ClientIdle = 200 * time.Millisecond
	h := start(t, cfg)
	cc := dialProxy(t, h)
	start := time.Now() // before the stream, so before client_idle's clock: a slow test cannot shorten it
	cc.send(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
	if _, body := cc.response(); body != handoffEvents {
		t.Fatalf("stream %q", body)
	}
	if !cc.closedByProxy() {
		t.Fatal("a silent client's connection was not closed after client_idle")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("closed after %v, before client_idle (200ms)", d)
	}
	eventually(t, "the closed connection is still counted", func() bool { return h.srv.handoffs.Open() == 0 })
}

// A handed-off stream's connection waits client_idle for the next request,
// not read_header: net/http takes it for a new connection, whose first
// head it reads under read_header from the start. read_header counts from
// the next request's first bytes, as net/http's does between requests.
func TestHandedOffConnectionWaitsClientIdle(t *testing.T) {
	t.Parallel()
	fake := handoffUpstream(t, nil)
	cfg := testConfigTB(t, fake.URL)
	cfg.Timeouts.ReadHeader = 400 * time.Millisecond
	cfg.Timeouts.ClientIdle = 10 * time.Second
	h := start(t, cfg)
	cc := dialProxy(t, h)
	stream := postRequest("/openai/v1/chat/completions", `{"stream":true}`)
	for i := range 2 {
		cc.send(stream)
		if _, body := cc.response(); body != handoffEvents {
			t.Fatalf("stream %d: %q", i, body)
		}
		eventually(t, "the connection was not given back", func() bool { return h.srv.handoffs.Open() == 0 })
		time.Sleep(time.Second) // past read_header
	}
	// A head sent in two parts after the wait: read_header runs from
	// its first bytes.
	half := len(stream) / 2
	cc.send(stream[:half])
	time.Sleep(100 * time.Millisecond)
	cc.send(stream[half:])
	if _, body := cc.response(); body != handoffEvents {
		t.Fatalf("stream after a head in two parts: %q", body)
	}
	eventually(t, "the connection was not given back", func() bool { return h.srv.handoffs.Open() == 0 })
	// A head that never ends is cut off after read_header, client_idle
	// notwithstanding (net/http answers 400 and closes).
	cc.send(stream[:half])
	cc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(cc.br); err != nil || !strings.HasPrefix(string(rest), "HTTP/1.1 400 ") {
		t.Fatalf("a head left unfinished: %v after %q, want a 400 and the connection closed at read_header", err, rest)
	}
}

// A shutdown does not wait for a connection whose stream ended: it is
// closed at once, as net/http closes its idle connections (net/http itself
// takes a connection that has not sent its first request for idle only
// after 5 seconds).
func TestShutdownClosesHandedOffIdleConnections(t *testing.T) {
	t.Parallel()
	fake := handoffUpstream(t, nil)
	cfg := testConfigTB(t, fake.URL)
	cfg.Timeouts.ClientIdle = time.Hour
	cfg.Timeouts.Shutdown = time.Hour
	h := start(t, cfg)
	for _, given := range []bool{false, true} {
		cc := dialProxy(t, h)
		cc.send(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
		if _, body := cc.response(); body != handoffEvents {
			t.Fatalf("stream %q", body)
		}
		eventually(t, "the stream did not end", func() bool { return h.srv.handoffs.Open() == 0 })
		if !given {
			// Two connections wait for their next request; the
			// shutdown closes both.
			defer func() {
				if !cc.closedWithin(3 * time.Second) {
					t.Error("the idle connection was not closed at once")
				}
			}()
			continue
		}
		h.cancel()
		if !cc.closedWithin(3 * time.Second) {
			t.Error("the idle connection was not closed at once")
		}
	}
	if !h.served() {
		t.Fatal("Serve waited for a connection that only waited for a next request")
	}
}

// What cannot be handed off is relayed in the handler, as before.
func TestStreamsNotHandedOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, request string
		closes        bool
	}{
		{"connection close", postRequest("/openai/v1/chat/completions", `{}`, "Connection: close\r\n"), true},
		{"HTTP/1.0", strings.Replace(postRequest("/openai/v1/chat/completions", `{}`), "HTTP/1.1", "HTTP/1.0", 1), true},
		{"chunked request body", "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, release, h, cc := streamProxy(t)
			_, br, ev := cc.openStream(tc.request)
			if ev != "data: one\n\n" {
				t.Fatalf("first event %q", ev)
			}
			handedOff(t, h, 0)
			close(release)
			if rest, err := io.ReadAll(br); err != nil || string(rest) != "data: two\n\ndata: [DONE]\n\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
			if tc.closes != cc.closedByProxy() {
				t.Errorf("connection closed after the stream: %v, want %v", !tc.closes, tc.closes)
			}
		})
	}
}

// An upstream failing in a handed-off stream aborts the client's
// connection (no last chunk) and is logged as the handler logged it.
func TestHandedOffStreamUpstreamFailure(t *testing.T) {
	t.Parallel()
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		c.ReadRequest()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		io.WriteString(c, "b\r\ndata: one\n\n\r\n")
		time.Sleep(100 * time.Millisecond)
		c.Reset()
	})
	cfg := testConfig(t, map[string]string{"openai": raw.URL})
	h := start(t, cfg)
	cc := dialProxy(t, h)
	_, br, _ := cc.openStream(postRequest("/openai/v1/chat/completions", `{}`))
	handedOff(t, h, 1)
	if rest, err := io.ReadAll(br); err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("the stream ended with %v after %q: want the connection cut off", err, rest)
	}
	logs := h.waitLog(1)
	if !strings.Contains(logs, `"error":"upstream failed mid-response"`) || !strings.Contains(logs, `"aborted":true`) || !strings.Contains(logs, `"level":"WARN","msg":"request"`) {
		t.Errorf("log:\n%s", logs)
	}
	eventually(t, "the aborted stream is still counted", func() bool { return h.srv.handoffs.Open() == 0 })
}

// The gateway settles a handed-off stream when it ends: usage counted and
// logged, the client key's concurrency slot given back.
func TestHandedOffGatewayStreamSettles(t *testing.T) {
	t.Parallel()
	release := make(chan struct{}) // the first stream waits for it after its first event
	var first atomic.Bool
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
		w.(http.Flusher).Flush()
		if first.CompareAndSwap(false, true) {
			<-release
		}
		io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\ndata: [DONE]\n\n")
	}), nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
			config.Model{Name: "m", Targets: []config.Target{{Provider: "alpha", Model: "up-m"}}})
		for i := range cfg.ClientKeys {
			cfg.ClientKeys[i].MaxParallel = 1
		}
	})
	h := startGateway(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	cc := dialProxy(t, h)
	request := postRequest("/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`, "Authorization: Bearer "+aliceKey+"\r\n")
	for i := range 3 { // one at a time: each ends before the next starts, within the limit of one
		var resp *http.Response
		var body string
		if i == 0 {
			var br *bufio.Reader
			resp, br, body = cc.openStream(request)
			handedOff(t, h, 1)
			close(release)
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			body += string(rest)
		} else {
			cc.send(request)
			resp, body = cc.response()
		}
		if resp.StatusCode != 200 || !strings.Contains(body, `"content":"hi"`) || strings.Contains(body, `"usage"`) {
			t.Fatalf("stream %d: %d %q", i, resp.StatusCode, body)
		}
	}
	logs := h.waitLog(3)
	if n := strings.Count(logs, `"tokens_in":7,"tokens_out":5`); n != 3 {
		t.Errorf("%d of 3 lines with the usage:\n%s", n, logs)
	}
}

func TestChunkSize(t *testing.T) {
	room := make([]byte, chunkRoom)
	for _, n := range []int{1, 9, 10, 15, 16, 255, 256, 2038, 4095, 32758, 1<<24 - 1} {
		start := chunkSize(room, n)
		if got, want := string(room[start:]), strconv.FormatInt(int64(n), 16)+"\r\n"; got != want {
			t.Errorf("chunkSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// A next request sent while the stream still runs waits in the socket
// (the watcher notes it and stops watching) and is answered after it.
func TestNextRequestSentDuringAHandedOffStream(t *testing.T) {
	t.Parallel()
	_, release, h, cc := streamProxy(t)
	_, br, ev := cc.openStream(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
	if ev != "data: one\n\n" {
		t.Fatalf("first event %q", ev)
	}
	cc.send(postRequest("/openai/v1/models", `{}`))
	eventually(t, "the watcher did not see the next request", func() bool {
		var pending bool
		h.srv.handoffs.each(func(ho *handoff) { pending = pending || ho.pendingNext() })
		return pending
	})
	close(release)
	if rest, err := io.ReadAll(br); err != nil || string(rest) != "data: two\n\ndata: [DONE]\n\n" {
		t.Fatalf("rest of the stream %q, %v", rest, err)
	}
	if resp, body := cc.response(); resp.StatusCode != 200 || body != `{"ok":true}` {
		t.Fatalf("the request sent during the stream: %d %q", resp.StatusCode, body)
	}
}

func (hs *handoffs) each(f func(*handoff)) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for h := range hs.m {
		f(h)
	}
}

func (h *handoff) pendingNext() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

// A preset holding the provider's key settles its limits when a
// handed-off stream ends, not when the handler returns: a client key
// allowed one request at a time is refused a second one meanwhile, and the
// stream's usage is counted.
func TestHandedOffKeyedPresetStreamSettles(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\ndata: [DONE]\n\n")
	}), nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.Presets = map[string]preset.Override{"openai": {URL: fake.URL, Keys: []string{"env:ALPHA_KEY_1"}}}
		for i := range cfg.ClientKeys {
			cfg.ClientKeys[i].MaxParallel = 1
		}
	})
	h := startGateway(t, cfg)
	auth := "Authorization: Bearer " + aliceKey + "\r\n"
	stream := postRequest("/openai/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`, auth)
	cc := dialProxy(t, h)
	_, br, _ := cc.openStream(stream)
	handedOff(t, h, 1)
	other := dialProxy(t, h)
	other.send(stream)
	if resp, err := http.ReadResponse(other.br, nil); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a second request while the first streams: %v, %v; want 429 (max_parallel 1)", resp, err)
	}
	close(release)
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	logs := h.waitLog(2)
	if !strings.Contains(logs, `"status":200`) || !strings.Contains(logs, `"tokens_in":7,"tokens_out":5`) {
		t.Errorf("the stream's line lacks its usage:\n%s", logs)
	}
	cc.send(stream) // the slot is free again
	if resp, _ := cc.response(); resp.StatusCode != 200 {
		t.Errorf("after the stream ended: %d", resp.StatusCode)
	}
}

// A client that pipelined its next request and then left still cancels
// the stream's upstream request: the watch covers pipelined streams too.
func TestPipelinedClientLeavingCancelsUpstream(t *testing.T) {
	t.Parallel()
	upstreamDone := make(chan struct{})
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(upstreamDone)
	}), nil)
	h := start(t, testConfigTB(t, fake.URL))
	cc := dialProxy(t, h)
	cc.openStream(postRequest("/openai/v1/chat/completions", `{"stream":true}`) + postRequest("/openai/v1/models", `{}`))
	handedOff(t, h, 1)
	cc.c.Close()
	select {
	case <-upstreamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request still running 5s after the client left")
	}
}

// A stream's first event that came with the response's head goes out with
// it, before the hand-off (one write; the relay's would come a write and a
// goroutine later). One that did not come with it is not waited for: the
// head goes out and the stream is handed off at once.
func TestFirstEventGoesWithTheHead(t *testing.T) {
	t.Parallel()
	for _, withHead := range []bool{true, false} {
		t.Run(fmt.Sprintf("with the head %v", withHead), func(t *testing.T) {
			t.Parallel()
			handedOff := make(chan struct{})
			before := make(chan int64, 1) // the bytes of the body written before the hand-off
			fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				if withHead {
					io.WriteString(w, "data: one\n\n")
				}
				w.(http.Flusher).Flush() // the head, with the first event or alone
				select {
				case <-handedOff:
				case <-r.Context().Done():
					return
				}
				if !withHead {
					io.WriteString(w, "data: one\n\n")
				}
				io.WriteString(w, "data: [DONE]\n\n")
			}), nil)
			h := start(t, testConfigTB(t, fake.URL), func(o *Options) {
				o.afterHandOff = func(_ *Server, w *logWriter) {
					// The relay writes nothing more until the upstream
					// sends its next bytes, after this.
					before <- w.bytesOut
					close(handedOff)
				}
			})
			cc := dialProxy(t, h)
			cc.send(postRequest("/openai/v1/chat/completions", `{"stream":true}`))
			if _, body := cc.response(); body != "data: one\n\ndata: [DONE]\n\n" {
				t.Fatalf("stream %q", body)
			}
			want := int64(len("data: one\n\n"))
			if !withHead {
				want = 0
			}
			if n := <-before; n != want {
				t.Errorf("%d bytes of the body written before the hand-off, want %d", n, want)
			}
		})
	}
}
