package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
	} {
		if got := Language(header); got != want {
			t.Errorf("Language(%q) = %s, want %s", header, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h, err := New(Info{Version: "1.2.3", Presets: []Preset{{Name: "openai", Title: "OpenAI </script><script>alert(1)</script>", Hosts: []string{"api.openai.com"}}},
		Features: Features{Token: true, Transport: "auto"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, header http.Header) *http.Response {
		req := httptest.NewRequest("GET", path, nil)
		req.Host = `evil"><script>alert(1)</script>.example`
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := get("/", http.Header{"Accept-Language": {"zh-CN"}})
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(page, `<html lang="zh">`) {
		t.Errorf("index: %d, lang not from Accept-Language", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != CSP || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
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
		if resp := get(path, nil); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/assets/../index.html", "/assets/nope.js", "/elsewhere"} {
		if resp := get(path, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}
