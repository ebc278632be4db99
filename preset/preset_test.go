package preset

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestJoin(t *testing.T) {
	t.Parallel()
	openai, _ := ParseBaseURL("https://api.openai.com")
	deepinfra, _ := ParseBaseURL("https://api.deepinfra.com/v1/openai/")
	tests := []struct {
		base  *url.URL
		rest  string
		query string
		want  string // "" means ErrBadPath
	}{
		{openai, "/v1/chat/completions", "", "https://api.openai.com/v1/chat/completions"},
		{openai, "/v1/models", "limit=2&x=%zz;y", "https://api.openai.com/v1/models?limit=2&x=%zz;y"},
		{openai, "", "", "https://api.openai.com/"},
		{openai, "/v1/models/", "", "https://api.openai.com/v1/models/"},
		{openai, "/v1beta/models/gemini-2.5-pro:streamGenerateContent", "alt=sse", "https://api.openai.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"},
		{openai, "/v1/files/file%20id", "", "https://api.openai.com/v1/files/file%20id"},
		{deepinfra, "/chat/completions", "", "https://api.deepinfra.com/v1/openai/chat/completions"},
		{deepinfra, "", "", "https://api.deepinfra.com/v1/openai"},
		// Tricks that would climb out of the base path or confuse an upstream.
		{deepinfra, "/../../admin", "", ""},
		{deepinfra, "/..", "", ""},
		{deepinfra, "/./x", "", ""},
		{deepinfra, "/%2e%2e/admin", "", ""},
		{deepinfra, "/%2E%2e/admin", "", ""},
		{deepinfra, "/.%2e/admin", "", ""},
		{deepinfra, "/%252e%252e/admin", "", ""},
		{deepinfra, "/a%2f..%2f../admin", "", ""},
		{deepinfra, "/a%2F%2E%2E", "", ""},
		{deepinfra, "/a%5c..%5cadmin", "", ""},
		{deepinfra, `/a\..\admin`, "", ""},
		{deepinfra, "//evil.example/x", "", ""},
		{deepinfra, "/a//b", "", ""},
		{deepinfra, "/a%00b", "", ""},
		{deepinfra, "/a\x00b", "", ""},
		{deepinfra, "/a\r\nHost: evil", "", ""},
		{deepinfra, "/ok", "a=1\r\nX: y", ""},
		{deepinfra, "/ok", "a=1#frag", ""},
		{deepinfra, "/100%", "", ""},
		{deepinfra, "no-leading-slash", "", ""},
		{deepinfra, "/%zz", "", ""},
	}
	for _, tc := range tests {
		got, err := Join(tc.base, tc.rest, tc.query)
		if tc.want == "" {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("Join(%s, %q) = %v, %v; want ErrBadPath", tc.base, tc.rest, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Join(%s, %q): %v", tc.base, tc.rest, err)
			continue
		}
		if got.String() != tc.want || got.Host != tc.base.Host {
			t.Errorf("Join(%s, %q, %q) = %s, want %s", tc.base, tc.rest, tc.query, got, tc.want)
		}
	}
}

func TestBuiltinTable(t *testing.T) {
	t.Parallel()
	set, err := NewSet(Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(set.All()); n < 25 {
		t.Errorf("%d presets, want at least 25", n)
	}
	// The seed's list plus the providers users asked for, each at its own host.
	for _, name := range strings.Fields(`openai claude anthropic gemini google groq openrouter xai together fireworks
		cerebras cohere sambanova novita huggingface github chutes friendli poe portkey targon telegram discord
		deepinfra mistral deepseek perplexity siliconflow moonshot zhipu dashscope`) {
		p := set.Lookup(name)
		if p == nil {
			t.Errorf("no preset reached by /%s", name)
			continue
		}
		u, err := ParseBaseURL(p.BaseURL)
		if err != nil || u.Scheme != "https" {
			t.Errorf("preset %s: base URL %q is not https", name, p.BaseURL)
		}
	}
	if got := set.Lookup("openai").BaseURL; got != "https://api.openai.com" {
		t.Errorf("openai base = %s", got)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	set, err := NewSet(Builtin(), map[string]Override{
		"openai": {URL: "https://openai.internal:8443", Transport: "fetch", Headers: []string{"X-Team"}},
		"local":  {Upstreams: []string{"https://a.test", "https://b.test"}, Aliases: []string{"lan"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	o := set.Lookup("openai")
	if o.BaseURL != "https://openai.internal:8443" || o.Transport != "fetch" || o.Headers[len(o.Headers)-1] != "X-Team" {
		t.Errorf("override not applied: %+v", o)
	}
	if l := set.Lookup("lan"); l == nil || l.Name != "local" || len(l.URLs()) != 2 {
		t.Errorf("new preset with alias and upstream list: %+v", l)
	}

	bad := map[string]map[string]Override{
		"new preset without url": {"nourl": {}},
		"bad transport":          {"openai": {Transport: "carrier-pigeon"}},
		"relative url":           {"x": {URL: "api.example.com"}},
		"url with credentials":   {"x": {URL: "https://user:pass@api.example.com"}},
		"url with query":         {"x": {URL: "https://api.example.com/?key=1"}},
		"reserved name":          {"health": {URL: "https://api.example.com"}},
		"scheme as name":         {"https": {URL: "https://api.example.com"}},
		"upper case name":        {"OpenAI2": {URL: "https://api.example.com"}},
		"alias clash":            {"x": {URL: "https://api.example.com", Aliases: []string{"openai"}}},
	}
	for name, o := range bad {
		if _, err := NewSet(Builtin(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseBaseURLDropsDefaultPort(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://API.example.com:443/v1": "api.example.com",
		"http://example.com:80":          "example.com",
		"https://example.com:8443":       "example.com:8443",
		"https://[::1]:443":              "[::1]",
	} {
		u, err := ParseBaseURL(in)
		if err != nil || u.Host != want {
			t.Errorf("ParseBaseURL(%q).Host = %v, %v; want %q", in, u, err, want)
		}
	}
}
