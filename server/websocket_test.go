package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
)

// wsUpstream is a fake realtime API over TLS. Paths choose its behaviour:
//
//	/echo       echo every message, keeping its type
//	/close      close with 4002 "done" after the first message
//	/drop       drop the TCP connection after the first message, no close frame
//	/watch      report how the client side ended, on closed
//	/refuse     answer the handshake with 401 JSON
type wsUpstream struct {
	*providertest.Server
	closed chan websocket.CloseError
}

func newWSUpstream(t *testing.T) *wsUpstream {
	u := &wsUpstream{closed: make(chan websocket.CloseError, 4)}
	u.Server = providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/refuse") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}`)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 20)
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					u.closed <- ce
				} else {
					u.closed <- websocket.CloseError{Code: -1, Reason: err.Error()}
				}
				return
			}
			switch {
			case strings.HasSuffix(r.URL.Path, "/close"):
				c.Close(4002, "done")
				return
			case strings.HasSuffix(r.URL.Path, "/drop"):
				return // CloseNow: no close frame
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	}), nil)
	return u
}

func dialWS(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.HTTPClient = &http.Client{Transport: &http.Transport{}}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if c != nil {
		c.SetReadLimit(64 << 20)
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func wsURL(h *harness, path string) string { return "ws" + strings.TrimPrefix(h.URL, "http") + path }

func TestWebSocketRelay(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"socket", "fetch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := newWSUpstream(t)
			cfg := testConfig(t, map[string]string{"openai": up.URL})
			cfg.Transport = mode
			h := start(t, cfg)

			c, resp, err := dialWS(t, wsURL(h, "/openai/v1/realtime/echo?model=gpt-realtime"), &websocket.DialOptions{
				HTTPHeader: http.Header{
					"Authorization":   {"Bearer sk-realtime"},
					"Openai-Beta":     {"realtime=v1"},
					"Origin":          {"https://app.example"},
					"Cookie":          {"session=1"},
					"X-Forwarded-For": {"203.0.113.9"},
					"User-Agent":      {"browser/1"},
				},
				Subprotocols: []string{"realtime", "openai-insecure-api-key.sk-in-subprotocol", "openai-beta.realtime-v1"},
			})
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if c.Subprotocol() != "realtime" {
				t.Errorf("subprotocol = %q, want the upstream's choice", c.Subprotocol())
			}
			ctx := context.Background()
			big := make([]byte, 4<<20)
			rand.Read(big)
			for _, m := range []struct {
				typ  websocket.MessageType
				data []byte
			}{
				{websocket.MessageText, []byte(`{"type":"session.update"}`)},
				{websocket.MessageBinary, []byte{0, 1, 2, 255}},
				{websocket.MessageBinary, big},
				{websocket.MessageText, []byte("after the big one")},
			} {
				if err := c.Write(ctx, m.typ, m.data); err != nil {
					t.Fatalf("write: %v", err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
					t.Fatalf("echo of a %d-byte %v message: got %d bytes of %v, %v", len(m.data), m.typ, len(got), typ, err)
				}
			}
			// The client closes with its own code and reason; the upstream sees them.
			c.Close(4001, "bye")
			select {
			case ce := <-up.closed:
				if ce.Code != 4001 || ce.Reason != "bye" {
					t.Errorf("upstream saw close %v, want 4001 bye", ce)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("upstream never saw the close")
			}

			hs := up.Requests()[0]
			if hs.URI != "/v1/realtime/echo?model=gpt-realtime" {
				t.Errorf("upstream URI %q", hs.URI)
			}
			if hs.Header.Get("Authorization") != "Bearer sk-realtime" || hs.Header.Get("Openai-Beta") != "realtime=v1" {
				t.Errorf("credentials lost: %v", hs.Header)
			}
			if got := hs.Header.Get("Sec-Websocket-Protocol"); got != "realtime, openai-insecure-api-key.sk-in-subprotocol, openai-beta.realtime-v1" &&
				got != "realtime,openai-insecure-api-key.sk-in-subprotocol,openai-beta.realtime-v1" {
				t.Errorf("offered subprotocols upstream: %q", got)
			}
			for _, name := range []string{"Origin", "Cookie", "X-Forwarded-For", "User-Agent"} {
				if v, ok := hs.Header[name]; ok {
					t.Errorf("%s reached the upstream: %q", name, v)
				}
			}
			logs := h.waitLog(1)
			if strings.Contains(logs, "sk-in-subprotocol") || strings.Contains(logs, "sk-realtime") {
				t.Errorf("a key reached the log:\n%s", logs)
			}
		})
	}
}

func TestWebSocketCloseFromUpstreamAndDrop(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	h := start(t, testConfig(t, map[string]string{"openai": up.URL}))
	ctx := context.Background()

	for path, want := range map[string]websocket.CloseError{
		"/openai/v1/close": {Code: 4002, Reason: "done"},
		"/openai/v1/drop":  {Code: websocket.StatusBadGateway, Reason: "upstream connection lost"},
	} {
		c, _, err := dialWS(t, wsURL(h, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, []byte("hi"))
		_, _, err = c.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != want.Code || ce.Reason != want.Reason {
			t.Errorf("%s: client saw %v, want close %d %q", path, err, want.Code, want.Reason)
		}
	}
}

func TestWebSocketClientDropReachesUpstream(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	h := start(t, testConfig(t, map[string]string{"openai": up.URL}))
	c, _, err := dialWS(t, wsURL(h, "/openai/v1/watch"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(context.Background(), websocket.MessageText, []byte("hi"))
	c.Read(context.Background())
	c.CloseNow() // the client vanishes without a close frame
	select {
	case ce := <-up.closed:
		if ce.Code != websocket.StatusGoingAway {
			t.Errorf("upstream saw %v, want 1001", ce)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream never learned that the client left")
	}
}

func TestWebSocketHandshakeFailuresAreHTTP(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	refused := providertest.NewRaw(t, func(c *providertest.RawConn) { c.Reset() })
	cfg := testConfig(t, map[string]string{"openai": up.URL, "groq": refused.URL})
	cfg.AuthToken = testToken
	h := start(t, cfg)

	_, resp, err := dialWS(t, wsURL(h, "/openai/v1/refuse"), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("refused upstream handshake: %v %v", err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "invalid_api_key") {
		t.Errorf("the provider's JSON error should reach the client: %q", body)
	}
	_, resp, err = dialWS(t, wsURL(h, "/groq/openai/v1/realtime"), nil)
	if err == nil || resp == nil || resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != "true" {
		t.Fatalf("unreachable upstream: %v %v", err, resp)
	}
	// Generic targets go through the address guard, WebSockets too.
	_, resp, err = dialWS(t, wsURL(h, "/"+testToken+"/wss/127.0.0.1:"+portOf(up.URL)+"/v1/echo"), nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("guarded WebSocket: %v %v", err, resp)
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("upstream saw %d handshakes, want only the refused one", n)
	}
}

// An upstream that answers the handshake with a success or a redirect
// and a JSON body has refused the upgrade all the same: the client gets
// llmproxy's 502, not the upstream's 200 or a 302 without its Location.
func TestWebSocketHandshakeAnsweredWithoutUpgradeIs502(t *testing.T) {
	t.Parallel()
	up := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/moved") {
			w.Header().Set("Location", "https://elsewhere.example/")
			w.WriteHeader(http.StatusFound)
		}
		io.WriteString(w, `{"ok":true}`)
	}), nil)
	h := start(t, testConfig(t, map[string]string{"openai": up.URL}))
	for _, path := range []string{"/openai/v1/realtime", "/openai/v1/moved"} {
		_, resp, err := dialWS(t, wsURL(h, path), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Proxy-Error") != "true" {
			t.Errorf("%s: %v, %v; want llmproxy's 502", path, err, resp)
		}
	}
}

// A client handshake llmproxy's WebSocket library would refuse — a key
// that is not 16 bytes of base64, two keys, HTTP/1.0 — is refused before
// anything is dialled (on a keyed preset that would open a session on the
// operator's key), with llmproxy's JSON 400, once.
func TestWebSocketBadClientHandshakeDialsNothing(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	h := start(t, testConfig(t, map[string]string{"openai": up.URL}))
	const good = "dGhlIHNhbXBsZSBub25jZQ=="
	for name, head := range map[string]string{
		"short key": "GET /openai/v1/realtime/echo HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: x\r\n",
		"two keys":  "GET /openai/v1/realtime/echo HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: " + good + "\r\nSec-WebSocket-Key: " + good + "\r\n",
		"HTTP/1.0":  "GET /openai/v1/realtime/echo HTTP/1.0\r\nHost: x\r\nSec-WebSocket-Key: " + good + "\r\n",
	} {
		resp, body := h.raw(head + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Proxy-Error") != "true" || json.Unmarshal([]byte(body), &e) != nil {
			t.Errorf("%s: status %d, X-Proxy-Error %q, body %q; want llmproxy's JSON 400", name, resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the upstream saw %d handshakes for client handshakes llmproxy refused", n)
	}
}

func TestWebSocketGenericAndShutdown(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	h, _ := startGeneric(t, func(c *config.Config) { c.WebSocket.PingInterval = 50 * time.Millisecond })
	c, _, err := dialWS(t, wsURL(h, "/"+testToken+"/wss/provider.test:"+portOf(up.URL)+"/v1/echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Write(ctx, websocket.MessageText, []byte("ping through generic"))
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping through generic" {
		t.Fatalf("generic echo: %q %v", msg, err)
	}
	time.Sleep(200 * time.Millisecond) // a few keepalive pings go by

	h.cancel() // SIGTERM
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("on shutdown the client saw %v, want close 1001", err)
	}
	select {
	case ce := <-up.closed:
		if ce.Code != websocket.StatusGoingAway {
			t.Errorf("upstream saw %v, want 1001", ce)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream not closed on shutdown")
	}
}

func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := testConfig(t, map[string]string{"openai": up.URL})
	cfg.WebSocket.IdleTimeout = 300 * time.Millisecond
	h := start(t, cfg)
	c, _, err := dialWS(t, wsURL(h, "/openai/v1/echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(context.Background())
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "idle timeout" {
		t.Errorf("idle session: %v", err)
	}
}

func TestGeminiLiveWebSocketBypassesResume(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := testConfig(t, map[string]string{"gemini": up.URL})
	if !cfg.Gemini.Resume {
		t.Fatal("resume must be on for this test")
	}
	h := start(t, cfg)
	c, _, err := dialWS(t, wsURL(h, "/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent/echo?key=AIzaSy-test"), nil)
	if err != nil {
		t.Fatalf("Gemini Live through the gemini preset: %v", err)
	}
	ctx := context.Background()
	c.Write(ctx, websocket.MessageText, []byte(`{"setup":{"model":"models/gemini-live"}}`))
	if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), "setup") {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if uri := up.Requests()[0].URI; !strings.HasSuffix(uri, "/echo?key=AIzaSy-test") {
		t.Errorf("upstream URI %q", uri)
	}
}

// No credential of llmproxy's own leaves in a WebSocket subprotocol: not
// the operator's token (in any spelling) in generic mode, not a client key
// offered as OpenAI's browser credential on a preset with server-side
// keys (where it authenticates the client, and the server's key goes in
// the header instead). A provider key the client itself offered on a
// keyless preset is the client's to send.
func TestWebSocketSubprotocolsCarryNoCredentialOfOurs(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 4)
	up := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
		if err != nil {
			return
		}
		c.Close(websocket.StatusNormalClosure, "bye")
	}), nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.AuthToken = testToken
		cfg.AllowPrivate = true
		cfg.Presets = map[string]preset.Override{
			"keyed": {URL: up.URL, Keys: []string{"env:ALPHA_KEY_1"}},
			"plain": {URL: up.URL},
		}
	})
	h := startGateway(t, cfg)
	wsURL := "ws" + strings.TrimPrefix(h.URL, "http")
	upHost := strings.TrimPrefix(up.URL, "https://")
	for _, tc := range []struct {
		name, path   string
		protocols    []string
		wantUpstream []string // subprotocols the upstream must get
		wantAuth     string
	}{
		{"token in generic mode", "/" + testToken + "/wss/" + upHost + "/v1/realtime",
			[]string{"realtime", "llmproxy." + testToken, "x." + strings.ReplaceAll(testToken, "-", "%2D")}, []string{"realtime"}, ""},
		{"client key on a keyed preset", "/keyed/v1/realtime",
			[]string{"realtime", "openai-insecure-api-key." + aliceKey}, []string{"realtime"}, "Bearer " + gwEnv["ALPHA_KEY_1"]},
		{"the client's own key on a plain preset", "/plain/v1/realtime",
			[]string{"realtime", "openai-insecure-api-key.sk-own-provider-key"}, []string{"realtime", "openai-insecure-api-key.sk-own-provider-key"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dialWS(t, wsURL+tc.path, &websocket.DialOptions{Subprotocols: tc.protocols})
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			c.CloseNow()
			got := <-seen
			if offered := wsproxyOffered(got); strings.Join(offered, ",") != strings.Join(tc.wantUpstream, ",") {
				t.Errorf("upstream was offered %q, want %q", offered, tc.wantUpstream)
			}
			if a := got.Get("Authorization"); a != tc.wantAuth {
				t.Errorf("upstream Authorization %q, want %q", a, tc.wantAuth)
			}
			for name, vs := range got {
				if v := strings.Join(vs, ","); strings.Contains(v, testToken) || strings.Contains(v, aliceKey) {
					t.Errorf("a credential of llmproxy's went upstream in %s", name)
				}
			}
		})
	}
}

func wsproxyOffered(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

// A realtime session through a preset holding the provider's key counts
// against the client key's limits: max_parallel holds while it lasts.
func TestWebSocketOnAKeyedPresetIsAdmitted(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.Presets = map[string]preset.Override{"openai": {URL: up.URL, Keys: []string{"env:ALPHA_KEY_1"}}}
		for i := range cfg.ClientKeys {
			cfg.ClientKeys[i].MaxParallel = 1
		}
	})
	h := startGateway(t, cfg)
	url := wsURL(h, "/openai/v1/realtime/echo")
	auth := &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + aliceKey}}}
	first, resp, err := dialWS(t, url, auth)
	if err != nil {
		t.Fatalf("first session: %v (%v)", err, resp)
	}
	ctx := context.Background()
	if err := first.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := first.Read(ctx); err != nil || string(msg) != "hi" {
		t.Fatalf("echo %q, %v", msg, err)
	}
	auth = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + aliceKey}}}
	if _, resp, err := dialWS(t, url, auth); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second session while the first is open: %v, %v; want 429 (max_parallel 1)", resp, err)
	}
	first.Close(websocket.StatusNormalClosure, "")
	auth = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + aliceKey}}}
	eventually(t, "the slot was not given back when the session ended", func() bool {
		c, _, err := dialWS(t, url, auth)
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
		}
		return err == nil
	})
}

// A key limited to some models opens a session on a keyed preset only for
// a model it may use, named where llmproxy reads it: OpenAI Realtime's
// ?model=. A session naming another model, or none llmproxy can read
// (Gemini Live names its model in its first message), gets 403 before
// anything is dialled.
func TestWebSocketOnAKeyedPresetKeepsTheKeysModelScope(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.Presets = map[string]preset.Override{
			"openai": {URL: up.URL, Keys: []string{"env:ALPHA_KEY_1"}},
			"gemini": {URL: up.URL, Keys: []string{"env:ALPHA_KEY_2"}},
		}
		cfg.ClientKeys = append(cfg.ClientKeys, config.ClientKey{Name: "mini-only", Key: "ck-mini-only-0000000000000", Models: []string{"gpt-4o-mini-realtime"}})
	})
	h := startGateway(t, cfg)
	dial := func(path string, header http.Header) (int, error) {
		c, resp, err := dialWS(t, wsURL(h, path), &websocket.DialOptions{HTTPHeader: header})
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
			return http.StatusSwitchingProtocols, nil
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	bearer := http.Header{"Authorization": {"Bearer ck-mini-only-0000000000000"}}
	if code, err := dial("/openai/v1/realtime/echo?model=gpt-4o-mini-realtime", bearer); code != http.StatusSwitchingProtocols {
		t.Errorf("the model the key may use: %d %v", code, err)
	}
	before := len(up.Requests())
	for path, header := range map[string]http.Header{
		"/openai/v1/realtime/echo?model=gpt-4o-realtime-preview":                                    bearer,
		"/openai/v1/realtime/echo":                                                                  bearer,
		"/gemini/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent/echo": {"X-Goog-Api-Key": {"ck-mini-only-0000000000000"}},
	} {
		if code, _ := dial(path, header); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", path, code)
		}
	}
	if n := len(up.Requests()) - before; n != 0 {
		t.Errorf("%d refused sessions reached the upstream", n)
	}
}
