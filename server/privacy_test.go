package server

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/providertest"
)

// everyHeader is a raw request head carrying every header the privacy reference lists,
// in mixed case and repeated, plus the ones a preset must forward.
const everyHeader = "" +
	"connection: keep-alive, X-Named-Hop\r\n" +
	"x-named-hop: dropped\r\n" +
	"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nUPGRADE: h2c\r\n" +
	"Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r\nProxy-Authenticate: Basic\r\n" +
	"Forwarded: for=203.0.113.9\r\nX-FORWARDED-FOR: 203.0.113.9\r\nx-forwarded-for: 198.51.100.7\r\n" +
	"X-Forwarded-Host: client.example\r\nx-forwarded-proto: https\r\nX-Forwarded-Port: 443\r\n" +
	"X-Forwarded-Prefix: /p\r\nX-Forwarded-Server: edge\r\nX-Forwarded: for=1.2.3.4\r\nForwarded-For: 1.2.3.4\r\n" +
	"Via: 1.1 edge\r\nX-Real-IP: 203.0.113.9\r\nTrue-Client-IP: 203.0.113.9\r\nX-Client-IP: 203.0.113.9\r\n" +
	"X-Cluster-Client-IP: 203.0.113.9\r\nClient-IP: 203.0.113.9\r\nProxy-Client-IP: 203.0.113.9\r\n" +
	"WL-Proxy-Client-IP: 203.0.113.9\r\nFastly-Client-IP: 203.0.113.9\r\nX-AppEngine-User-IP: 203.0.113.9\r\n" +
	"DO-Connecting-IP: 203.0.113.9\r\nX-Original-Forwarded-For: 203.0.113.9\r\nX-ProxyUser-IP: 203.0.113.9\r\n" +
	"X_Forwarded_For: 203.0.113.9\r\n" +
	"CF-Connecting-IP: 203.0.113.9\r\ncf-ipcountry: NZ\r\nCF-RAY: 8f00-AKL\r\nCF-Visitor: {\"scheme\":\"https\"}\r\n" +
	"cf-worker: example.workers.dev\r\nCF-IPCity: Auckland\r\nCDN-Loop: cloudflare\r\n" +
	"Cookie: session=abc\r\ncookie: other=def\r\nOrigin: https://app.example\r\nReferer: https://app.example/chat\r\n" +
	"Sec-Fetch-Site: cross-site\r\nsec-fetch-mode: cors\r\nSec-CH-UA: \"Chromium\";v=\"156\"\r\nsec-ch-ua-platform: \"Linux\"\r\n" +
	"DNT: 1\r\nSec-GPC: 1\r\n" +
	"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\ntracestate: a=b\r\n" +
	"X-Request-ID: req-123\r\nX-Amzn-Trace-Id: Root=1-abc\r\nX-B3-TraceId: 80f198ee56343ba8\r\nx-b3-spanid: e457b5a2e4d86bd1\r\n" +
	"X-Stainless-OS: Linux\r\nx-stainless-arch: x64\r\nX-Stainless-Runtime: node\r\nX-Stainless-Runtime-Version: v22\r\n" +
	"X-Stainless-Lang: js\r\nX-Stainless-Package-Version: 4.0.0\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept-Language: en-NZ\r\nAccept-Encoding: gzip, br\r\n" +
	"X-Proxy-Token: " + testToken + "\r\n" +
	// What a preset must forward unchanged.
	"content-type: application/json\r\nACCEPT: text/event-stream\r\nAuthorization: Bearer sk-live-1\r\n" +
	"x-api-key: ak-2\r\nX-Goog-Api-Key: gk-3\r\nanthropic-version: 2023-06-01\r\n" +
	"Anthropic-Beta: tools-1\r\nanthropic-beta: cache-2\r\nOpenAI-Organization: org-1\r\nopenai-project: proj-1\r\n" +
	"OpenAI-Beta: assistants=v2\r\nIdempotency-Key: idem-1\r\n"

var forwarded = []string{
	"Accept", "Anthropic-Beta", "Anthropic-Version", "Authorization", "Content-Length", "Content-Type",
	"Idempotency-Key", "Openai-Beta", "Openai-Organization", "Openai-Project", "X-Api-Key", "X-Goog-Api-Key",
}

func TestPrivacyPolicyOnBothTransports(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Add("Set-Cookie", "__cf_bm=tracking; Domain=.openai.com")
		h.Set("Alt-Svc", `h3=":443"; ma=86400`)
		h.Set("Nel", `{"report_to":"cf-nel","max_age":604800}`)
		h.Set("Report-To", `{"group":"cf-nel","endpoints":[{"url":"https://a.nel.cloudflare.com/report"}]}`)
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("Access-Control-Allow-Origin", "https://platform.openai.com")
		h.Set("X-Ratelimit-Remaining-Requests", "42")
		io.WriteString(w, `{"ok":true}`)
	}), &providertest.Options{HTTP2: true})

	received := map[string]providertest.Request{}
	for _, mode := range []string{"socket", "fetch"} {
		cfg := testConfig(t, map[string]string{"openai": fake.URL})
		cfg.Transport = mode
		cfg.AuthToken = testToken
		h := start(t, cfg)
		body := `{"model":"gpt-4o","messages":[]}`
		resp, got := h.raw(fmt.Sprintf("POST /%s/openai/v1/chat/completions?stream=true&x=%%zz;y HTTP/1.1\r\nHost: proxy.local\r\n%sContent-Length: %d\r\n\r\n%s",
			testToken, everyHeader, len(body), body))
		if resp.StatusCode != 200 || got != `{"ok":true}` {
			t.Fatalf("%s: status %d body %q", mode, resp.StatusCode, got)
		}
		for _, name := range []string{"Set-Cookie", "Alt-Svc", "Nel", "Report-To", "Strict-Transport-Security"} {
			if v := resp.Header.Get(name); v != "" {
				t.Errorf("%s: response carried %s: %q", mode, name, v)
			}
		}
		if resp.Header.Get("X-Ratelimit-Remaining-Requests") != "42" {
			t.Errorf("%s: provider's own headers must reach the client", mode)
		}
		reqs := fake.Requests()
		r := reqs[len(reqs)-1]
		received[mode] = r

		names := slices.Sorted(maps.Keys(r.Header))
		if !slices.Equal(names, forwarded) {
			t.Errorf("%s (%s): upstream received headers\n %v\nwant exactly\n %v", mode, r.Proto, names, forwarded)
		}
		if got := r.Header.Values("Anthropic-Beta"); !slices.Equal(got, []string{"tools-1", "cache-2"}) {
			t.Errorf("%s: repeated Anthropic-Beta arrived as %q", mode, got)
		}
		if r.URI != "/v1/chat/completions?stream=true&x=%zz;y" || r.Host != strings.TrimPrefix(fake.URL, "https://") {
			t.Errorf("%s: upstream saw %s with Host %q", mode, r.URI, r.Host)
		}
		if string(r.Body) != body {
			t.Errorf("%s: body %q", mode, r.Body)
		}
		raw := fmt.Sprint(r.Header) + r.URI
		if strings.Contains(raw, testToken) {
			t.Errorf("%s: the operator's token reached the upstream", mode)
		}
	}
	// Parity: the same header names and values over HTTP/1.1 and HTTP/2.
	if s, f := received["socket"], received["fetch"]; !maps.EqualFunc(s.Header, f.Header, slices.Equal) {
		t.Errorf("transports differ:\nsocket (%s) %v\nfetch  (%s) %v", s.Proto, s.Header, f.Proto, f.Header)
	}
	if received["fetch"].Proto != "HTTP/2.0" || received["socket"].Proto != "HTTP/1.1" {
		t.Errorf("protocols: socket %s, fetch %s", received["socket"].Proto, received["fetch"].Proto)
	}
}

// PRIVACY.md "Response headers" holds for trailers too: a field the
// response filter drops from the header does not reach the client as a
// trailer, announced or not, on either transport; the rest pass.
func TestResponseTrailersAreCleaned(t *testing.T) {
	t.Parallel()
	dropped := []string{"Set-Cookie", "Alt-Svc", "Strict-Transport-Security", "Nel", "Access-Control-Allow-Origin"}
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "Set-Cookie, Alt-Svc, X-Usage-Tokens")
		io.WriteString(w, `{"ok":true}`)
		w.(http.Flusher).Flush() // chunked: the trailers follow the body
		w.Header().Set("Set-Cookie", "__cf_bm=tracking; Domain=.openai.com")
		w.Header().Set("Alt-Svc", `h3=":443"; ma=86400`)
		w.Header().Set("X-Usage-Tokens", "42")
		// Not announced.
		w.Header().Set(http.TrailerPrefix+"Strict-Transport-Security", "max-age=31536000")
		w.Header().Set(http.TrailerPrefix+"Nel", `{"report_to":"cf-nel"}`)
		w.Header().Set(http.TrailerPrefix+"Access-Control-Allow-Origin", "https://platform.openai.com")
	}), &providertest.Options{HTTP2: true})

	for _, mode := range []string{"socket", "fetch"} {
		cfg := testConfig(t, map[string]string{"openai": fake.URL})
		cfg.Transport = mode
		h := start(t, cfg)
		req, _ := http.NewRequest("POST", h.URL+"/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		announced := slices.Sorted(maps.Keys(resp.Trailer))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
			t.Fatalf("%s: status %d body %q", mode, resp.StatusCode, body)
		}
		if !slices.Equal(announced, []string{"X-Usage-Tokens"}) {
			t.Errorf("%s: trailers announced: %v", mode, announced)
		}
		for _, name := range dropped {
			if v := resp.Trailer.Get(name); v != "" {
				t.Errorf("%s: the provider's %s reached the client as a trailer: %q", mode, name, v)
			}
		}
		if resp.Trailer.Get("X-Usage-Tokens") != "42" {
			t.Errorf("%s: the provider's own trailer must reach the client: %v", mode, resp.Trailer)
		}
	}
}

func TestPresetExtrasAndDefaults(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	cfg := testConfig(t, map[string]string{"claude": fake.URL, "discord": fake.URL, "portkey": fake.URL})
	h := start(t, cfg)

	// Claude: anthropic-version added when the client sent none.
	h.do("POST", "/claude/v1/messages", http.Header{"X-Api-Key": {"k"}, "User-Agent": {"curl/8"}}, "{}")
	// Discord needs the bot's own User-Agent; portkey its x-portkey-* headers.
	h.do("GET", "/discord/api/v10/users/@me", http.Header{"User-Agent": {"DiscordBot (https://bot.example, 1)"}}, "")
	h.do("POST", "/portkey/v1/chat/completions", http.Header{"X-Portkey-Provider": {"openai"}, "X-Portkey-Config": {"c1"}}, "{}")
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	if v := reqs[0].Header.Get("Anthropic-Version"); v != "2023-06-01" {
		t.Errorf("claude: anthropic-version = %q", v)
	}
	if _, ok := reqs[0].Header["User-Agent"]; ok {
		t.Error("claude: User-Agent forwarded")
	}
	if v := reqs[1].Header.Get("User-Agent"); !strings.HasPrefix(v, "DiscordBot") {
		t.Errorf("discord: User-Agent = %q", v)
	}
	if reqs[2].Header.Get("X-Portkey-Provider") != "openai" || reqs[2].Header.Get("X-Portkey-Config") != "c1" {
		t.Errorf("portkey headers: %v", reqs[2].Header)
	}
}
