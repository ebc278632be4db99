package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange sends bytes on a new connection and returns the response
// and whether the server closed the connection after it.
func rawExchange(t *testing.T, h *harness, request string) (*http.Response, string, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	closed := err == io.EOF
	return resp, string(body), closed
}

// net/http answers what it cannot parse before any handler runs; those
// answers are llmproxy's JSON errors too, and a request with both
// Content-Length and Transfer-Encoding closes its connection after the
// answer (RFC 9112 §6.1).
func TestErrorsBeforeTheHandlerAreJSON(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	cfg := testConfigTB(t, fake.URL)
	cfg.MaxHeaderBytes = 4096
	h := start(t, cfg)
	for _, tc := range []struct {
		name, request string
		status        int
		typ, says     string
	}{
		{"headers too large", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n", 431, "request_too_large", "max_header_bytes"},
		{"malformed header", "GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "invalid_request", "could not be read"},
		{"unsupported transfer coding", "POST /openai/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "invalid_request", "transfer encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, _ := rawExchange(t, h, tc.request)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Proxy-Error") != "true" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
			}
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != tc.typ || !strings.Contains(e.Error.Message, tc.says) {
				t.Errorf("body %s (%v)", body, err)
			}
		})
	}
	t.Run("both framing headers", func(t *testing.T) {
		req := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n" +
			"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
		resp, _, closed := rawExchange(t, h, req)
		if !closed || !resp.Close {
			t.Errorf("status %d, Connection %q; the connection must close after the answer", resp.StatusCode, resp.Header.Get("Connection"))
		}
		// An ordinary request keeps its connection.
		ok := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
		if _, _, closed := rawExchange(t, h, ok); closed {
			t.Error("an ordinary request's connection was closed")
		}
	})
}

// A client body that breaks (bad chunk sizes) is the client's error: 400,
// not 502, and not counted as an upstream failure.
func TestMalformedClientBodyIs400(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	for _, transport := range []string{"socket", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			cfg := testConfigTB(t, fake.URL)
			cfg.Transport = transport
			h := start(t, cfg)
			req := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\n{\"a\":\r\nzz\r\nnot a chunk\r\n\r\n"
			resp, body, _ := rawExchange(t, h, req)
			if resp.StatusCode != 400 || !strings.Contains(body, "request body could not be read") {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			h.waitLog(1)
			st := h.srv.stats.Snapshot()
			if r := st.Routes["openai"]; r.UpstreamErrors != 0 || r.Responses["4xx"] != 1 {
				t.Errorf("counted as %+v", r.Counts)
			}
		})
	}
}

// A first path segment refused as a token is never logged, however close
// to the token it is; the token in any spelling is redacted.
func TestRefusedTokenNeverLogged(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	cfg := testConfigTB(t, fake.URL)
	cfg.AuthToken = testToken
	cfg.Debug = true
	h := start(t, cfg)
	nearMiss := testToken[:len(testToken)-1] + "x"
	encoded := strings.ReplaceAll(testToken, "-", "%2d")
	h.do("GET", "/"+nearMiss+"/openai/v1/models", nil, "")
	h.do("GET", "/"+encoded+"/openai/v1/models", nil, "")
	// The statistics routes under the token are token attempts too.
	for _, route := range []string{"stats", "metrics"} {
		if status, _, _ := h.do("GET", "/"+nearMiss+"/"+route, nil, ""); status != 401 {
			t.Errorf("/<near miss>/%s: status %d, want 401", route, status)
		}
	}
	// A near miss before a path no route has is a 404, and not logged
	// either.
	if status, _, _ := h.do("GET", "/"+nearMiss+"/nowhere", nil, ""); status != 404 {
		t.Errorf("/<near miss>/nowhere: status %d, want 404", status)
	}
	logs := h.waitLog(5)
	for _, s := range []string{nearMiss, encoded, testToken, testToken[:12]} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs, `"status":401`) || !strings.Contains(logs, `"duration_ms"`) {
		t.Errorf("request lines: %s", logs)
	}
}

// Every head on a connection is watched, whatever answered the request
// before it (net/http's own OPTIONS * handler, a handler that left its
// body for net/http to discard) and however it arrives: after the answer
// to the one before, pipelined behind it in the same write, or split
// across writes just before Transfer-Encoding. A request with both
// framing headers closes the connection by its own answer at the latest.
func TestBothFramingAfterAnyRequest(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	h := start(t, testConfigTB(t, fake.URL))
	both := "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n" +
		"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
	split := strings.Index(both, "Transfer-Encoding")
	// OPTIONS * answered as net/http answers it, and itself closing the
	// connection when it has both framing headers.
	cc := dialProxy(t, h)
	cc.send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := cc.response(); resp.StatusCode != 200 || resp.ContentLength != 0 || body != "" || resp.Close {
		t.Fatalf("OPTIONS *: %d, length %d, %q, close %v", resp.StatusCode, resp.ContentLength, body, resp.Close)
	}
	cc.send("OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, _ := cc.response(); !resp.Close {
		t.Errorf("OPTIONS * with both framing headers: status %d without Connection: close", resp.StatusCode)
	}
	// Nor is such a request upgraded to a WebSocket (a hijacked
	// connection would stay open).
	cc = dialProxy(t, h)
	cc.send("GET /openai/v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, _ := cc.response(); resp.StatusCode != 400 || !resp.Close {
		t.Errorf("an upgrade with both framing headers: status %d, close %v; want 400 and close", resp.StatusCode, resp.Close)
	}
	for _, first := range []struct{ name, request string }{
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"a short body", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd"},
		// More than net/http's read buffer: the rest is read off the socket.
		{"an unread body", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 8196\r\n\r\n" + strings.Repeat("a", 8192) + "\r\n\r\n"},
	} {
		for _, how := range []string{"after its answer", "pipelined", "pipelined, split before Transfer-Encoding"} {
			t.Run(first.name+", "+how, func(t *testing.T) {
				cc := dialProxy(t, h)
				switch how {
				case "after its answer":
					cc.send(first.request)
					if resp, _ := cc.response(); resp.Close {
						t.Fatalf("the first request closed the connection (%d)", resp.StatusCode)
					}
					cc.send(both)
				case "pipelined":
					cc.send(first.request + both)
				default:
					cc.send(first.request + both[:split])
					time.Sleep(50 * time.Millisecond)
					cc.send(both[split:])
				}
				answers := 1
				if how != "after its answer" {
					answers = 2
				}
				for i := range answers {
					resp, _ := cc.response()
					if resp.Close {
						return
					}
					if i == answers-1 {
						t.Errorf("status %d without Connection: close after a request with both framing headers", resp.StatusCode)
					}
				}
			})
		}
	}
}
