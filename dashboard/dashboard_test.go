package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/dashboard"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/server"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// Secrets the test gateway holds: the page must never show one.
const (
	token    = "dashboard-test-token-3f9a1c"
	aliceKey = "ck-alice-dashboard-7c1e0a9d5b3f"
	bobKey   = "ck-bob-dashboard-91f2e8d7c6b5a4"
)

// gwEnv holds the provider keys, as the environment would.
var gwEnv = map[string]string{
	"ALPHA_KEY_1": "sk-alpha-cooling-000000000a001",
	"ALPHA_KEY_2": "sk-alpha-refused-000000000a002",
	"ALPHA_KEY_3": "sk-alpha-healthy-000000000a003",
	"BETA_KEY_1":  "sk-beta-healthy-0000000000b001",
	"GAMMA_KEY_1": "sk-gamma-failing-00000000g001",
	"CLAUDE_KEY":  "sk-ant-on-the-server-00000c001",
}

// secrets lists every value the page must not contain.
func secrets() []string {
	out := []string{token, aliceKey, bobKey}
	for _, v := range gwEnv {
		out = append(out, v)
	}
	return out
}

// upstreams are where the test gateway's providers are.
type upstreams struct {
	CAFile             string // trusted for upstream TLS
	OpenAI             string // the openai preset's URL
	Alpha, Beta, Gamma string // the gateway providers' origins
}

// gatewayConfig is a server with an operator token, the openai preset,
// the claude preset holding a key on the server, three gateway providers
// (alpha with three keys, beta and gamma with one) behind priced models
// (super-brain, cheap-chat, flaky), and the client keys alice (no limits)
// and bob (one request a minute).
func gatewayConfig(t testing.TB, up upstreams) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.UpstreamCA = up.CAFile
	cfg.AuthToken = token
	cfg.Presets = map[string]preset.Override{
		"openai": {URL: up.OpenAI},
		"claude": {Keys: []string{"env:CLAUDE_KEY"}},
	}
	cfg.ClientKeys = []config.ClientKey{{Name: "alice", Key: aliceKey}, {Name: "bob", Key: bobKey, RPM: 1}}
	for _, err := range []error{
		cfg.AddProvider(config.Provider{Name: "alpha", BaseURL: up.Alpha + "/v1",
			Keys: []string{"env:ALPHA_KEY_1", "env:ALPHA_KEY_2", "env:ALPHA_KEY_3"}}),
		cfg.AddProvider(config.Provider{Name: "beta", BaseURL: up.Beta + "/v1", Keys: []string{"env:BETA_KEY_1"}}),
		cfg.AddProvider(config.Provider{Name: "gamma", BaseURL: up.Gamma + "/v1", Keys: []string{"env:GAMMA_KEY_1"}}),
		cfg.AddModel(config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "alpha", Model: "gpt-4o"}},
			Pricing: &config.Pricing{Currency: "usd", InputPer1M: 2000, OutputPer1M: 8000}}),
		cfg.AddModel(config.Model{Name: "cheap-chat", Targets: []config.Target{{Provider: "beta"}},
			Pricing: &config.Pricing{Currency: "cny", InputPer1M: 300, OutputPer1M: 1200}}),
		cfg.AddModel(config.Model{Name: "flaky", Targets: []config.Target{{Provider: "gamma"}}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// adminStub stands in for the admin panel: the dashboard only links to it.
var adminStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "admin") })

func TestLanguage(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"":                                  "en",
		"zh-CN,zh;q=0.9,en;q=0.8":           "zh",
		"en-US,en;q=0.9,zh-CN;q=0.8":        "en",
		"fr-FR,fr;q=0.9,zh-TW;q=0.5":        "zh",
		"de-DE":                             "en",
		"en;q=0.3, zh-Hans;q=0.7":           "zh",
		"ZH":                                "zh",
		"zh-CN;q=0.2, en-GB;q=0.9, *;q=0.1": "en",
		"zh;q=0":                            "en", // refused
		"fr, zh;q=0":                        "en",
	} {
		if got := dashboard.Language(header); got != want {
			t.Errorf("Language(%q) = %s, want %s", header, got, want)
		}
	}
}

func get(h http.Handler, path string, header http.Header) (*http.Response, string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Host = `evil"><script>alert(1)</script>.example`
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h, err := dashboard.New(dashboard.Info{Version: "1.2.3", Presets: []dashboard.Preset{{Name: "openai", Title: "OpenAI </script><script>alert(1)</script>", Hosts: []string{"api.openai.com"}}},
		Features: dashboard.Features{Token: true, Transport: "auto"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, page := get(h, "/", http.Header{"Accept-Language": {"zh-CN"}})
	if resp.StatusCode != 200 || !strings.Contains(page, `<html lang="zh">`) {
		t.Errorf("index: %d, lang not from Accept-Language", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != dashboard.CSP || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(page, "evil") {
		t.Error("the request's Host is reflected into the page")
	}
	// Data in the page's JSON block cannot close the script element.
	if strings.Contains(page, "</script><script>alert(1)") {
		t.Error("the info JSON was not escaped for its script element")
	}
	for _, external := range []string{"http://", "https://", "//fonts", "cdn"} {
		for _, line := range strings.Split(page, "\n") {
			if (strings.Contains(line, "src=") || strings.Contains(line, "href=")) && strings.Contains(line, external) {
				t.Errorf("the page refers to another host: %s", strings.TrimSpace(line))
			}
		}
	}
	for path, ctype := range map[string]string{"/assets/app.js": "javascript", "/assets/style.css": "text/css", "/favicon.ico": "image/svg+xml"} {
		if resp, _ := get(h, path, nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/assets/../index.html", "/assets/nope.js", "/elsewhere"} {
		if resp, _ := get(h, path, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}

var infoBlock = regexp.MustCompile(`<script id="info" type="application/json">([^<]*)</script>`)

// pageInfo decodes the Info the page carries for its script.
func pageInfo(t *testing.T, page string) dashboard.Info {
	t.Helper()
	m := infoBlock.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no info block in the page")
	}
	var info dashboard.Info
	if err := json.Unmarshal([]byte(m[1]), &info); err != nil {
		t.Fatalf("info block: %v", err)
	}
	return info
}

// The gateway's fields reach the page's script as they are, and the header
// links to /admin only when the panel is on.
func TestInfoFieldsRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		info dashboard.Info
	}{
		{"gateway and admin", dashboard.Info{Version: "1", Features: dashboard.Features{Gateway: true, Admin: true},
			Presets: []dashboard.Preset{{Name: "claude", Hosts: []string{"api.anthropic.com"}, ServerKeys: true}}}},
		{"gateway without admin", dashboard.Info{Version: "1", Features: dashboard.Features{Gateway: true},
			Presets: []dashboard.Preset{{Name: "openai", Hosts: []string{"api.openai.com"}}}}},
		{"neither", dashboard.Info{Version: "1", Presets: []dashboard.Preset{{Name: "openai", Hosts: []string{"api.openai.com"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := dashboard.New(tc.info)
			if err != nil {
				t.Fatal(err)
			}
			_, page := get(h, "/", nil)
			if got := pageInfo(t, page); !reflect.DeepEqual(got, tc.info) {
				t.Errorf("the page carries %+v, want %+v", got, tc.info)
			}
			if link := strings.Contains(page, `<a id="admin-link" class="switch" href="/admin"`); link != tc.info.Features.Admin {
				t.Errorf("admin link shown %v with Features.Admin %v", link, tc.info.Features.Admin)
			}
		})
	}
}

// secretLooking matches what provider keys, client keys and bearer
// credentials look like; the examples' placeholders ("sk-...", "<client
// key>") do not.
var secretLooking = regexp.MustCompile(`sk-[A-Za-z0-9_-]{12,}|ck-[A-Za-z0-9_-]{12,}|AIza[0-9A-Za-z_-]{20,}|Bearer [A-Za-z0-9._~+/-]{12,}`)

// A real server holding provider keys, client keys and a token serves a
// page (and assets) with none of them, nor anything that looks like one;
// the page still knows the gateway, the admin panel and the keyed preset.
func TestPageHoldsNoSecret(t *testing.T) {
	t.Parallel()
	cfg := gatewayConfig(t, upstreams{OpenAI: "https://openai.test", Alpha: "https://alpha.test", Beta: "https://beta.test", Gamma: "https://gamma.test"})
	srv, err := server.New(cfg, server.Options{Version: "1.0.0-test", Getenv: func(k string) string { return gwEnv[k] }, Admin: adminStub})
	if err != nil {
		t.Fatal(err)
	}
	_, page := get(srv, "/", nil)
	info := pageInfo(t, page)
	if !info.Features.Gateway || !info.Features.Admin || !info.Features.Token {
		t.Errorf("features %+v: want gateway, admin and token on", info.Features)
	}
	keyed := map[string]bool{}
	for _, p := range info.Presets {
		keyed[p.Name] = p.ServerKeys
	}
	if !keyed["claude"] || keyed["openai"] {
		t.Errorf("server keys: claude %v, openai %v; want only claude", keyed["claude"], keyed["openai"])
	}
	for _, path := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		resp, body := get(srv, path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		for _, s := range secrets() {
			if strings.Contains(body, s) {
				t.Errorf("%s holds a secret", path)
			}
		}
		if m := secretLooking.FindString(body); m != "" {
			t.Errorf("%s holds something that looks like a secret: %.8s…", path, m)
		}
	}
}
