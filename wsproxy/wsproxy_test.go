package wsproxy

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/socket"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// silentUpstream completes the WebSocket handshake by hand, then never
// reads again: pings go unanswered.
func silentUpstream(t *testing.T) *providertest.Raw {
	return providertest.NewRaw(t, func(c *providertest.RawConn) {
		req, _, err := c.ReadRequest()
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
		io.Copy(io.Discard, c.R) // swallow pings, answer nothing, until closed
	})
}

func TestUnansweredPingEndsTheSession(t *testing.T) {
	t.Parallel()
	up := silentUpstream(t)
	tr := &socket.Transport{TLSClientConfig: providertest.CA(t).ClientTLS()}
	defer tr.CloseIdleConnections()
	relay := New(Options{PingInterval: 100 * time.Millisecond})
	target, _ := url.Parse(strings.Replace(up.URL, "https", "wss", 1) + "/v1/realtime")
	ended := make(chan Result, 1)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := relay.Serve(w, r, Dial{Target: target, Transport: tr})
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ended <- res
	}))
	defer front.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	start := time.Now()
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusBadGateway {
		t.Fatalf("client saw %v, want close 1014", err)
	}
	if res := <-ended; res.Reason != "upstream connection lost" {
		t.Errorf("result %+v", res)
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("the dead upstream went unnoticed for %v", time.Since(start))
	}
	if err := relay.Shutdown(context.Background()); err != nil || relay.Open() != 0 {
		t.Errorf("shutdown with no session: %v, %d open", err, relay.Open())
	}
}

func TestSubprotocolsAndUpgradeDetection(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.k")
	r.Header.Add("Sec-WebSocket-Protocol", "openai-beta.realtime-v1")
	if got := Subprotocols(r); strings.Join(got, "|") != "realtime|openai-insecure-api-key.k|openai-beta.realtime-v1" {
		t.Errorf("Subprotocols = %q", got)
	}
	if IsUpgrade(r) {
		t.Error("a plain GET is not an upgrade")
	}
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "WebSocket")
	if !IsUpgrade(r) || ValidClientHandshake(r) {
		t.Error("upgrade without key and version: detected but not valid")
	}
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if !ValidClientHandshake(r) {
		t.Error("valid handshake refused")
	}
	for in, want := range map[websocket.StatusCode]websocket.StatusCode{1005: 1000, 1006: 1000, 1015: 1000, 4001: 4001, 1001: 1001} {
		if got := sendable(in); got != want {
			t.Errorf("sendable(%d) = %d", in, got)
		}
	}
}
