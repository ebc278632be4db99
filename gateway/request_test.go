package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// The upstream URL for each API: the base URL in the SDK convention plus
// the endpoint; Anthropic's /v1 added once; Gemini's version and upstream
// model in the path; Azure's api-version added; ?key= never sent.
func TestUpstreamURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		provider config.Provider
		model    string // the route's upstream model; "" keeps "pub"
		method   string
		target   string // the client's request
		want     string
	}{
		{"openai", config.Provider{BaseURL: "https://api.openai.com/v1"}, "", "POST", "/v1/chat/completions",
			"https://api.openai.com/v1/chat/completions"},
		{"openai trailing slash", config.Provider{BaseURL: "https://api.openai.com/v1/"}, "", "POST", "/v1/embeddings",
			"https://api.openai.com/v1/embeddings"},
		{"zhipu", config.Provider{BaseURL: "https://open.bigmodel.cn/api/paas/v4"}, "", "POST", "/v1/chat/completions",
			"https://open.bigmodel.cn/api/paas/v4/chat/completions"},
		{"openai query kept, key stripped", config.Provider{BaseURL: "https://api.openai.com/v1"}, "", "POST", "/v1/responses?key=ck-x&a=1&key=y",
			"https://api.openai.com/v1/responses?a=1"},
		{"openai escaped key name stripped", config.Provider{BaseURL: "https://api.openai.com/v1"}, "", "POST", "/v1/chat/completions?%6Bey=ck-x&key=&b=2",
			"https://api.openai.com/v1/chat/completions?b=2"},
		{"openai escaped key name alone stripped", config.Provider{BaseURL: "https://api.openai.com/v1"}, "", "POST", "/v1/chat/completions?%6Bey=ck-x&b=%20",
			"https://api.openai.com/v1/chat/completions?b=%20"},
		{"openai default port dropped", config.Provider{BaseURL: "https://api.openai.com:443/v1"}, "", "POST", "/v1/chat/completions",
			"https://api.openai.com/v1/chat/completions"},
		{"openai by preset", config.Provider{Preset: "groq"}, "", "POST", "/v1/chat/completions",
			"https://api.groq.com/openai/v1/chat/completions"},
		{"anthropic without /v1", config.Provider{Kind: "anthropic", BaseURL: "https://api.anthropic.com"}, "", "POST", "/v1/messages",
			"https://api.anthropic.com/v1/messages"},
		{"anthropic with /v1", config.Provider{Kind: "anthropic", BaseURL: "https://api.anthropic.com/v1"}, "", "POST", "/v1/messages/count_tokens",
			"https://api.anthropic.com/v1/messages/count_tokens"},
		{"anthropic by preset", config.Provider{Preset: "claude"}, "", "POST", "/v1/messages",
			"https://api.anthropic.com/v1/messages"},
		{"gemini v1beta", config.Provider{Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com"}, "", "POST",
			"/v1beta/models/pub:generateContent", "https://generativelanguage.googleapis.com/v1beta/models/pub:generateContent"},
		{"gemini renamed, stream, key stripped", config.Provider{Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com"}, "gemini-2.5-pro", "POST",
			"/v1beta/models/pub:streamGenerateContent?alt=sse&key=ck-client", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"},
		{"gemini v1", config.Provider{Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com"}, "", "POST",
			"/v1/models/pub:generateContent", "https://generativelanguage.googleapis.com/v1/models/pub:generateContent"},
		{"gemini base with its version", config.Provider{Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com/v1beta"}, "", "POST",
			"/v1beta/models/pub:countTokens", "https://generativelanguage.googleapis.com/v1beta/models/pub:countTokens"},
		{"gemini by preset", config.Provider{Preset: "gemini"}, "", "POST",
			"/v1beta/models/pub:generateContent", "https://generativelanguage.googleapis.com/v1beta/models/pub:generateContent"},
		{"azure api-version", config.Provider{Kind: "azure", BaseURL: "https://res.openai.azure.com/openai/v1", APIVersion: "2024-10-21"}, "", "POST",
			"/v1/chat/completions", "https://res.openai.azure.com/openai/v1/chat/completions?api-version=2024-10-21"},
		{"azure api-version after the query", config.Provider{Kind: "azure", BaseURL: "https://res.openai.azure.com/openai/v1", APIVersion: "preview"}, "", "POST",
			"/v1/chat/completions?x=1", "https://res.openai.azure.com/openai/v1/chat/completions?x=1&api-version=preview"},
		{"azure: the client's api-version kept", config.Provider{Kind: "azure", BaseURL: "https://res.openai.azure.com/openai/v1", APIVersion: "preview"}, "", "POST",
			"/v1/chat/completions?api-version=2025-01-01", "https://res.openai.azure.com/openai/v1/chat/completions?api-version=2025-01-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := tc.provider
			p.Name, p.Keys = "P", []string{secret("p1")}
			snap := w.compile(newConfig(t, p, config.Model{Name: "pub", Targets: []config.Target{{Provider: "P", Model: tc.model}}}))
			r := httptestRequest(tc.method, tc.target, `{"model":"pub"}`)
			res := w.do(snap, r, nil)
			if res.err != nil {
				t.Fatal(res.err)
			}
			reqs := w.requests()
			if len(reqs) != 1 {
				t.Fatalf("attempts %v", w.attempts())
			}
			if got := reqs[0].url.String(); got != tc.want {
				t.Errorf("URL %s\nwant %s", got, tc.want)
			}
			if reqs[0].method != tc.method {
				t.Errorf("method %s", reqs[0].method)
			}
		})
	}
}

// One compiled configuration serves calls one after the other: each gets
// its own path and query, whatever the call before it was (a target keeps
// its last URL for the next call to the same endpoint).
func TestUpstreamURLInTurn(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	openai := config.Provider{Name: "O", BaseURL: "https://api.openai.com/v1", Keys: []string{secret("o1")}}
	gemini := config.Provider{Name: "G", Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com", Keys: []string{secret("g1")}}
	snap := w.compile(newConfig(t, openai, gemini, config.Model{Name: "pub", Targets: []config.Target{{Provider: "O"}}},
		config.Model{Name: "gem-*", Targets: []config.Target{{Provider: "G"}}}))
	for i, tc := range []struct{ target, want string }{
		{"/v1/chat/completions", "https://api.openai.com/v1/chat/completions"},
		{"/v1/chat/completions", "https://api.openai.com/v1/chat/completions"},
		{"/v1/embeddings", "https://api.openai.com/v1/embeddings"},
		{"/v1/chat/completions?a=1", "https://api.openai.com/v1/chat/completions?a=1"},
		{"/v1/chat/completions", "https://api.openai.com/v1/chat/completions"},
		{"/v1beta/models/gem-a:generateContent", "https://generativelanguage.googleapis.com/v1beta/models/gem-a:generateContent"},
		{"/v1beta/models/gem-b:generateContent", "https://generativelanguage.googleapis.com/v1beta/models/gem-b:generateContent"},
		{"/v1beta/models/gem-b:countTokens", "https://generativelanguage.googleapis.com/v1beta/models/gem-b:countTokens"},
		{"/v1/models/gem-b:countTokens", "https://generativelanguage.googleapis.com/v1/models/gem-b:countTokens"},
		{"/v1/models/gem-b:countTokens", "https://generativelanguage.googleapis.com/v1/models/gem-b:countTokens"},
	} {
		before := len(w.requests())
		res := w.do(snap, httptestRequest("POST", tc.target, `{"model":"pub"}`), nil)
		if res.err != nil {
			t.Fatalf("%d %s: %v", i, tc.target, res.err)
		}
		reqs := w.requests()
		if len(reqs) != before+1 {
			t.Fatalf("%d %s: attempts %v", i, tc.target, w.attempts())
		}
		if got := reqs[len(reqs)-1].url.String(); got != tc.want {
			t.Errorf("%d %s: URL %s\nwant %s", i, tc.target, got, tc.want)
		}
	}
}

// The header policy of a gateway request: no client credential in any
// header goes upstream; a choice of organisation or project billed on the
// operator's key is dropped; static provider headers and defaults are
// set; the provider's key goes in the provider's own header.
func TestUpstreamHeaders(t *testing.T) {
	t.Parallel()
	const clientKey = "ck-client-key-000000000000"
	for _, tc := range []struct {
		name     string
		provider config.Provider
		allow    []string // headers the provider's preset forwards besides the usual
		target   string
		set      map[string]string // the client's headers
		want     map[string]string // upstream; "" means absent
	}{
		{"openai", config.Provider{BaseURL: "https://api.openai.com/v1"}, nil, "/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + clientKey, "OpenAI-Organization": "org-client", "OpenAI-Project": "proj-client",
				"OpenAI-Beta": "assistants=v2", "Idempotency-Key": "idem-1", "X-Forwarded-For": "203.0.113.9", "Cookie": "a=b",
				"X-Stainless-OS": "Linux", "Accept": "application/json"},
			map[string]string{"Authorization": "Bearer " + secret("p1"), "Openai-Organization": "", "Openai-Project": "",
				"Openai-Beta": "assistants=v2", "Idempotency-Key": "idem-1", "X-Forwarded-For": "", "Cookie": "", "X-Stainless-Os": "",
				"Accept": "application/json", "Content-Type": "application/json"}},
		{"openai with static headers", config.Provider{BaseURL: "https://api.openai.com/v1", Headers: map[string]string{"OpenAI-Organization": "org-operator", "x-team": "llm"}}, nil,
			"/v1/chat/completions",
			map[string]string{"X-Api-Key": clientKey, "OpenAI-Organization": "org-client"},
			map[string]string{"Authorization": "Bearer " + secret("p1"), "X-Api-Key": "", "Openai-Organization": "org-operator", "X-Team": "llm"}},
		{"every credential header dropped", config.Provider{BaseURL: "https://api.openai.com/v1"}, nil, "/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + clientKey, "X-Api-Key": clientKey, "X-Goog-Api-Key": clientKey, "Api-Key": clientKey, "X-Custom-Auth": clientKey},
			map[string]string{"Authorization": "Bearer " + secret("p1"), "X-Api-Key": "", "X-Goog-Api-Key": "", "Api-Key": "", "X-Custom-Auth": ""}},
		{"credential headers dropped even where the preset forwards them", config.Provider{Preset: "openai"}, []string{"X-Custom-Auth", "Api-Key", "X-Team"},
			"/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + clientKey, "X-Custom-Auth": "Bearer " + clientKey, "Api-Key": clientKey, "X-Team": "llm"},
			map[string]string{"Authorization": "Bearer " + secret("p1"), "X-Custom-Auth": "", "Api-Key": "", "X-Team": "llm"}},
		{"anthropic", config.Provider{Kind: "anthropic", BaseURL: "https://api.anthropic.com"}, nil, "/v1/messages",
			map[string]string{"X-Api-Key": clientKey, "Anthropic-Beta": "prompt-caching-2024-07-31"},
			map[string]string{"X-Api-Key": secret("p1"), "Authorization": "", "Anthropic-Version": "2023-06-01", "Anthropic-Beta": "prompt-caching-2024-07-31"}},
		{"anthropic: the client's version kept", config.Provider{Kind: "anthropic", BaseURL: "https://api.anthropic.com"}, nil, "/v1/messages",
			map[string]string{"Authorization": "Bearer " + clientKey, "Anthropic-Version": "2024-01-01"},
			map[string]string{"X-Api-Key": secret("p1"), "Authorization": "", "Anthropic-Version": "2024-01-01"}},
		{"gemini", config.Provider{Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com"}, nil, "/v1beta/models/pub:generateContent",
			map[string]string{"X-Goog-Api-Key": clientKey},
			map[string]string{"X-Goog-Api-Key": secret("p1"), "Authorization": ""}},
		{"azure", config.Provider{Kind: "azure", BaseURL: "https://res.openai.azure.com/openai/v1"}, nil, "/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + clientKey, "Api-Key": clientKey},
			map[string]string{"Api-Key": secret("p1"), "Authorization": ""}},
		{"keyless provider: nothing injected, nothing leaked", config.Provider{BaseURL: "http://ollama.lan:11434/v1"}, nil, "/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + clientKey, "X-Api-Key": clientKey},
			map[string]string{"Authorization": "", "X-Api-Key": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := tc.provider
			p.Name = "P"
			if !strings.Contains(tc.name, "keyless") {
				p.Keys = []string{secret("p1")}
			}
			cfg := newConfig(t, p, route("pub", "P"))
			cfg.Gateway.AuthHeader = "X-Custom-Auth"
			if tc.allow != nil {
				cfg.Presets = map[string]presetOverride{p.Preset: {Headers: tc.allow}}
			}
			snap := w.compile(cfg)
			r := httptestRequest(http.MethodPost, tc.target, `{"model":"pub"}`)
			for k, v := range tc.set {
				r.Header.Set(k, v)
			}
			if res := w.do(snap, r, nil); res.err != nil {
				t.Fatal(res.err)
			}
			reqs := w.requests()
			if len(reqs) != 1 {
				t.Fatalf("attempts %v", w.attempts())
			}
			h := reqs[0].header
			for name, want := range tc.want {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			for name, vs := range h {
				if strings.Contains(strings.Join(vs, ","), clientKey) {
					t.Errorf("the client's key went upstream in %s", name)
				}
			}
		})
	}
}

// The body goes upstream byte for byte except the value of the top-level
// model, when the route renames it.
func TestBodyByteForByteExceptTheModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		prefix, suffix string // around the model's value
		value          string // the model's value as the client wrote it
		upstream       string // the route's upstream model
		want           string // the value as it goes upstream
	}{
		{"renamed", `{"model":`, `,"messages":[{"role":"user","content":"hi"}]}`, `"pub"`, "gpt-4.1", `"gpt-4.1"`},
		{"spacing and order kept", "{\n  \"temperature\" : 0.70,\n  \"messages\":[{\"content\":\"\\u00e9t\\u00e9 \\\"model\\\": x\",\"model\":\"pub\"}],\n  \"model\"  :  ",
			"  ,\n  \"n\":1e0 }\n", `"pub"`, "up/model", `"up/model"`},
		{"escaped name in the body", `{"model":`, `}`, `"p\u0075b"`, "gpt-4.1", `"gpt-4.1"`},
		{"upstream name needing escapes", `{"model":`, `,"x":"</script>"}`, `"pub"`, `we"ird\name`, `"we\"ird\\name"`},
		{"not renamed", `{"stream":false, "model":`, `, "z":[1,2,3]}`, `"pub"`, "", `"pub"`},
		{"unicode around", `{"messages":[{"content":"日本語 🙂"}],"model":`, `}`, `"pub"`, "m2", `"m2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			snap := w.compile(newConfig(t, openaiProvider("A", "a1"),
				config.Model{Name: "pub", Targets: []config.Target{{Provider: "A", Model: tc.upstream}}}))
			body := tc.prefix + tc.value + tc.suffix
			r := httptestRequest(http.MethodPost, "/v1/chat/completions", body)
			if res := w.do(snap, r, nil); res.err != nil {
				t.Fatal(res.err)
			}
			got := w.requests()[0].body
			want := []byte(tc.prefix + tc.want + tc.suffix)
			if !bytes.Equal(got, want) {
				t.Errorf("upstream body\n%q\nwant\n%q", got, want)
			}
			if !json.Valid(got) {
				t.Errorf("upstream body is not JSON: %q", got)
			}
		})
	}
}

// stream_options.include_usage is added for a Chat Completions stream
// whose client did not ask for it, and only then; nothing else changes.
func TestIncludeUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target string
		body   string
		added  bool
	}{
		{"chat stream", "/v1/chat/completions", `{"model":"pub","stream":true,"messages":[]}`, true},
		{"chat stream asking false", "/v1/chat/completions", `{"model":"pub","stream":true,"stream_options":{"include_usage":false},"messages":[]}`, true},
		{"chat stream with other options", "/v1/chat/completions", `{"model":"pub","stream":true,"stream_options":{"x":1}}`, true},
		{"chat stream already asking", "/v1/chat/completions", `{"model":"pub","stream":true,"stream_options":{"include_usage":true}}`, false},
		{"chat without stream", "/v1/chat/completions", `{"model":"pub","messages":[]}`, false},
		{"chat stream false", "/v1/chat/completions", `{"model":"pub","stream":false}`, false},
		{"responses stream", "/v1/responses", `{"model":"pub","stream":true,"input":"hi"}`, false},
		{"completions stream", "/v1/completions", `{"model":"pub","stream":true,"prompt":"hi"}`, false},
		{"messages stream", "/v1/messages", `{"model":"pub","stream":true,"max_tokens":5}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			kind := ""
			if tc.target == "/v1/messages" {
				kind = "anthropic"
			}
			p := openaiProvider("A", "a1")
			p.Kind = kind
			p.Responses = map[bool]string{true: "native", false: ""}[kind == ""]
			snap := w.compile(newConfig(t, p, route("pub", "A")))
			res := w.do(snap, httptestRequest(http.MethodPost, tc.target, tc.body), nil)
			if res.err != nil {
				t.Fatal(res.err)
			}
			got := w.requests()[0].body
			if !tc.added {
				if !bytes.Equal(got, []byte(tc.body)) {
					t.Errorf("body changed:\n%s\nwant\n%s", got, tc.body)
				}
				return
			}
			var sent, orig map[string]any
			if err := json.Unmarshal(got, &sent); err != nil {
				t.Fatalf("upstream body %q: %v", got, err)
			}
			json.Unmarshal([]byte(tc.body), &orig)
			so, _ := sent["stream_options"].(map[string]any)
			if so["include_usage"] != true {
				t.Errorf("include_usage not set: %s", got)
			}
			// Everything else as the client sent it.
			delete(so, "include_usage")
			if oso, ok := orig["stream_options"].(map[string]any); ok {
				delete(oso, "include_usage")
			} else {
				orig["stream_options"] = map[string]any{}
			}
			if !reflect.DeepEqual(sent, orig) {
				t.Errorf("more than include_usage changed:\n%s\nfrom\n%s", got, tc.body)
			}
		})
	}
}

// A renamed model and an added include_usage are both edited where the
// routing pass found them, in either order, and nothing else changes.
func TestRenamedStreamGetsUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"no options", `{"model":"pub","stream":true}`,
			`{"stream_options":{"include_usage":true},"model":"gpt-4.1","stream":true}`},
		{"options first", `{"stream_options":{"x":1},"stream":true,"model":"pub"}`,
			`{"stream_options":{"include_usage":true,"x":1},"stream":true,"model":"gpt-4.1"}`},
		{"null options", `{"model":"pub","stream":true,"stream_options":null}`,
			`{"model":"gpt-4.1","stream":true,"stream_options":{"include_usage":true}}`},
		{"asking false", `{"model":"pub","stream":true,"stream_options":{"include_usage":false}}`,
			`{"model":"gpt-4.1","stream":true,"stream_options":{"include_usage":true}}`},
		{"spacing kept", ` { "model" : "pub" , "stream" : true , "stream_options" : { } } `,
			` { "model" : "gpt-4.1" , "stream" : true , "stream_options" : {"include_usage":true } } `},
		// stream_options twice is refused only where it is read: a request
		// that is not a stream goes as it came.
		{"options twice, no stream", `{"model":"pub","stream_options":{},"stream_options":{}}`,
			`{"model":"gpt-4.1","stream_options":{},"stream_options":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			snap := w.compile(newConfig(t, openaiProvider("A", "a1"),
				config.Model{Name: "pub", Targets: []config.Target{{Provider: "A", Model: "gpt-4.1"}}}))
			if res := w.do(snap, httptestRequest(http.MethodPost, "/v1/chat/completions", tc.body), nil); res.err != nil {
				t.Fatal(res.err)
			}
			if got := w.requests()[0].body; string(got) != tc.want {
				t.Errorf("upstream body\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// A stream_options that is not an object cannot take include_usage: the
// client's mistake, said before anything is sent.
func TestStreamOptionsNotAnObject(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := w.compile(newConfig(t, openaiProvider("A", "a1"), route("pub", "A")))
	res := w.do(snap, httptestRequest(http.MethodPost, "/v1/chat/completions", `{"model":"pub","stream":true,"stream_options":5}`), nil)
	if ge := gatewayError(t, res.err); ge.Status != 400 || ge.Param != "stream_options" {
		t.Errorf("got %+v", ge)
	}
	if n := len(w.attempts()); n != 0 {
		t.Errorf("sent %d requests", n)
	}
}

// A Gemini request's body is never touched: the model is in the path.
func TestGeminiBodyUntouched(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := w.compile(newConfig(t, config.Provider{Name: "G", Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com",
		Keys: []string{secret("g1")}}, config.Model{Name: "pub", Targets: []config.Target{{Provider: "G", Model: "gemini-2.5-flash"}}}))
	body := `{"model":"pub","contents":[{"parts":[{"text":"hi"}]}]}`
	r := httptestRequest(http.MethodPost, "/v1beta/models/pub:streamGenerateContent?alt=sse", body)
	res := w.do(snap, r, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := w.requests()[0].body; string(got) != body {
		t.Errorf("body %q", got)
	}
	if !res.plan.stream {
		t.Error("streamGenerateContent is a stream")
	}
}

// A client key authenticated the request: that same key never goes
// upstream on any attempt, whichever header carried it.
func TestClientKeyNeverUpstreamOnFailover(t *testing.T) {
	t.Parallel()
	const clientKey = "ck-alice-0123456789abcdef"
	w := newWorld(t)
	w.script("A", status(500, ""))
	cfg := newConfig(t, openaiProvider("A", "a1"), openaiProvider("B", "b1"), route("m", "A", "B"),
		config.ClientKey{Name: "alice", Key: clientKey})
	snap := w.compile(cfg)
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?key="+clientKey, strings.NewReader(`{"model":"m"}`))
	r.Header.Set("X-Api-Key", clientKey)
	caller, err := snap.Keys().Authenticate(r, t0)
	if err != nil || caller.Kind != access.Client {
		t.Fatalf("authenticate: %v %v", caller, err)
	}
	w.do(snap, r, caller)
	if len(w.requests()) != 2 {
		t.Fatalf("attempts %v", w.attempts())
	}
	for _, s := range w.requests() {
		if strings.Contains(s.url.String(), clientKey) {
			t.Errorf("%s: the client key in the URL", s)
		}
		for name, vs := range s.header {
			if strings.Contains(strings.Join(vs, ","), clientKey) {
				t.Errorf("%s: the client key in %s", s, name)
			}
		}
	}
}

// A keyless preset with one upstream sends the request as it is: the
// client's own key, the preset's header policy and defaults, one attempt.
func TestPresetDirect(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("claude", status(529, "overloaded"))
	snap := w.compile(config.Default())
	r := httptestRequest(http.MethodPost, "/claude/v1/messages?beta=true", `{"model":"claude-sonnet-4"}`)
	r.Header.Set("X-Api-Key", "sk-ant-clients-own")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	plan, err := snap.PresetPlan(r, snap.Preset("claude"), "/v1/messages", &access.Caller{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res := w.roundTrip(plan, r)
	if res.err != nil || res.resp.StatusCode != 529 || string(res.body) != "overloaded" {
		t.Fatalf("got %v %q %v: a single upstream's answer comes back as it is", res.resp, res.body, res.err)
	}
	reqs := w.requests()
	if len(reqs) != 1 {
		t.Fatalf("attempts %v", w.attempts())
	}
	s := reqs[0]
	if s.url.String() != "https://api.anthropic.com/v1/messages?beta=true" || s.header.Get("X-Api-Key") != "sk-ant-clients-own" ||
		s.header.Get("Anthropic-Version") != "2023-06-01" || s.header.Get("X-Forwarded-For") != "" {
		t.Errorf("sent %s %v", s.url, s.header)
	}
	if rep := plan.Report(); rep.Provider != "claude" || rep.Attempts != 1 {
		t.Errorf("report %+v", rep)
	}
}

// Generic mode: one attempt to the fixed URL over the guarded transport.
func TestGenericPlan(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := w.compile(config.Default())
	u, _ := url.Parse("https://api.example.net/v2/run?x=1")
	r := httptestRequest(http.MethodPost, "/TOKEN/https/api.example.net/v2/run?x=1", `{"a":1}`)
	r.Header.Set("X-Custom", "kept")
	r.Header.Set("Cookie", "dropped")
	res := w.roundTrip(snap.GenericPlan(u), r)
	if res.err != nil {
		t.Fatal(res.err)
	}
	reqs := w.requests()
	if len(reqs) != 1 || reqs[0].provider != "generic" || reqs[0].url.String() != u.String() {
		t.Fatalf("sent %v", w.attempts())
	}
	if h := reqs[0].header; h.Get("X-Custom") != "kept" || h.Get("Cookie") != "" {
		t.Errorf("headers %v", h)
	}
}

// A WebSocket on a keyed preset: wss to the first upstream, the provider's
// key in place of the client's credential, the subprotocol left to the
// dialer.
func TestWebSocketPlan(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env["OPENAI_API_KEY"] = secret("o1")
	cfg := config.Default()
	cfg.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_API_KEY"}}}
	snap := w.compile(cfg)
	r := httptest.NewRequest(http.MethodGet, "/openai/v1/realtime?model=gpt-realtime", nil)
	r.Header.Set("Authorization", "Bearer ck-client-key-000000000000")
	r.Header.Set("Sec-WebSocket-Protocol", "realtime")
	plan, err := snap.PresetPlan(r, snap.Preset("openai"), "/v1/realtime", access.OperatorCaller(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	u, h, rt, err := plan.WebSocket(r)
	if err != nil {
		t.Fatal(err)
	}
	if u.String() != "wss://api.openai.com/v1/realtime?model=gpt-realtime" || rt == nil {
		t.Errorf("URL %s", u)
	}
	if h.Get("Authorization") != "Bearer "+secret("o1") || h.Get("Sec-Websocket-Protocol") != "" {
		t.Errorf("headers %v", h)
	}
	snap.Preset("openai").Keys()[0].Health().Disable("refused")
	if _, _, _, err := plan.WebSocket(r); err == nil {
		t.Error("a WebSocket with every key disabled")
	} else if ge := gatewayError(t, err); ge.Code != "no_provider_key" {
		t.Errorf("err %+v", ge)
	}
}
