package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

func echoProvider(t *testing.T) *providertest.Server {
	return providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"uri":%q}`, r.RequestURI)
	}), nil)
}

func TestRouting(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	cfg := testConfig(t, map[string]string{"openai": fake.URL, "claude": fake.URL})
	cfg.AuthToken = testToken
	h := start(t, cfg)
	tests := []struct {
		path   string
		status int
		body   string // substring
	}{
		{"/openai/v1/models", 200, `"uri":"/v1/models"`},
		{"/anthropic/v1/messages", 200, `"uri":"/v1/messages"`},
		{"/" + testToken + "/openai/v1/models?limit=1", 200, `"uri":"/v1/models?limit=1"`},
		{"/wrong-token-0000000000/openai/v1/models", 401, "wrong token"},
		{"/wrong-token-0000000000/https/api.example.com/v1", 401, "wrong token"},
		{"/nope/v1/models", 404, "as does the page at /"},
		{"/openaix/v1/models", 404, "presets answer under"},
		{"/" + testToken + "/nope/v1", 404, "presets answer under"},
		{"/openai/../../etc/passwd", 400, "'..'"},
		{"/openai/v1/%2e%2e/%2e%2e/x", 400, "'..'"},
		{"/openai//evil.example/x", 400, "empty"},
	}
	for _, tc := range tests {
		resp, body := h.raw("GET " + tc.path + " HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %s; want %d containing %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("X-Proxy-Error") != "true" {
			t.Errorf("GET %s: error without X-Proxy-Error", tc.path)
		}
		if strings.Contains(body, testToken) {
			t.Errorf("GET %s: response holds the token", tc.path)
		}
	}
	// Nothing that was refused reached the upstream.
	for _, r := range fake.Requests() {
		if strings.Contains(r.URI, "..") || strings.Contains(r.URI, "evil") || strings.Contains(r.URI, "etc") {
			t.Errorf("upstream received %s", r.URI)
		}
	}
}

func TestGenericModeOffWithoutToken(t *testing.T) {
	t.Parallel()
	h := start(t, testConfig(t, nil))
	status, _, body := h.do("GET", "/sometoken-0123456789abc/https/api.example.com/v1", nil, "")
	if typ, msg := errorOf(t, body); status != 404 || typ != typeNotFound || !strings.Contains(msg, "generic mode is off") {
		t.Errorf("%d %s", status, body)
	}
}

func TestPresetAuth(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	cfg := testConfig(t, map[string]string{"openai": fake.URL})
	cfg.AuthToken, cfg.PresetAuth = testToken, true
	h := start(t, cfg)
	if status, _, _ := h.do("GET", "/openai/v1/models", nil, ""); status != 401 {
		t.Errorf("preset without token: %d", status)
	}
	if status, _, _ := h.do("GET", "/"+testToken+"/openai/v1/models", nil, ""); status != 200 {
		t.Errorf("preset with token: %d", status)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("upstream got %d requests, want 1", n)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := start(t, testConfig(t, nil))
	status, header, body := h.do("GET", "/health", nil, "")
	var v struct {
		Status  string `json:"status"`
		Version string `json:"version"`
		Uptime  *int64 `json:"uptime_s"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || status != 200 || v.Status != "ok" || v.Version != "test" || v.Uptime == nil {
		t.Errorf("health: %d %s (%v)", status, body, err)
	}
	if !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Errorf("content type %q", header.Get("Content-Type"))
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://platform.openai.com")
	}), nil)
	cfg := testConfig(t, map[string]string{"openai": fake.URL})
	cfg.CORSOrigins = []string{"https://app.example"}
	h := start(t, cfg)

	pre := http.Header{
		"Origin":                         {"https://app.example"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization, content-type"},
	}
	status, header, _ := h.do("OPTIONS", "/openai/v1/chat/completions", pre, "")
	if status != 204 || header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		header.Get("Access-Control-Allow-Headers") != "authorization, content-type" ||
		!strings.Contains(header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", status, header)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("preflight reached the upstream (%d requests)", n)
	}
	pre.Set("Origin", "https://evil.example")
	if status, header, _ := h.do("OPTIONS", "/openai/v1/chat/completions", pre, ""); status != 403 || header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", status, header)
	}
	_, header, _ = h.do("POST", "/openai/v1/chat/completions", http.Header{"Origin": {"https://app.example"}}, "{}")
	if got := header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example" {
		t.Errorf("response Access-Control-Allow-Origin = %q: exactly ours, not the upstream's", got)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	cfg := testConfig(t, map[string]string{"openai": fake.URL})
	cfg.MaxBodyBytes = 1024
	cfg.MaxHeaderBytes = 8 << 10
	for _, mode := range []string{"socket", "fetch"} {
		cfg := *cfg
		cfg.Transport = mode
		h := start(t, &cfg)
		big := strings.Repeat("x", 2048)
		if status, _, body := h.do("POST", "/openai/v1/files", nil, big); status != 413 {
			t.Errorf("%s: declared oversize body: %d %s", mode, status, body)
		}
		// Chunked: the limit trips while the body streams upstream.
		resp, body := h.raw("POST /openai/v1/files HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + big + "\r\n0\r\n\r\n")
		if resp.StatusCode != 413 {
			t.Errorf("%s: chunked oversize body: %d %s", mode, resp.StatusCode, body)
		}
		resp, _ = h.raw("GET /health HTTP/1.1\r\nHost: p\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n")
		if resp.StatusCode != 431 {
			t.Errorf("%s: oversize headers: %d", mode, resp.StatusCode)
		}
		// The limit is the setting, not the setting and net/http's 4 KiB
		// of slack: a head just over it is refused, one just under it
		// served.
		for _, tc := range []struct {
			size   int
			status int
		}{{8<<10 + 200, 431}, {8<<10 - 200, 200}} {
			head := "GET /health HTTP/1.1\r\nHost: p\r\n\r\n"
			pad := tc.size - len(head) - len("X-Big: \r\n")
			resp, _ = h.raw("GET /health HTTP/1.1\r\nHost: p\r\nX-Big: " + strings.Repeat("a", pad) + "\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Errorf("%s: a head of %d bytes with max_header_bytes %d: %d, want %d", mode, tc.size, cfg.MaxHeaderBytes, resp.StatusCode, tc.status)
			}
		}
	}
	for _, r := range fake.Requests() {
		if len(r.Body) > 1024 {
			t.Errorf("upstream received a %d-byte body", len(r.Body))
		}
	}
}

func TestLogsNeverHoldSecrets(t *testing.T) {
	t.Parallel()
	fake := echoProvider(t)
	raw := providertest.NewRaw(t, providertest.ResetAfterRequest)
	cfg := testConfig(t, map[string]string{"gemini": fake.URL, "telegram": fake.URL, "openai": raw.URL})
	cfg.AuthToken = testToken
	cfg.Debug = true
	h := start(t, cfg)
	secrets := http.Header{
		"Authorization":  {"Bearer sk-live-abcdef0123456789"},
		"X-Api-Key":      {"ak-live-abcdef0123456789"},
		"X-Goog-Api-Key": {"AIzaSyD-abcdefghijklmnopqrstuv"},
	}
	h.do("POST", "/"+testToken+"/gemini/v1beta/models/x:streamGenerateContent?alt=sse&key=AIzaSyQ-querykey0123456789ab", secrets, "{}")
	h.do("GET", "/telegram/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe", nil, "")
	h.do("POST", "/openai/v1/chat/completions?api_key=sk-query-0123456789", secrets, "{}")
	logs := h.waitLog(3)
	for _, s := range []string{testToken, "sk-live", "ak-live", "AIzaSyD", "AIzaSyQ", "AAHdqTcv", "sk-query"} {
		if strings.Contains(logs, s) {
			t.Errorf("log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs, `"route":"gemini"`) || !strings.Contains(logs, `"status":502`) {
		t.Errorf("request lines missing:\n%s", logs)
	}
}

func TestBadConfigRefused(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*config.Config){
		"short token":       func(c *config.Config) { c.AuthToken = "short" },
		"placeholder token": func(c *config.Config) { c.AuthToken = "your-auth-token-here" },
		"preset auth alone": func(c *config.Config) { c.PresetAuth = true },
		"transport":         func(c *config.Config) { c.Transport = "udp" },
		"ca file":           func(c *config.Config) { c.UpstreamCA = "/nonexistent.pem" },
		"egress proxy":      func(c *config.Config) { c.EgressProxy = "ftp://x:1" },
	} {
		cfg := config.Default()
		mutate(cfg)
		if _, err := New(cfg, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDashboardHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, nil)
	cfg.AuthToken = testToken
	cfg.EgressProxy = "socks5://proxyuser:proxypass@egress.internal:1080"
	h := start(t, cfg)
	status, header, body := h.do("GET", "/", nil, "")
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", status, header.Get("Content-Type"))
	}
	for _, secret := range []string{testToken, "proxypass", "proxyuser", "egress.internal"} {
		if strings.Contains(body, secret) {
			t.Errorf("the dashboard shows %q", secret)
		}
	}
	if !strings.Contains(body, `"egress_proxy":true`) || !strings.Contains(body, `"token":true`) {
		t.Error("the dashboard should say which features are on")
	}
	cfg2 := testConfig(t, nil)
	cfg2.Dashboard = false
	if status, _, _ := start(t, cfg2).do("GET", "/", nil, ""); status != 404 {
		t.Errorf("dashboard: false still serves the page: %d", status)
	}
}

// The admin panel is same-origin only: cors_origins (for API clients in
// browsers) never answers for it, neither a preflight nor a request; and
// without a panel /admin is a 404.
func TestAdminHasNoCORS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, nil)
	cfg.CORSOrigins = []string{"https://app.example"}
	var seen []string
	panel := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	})
	h := start(t, cfg, func(o *Options) { o.Admin = panel })
	pre := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
	for _, tc := range []struct{ method, path string }{{"OPTIONS", "/admin/providers"}, {"GET", "/admin"}, {"POST", "/admin/login"}} {
		_, header, _ := h.do(tc.method, tc.path, pre, "")
		for name := range header {
			if strings.HasPrefix(name, "Access-Control-") {
				t.Errorf("%s %s: %s: %s", tc.method, tc.path, name, header.Get(name))
			}
		}
	}
	if len(seen) != 3 || seen[0] != "OPTIONS /admin/providers" {
		t.Errorf("the panel saw %v, want all three requests", seen)
	}
	// The API still answers the same origin.
	if _, header, _ := h.do("OPTIONS", "/openai/v1/chat/completions", pre, ""); header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight on the API lost its CORS answer: %v", header)
	}
	off := start(t, testConfig(t, nil))
	if status, _, _ := off.do("GET", "/admin", nil, ""); status != 404 {
		t.Errorf("/admin without a panel: %d", status)
	}
}
