package gateway

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseCall(t *testing.T) {
	t.Parallel()
	anthropic := http.Header{"Anthropic-Version": {"2023-06-01"}}
	for _, tc := range []struct {
		name   string
		method string
		path   string // escaped
		header http.Header
		want   Call
		err    *Error
		// refused: any *Error will do (the status is the code's to choose).
		refused bool
	}{
		{name: "chat", method: "POST", path: "/v1/chat/completions", want: Call{API: OpenAI, Endpoint: "/chat/completions"}},
		{name: "responses", method: "POST", path: "/v1/responses", want: Call{API: OpenAI, Endpoint: "/responses"}},
		{name: "embeddings", method: "POST", path: "/v1/embeddings", want: Call{API: OpenAI, Endpoint: "/embeddings"}},
		{name: "legacy completions", method: "POST", path: "/v1/completions", want: Call{API: OpenAI, Endpoint: "/completions"}},
		{name: "messages", method: "POST", path: "/v1/messages", want: Call{API: Anthropic, Endpoint: "/messages"}},
		{name: "count tokens", method: "POST", path: "/v1/messages/count_tokens", want: Call{API: Anthropic, Endpoint: "/messages/count_tokens"}},
		{name: "messages with the anthropic header", method: "POST", path: "/v1/messages", header: anthropic, want: Call{API: Anthropic, Endpoint: "/messages"}},
		{name: "gemini v1beta", method: "POST", path: "/v1beta/models/gemini-2.5-flash:generateContent",
			want: Call{API: Gemini, Version: "v1beta", Model: "gemini-2.5-flash", Endpoint: "generateContent"}},
		{name: "gemini v1beta stream", method: "POST", path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
			want: Call{API: Gemini, Version: "v1beta", Model: "gemini-2.5-flash", Endpoint: "streamGenerateContent"}},
		{name: "gemini v1", method: "POST", path: "/v1/models/gemini-pro:generateContent",
			want: Call{API: Gemini, Version: "v1", Model: "gemini-pro", Endpoint: "generateContent"}},
		{name: "gemini escaped colon", method: "POST", path: "/v1beta/models/gemini-pro%3AcountTokens",
			want: Call{API: Gemini, Version: "v1beta", Model: "gemini-pro", Endpoint: "countTokens"}},
		{name: "gemini list", method: "GET", path: "/v1beta/models", want: Call{API: Gemini, List: true, Version: "v1beta"}},
		{name: "gemini retrieve", method: "GET", path: "/v1beta/models/gemini-pro", want: Call{API: Gemini, Retrieve: true, Model: "gemini-pro", Version: "v1beta"}},
		{name: "models", method: "GET", path: "/models", want: Call{API: OpenAI, List: true}},
		{name: "models HEAD", method: "HEAD", path: "/models", want: Call{API: OpenAI, List: true}},
		{name: "v1 models", method: "GET", path: "/v1/models", want: Call{API: OpenAI, List: true}},
		{name: "v1 models, anthropic", method: "GET", path: "/v1/models", header: anthropic, want: Call{API: Anthropic, List: true}},
		{name: "models, anthropic header ignored", method: "GET", path: "/models", header: anthropic, want: Call{API: OpenAI, List: true}},
		{name: "retrieve", method: "GET", path: "/v1/models/gpt-4o", want: Call{API: OpenAI, Retrieve: true, Model: "gpt-4o"}},
		{name: "retrieve, anthropic", method: "GET", path: "/v1/models/claude-sonnet-4", header: anthropic,
			want: Call{API: Anthropic, Retrieve: true, Model: "claude-sonnet-4"}},
		{name: "retrieve with a slash", method: "GET", path: "/v1/models/meta-llama/Llama-3-70b",
			want: Call{API: OpenAI, Retrieve: true, Model: "meta-llama/Llama-3-70b"}},
		// A GET on /v1/models/{id} whose id holds ':' is OpenAI's
		// retrieve of a fine-tuned model, not Gemini's v1 path.
		{name: "retrieve a fine-tuned model", method: "GET", path: "/v1/models/ft:gpt-4o-mini-2024-07-18:acme::abc123",
			want: Call{API: OpenAI, Retrieve: true, Model: "ft:gpt-4o-mini-2024-07-18:acme::abc123"}},
		// A response llmproxy's memory store may hold: read or deleted.
		{name: "stored response", method: "GET", path: "/v1/responses/resp_1", want: Call{API: OpenAI, Stored: "resp_1"}},
		{name: "stored response HEAD", method: "HEAD", path: "/v1/responses/resp_1", want: Call{API: OpenAI, Stored: "resp_1"}},
		{name: "delete stored response", method: "DELETE", path: "/v1/responses/resp_1", want: Call{API: OpenAI, Stored: "resp_1"}},
		{name: "POST under responses", method: "POST", path: "/v1/responses/resp_1", want: Call{API: OpenAI, Endpoint: "/responses/resp_1"}},

		{name: "PUT stored response", method: "PUT", path: "/v1/responses/resp_1", err: errMethodStored},
		{name: "stored response input items", method: "GET", path: "/v1/responses/resp_1/input_items", err: errNoModelRoute},
		{name: "GET responses", method: "GET", path: "/v1/responses", err: errNoModelRoute},
		{name: "POST models", method: "POST", path: "/models", err: errMethod},
		{name: "POST v1 models", method: "POST", path: "/v1/models", err: errMethod},
		{name: "DELETE v1beta models", method: "DELETE", path: "/v1beta/models", err: errMethod},
		{name: "POST retrieve", method: "POST", path: "/v1/models/gpt-4o", err: errMethod},
		{name: "retrieve no id", method: "GET", path: "/v1/models/", err: errNoModelRoute},
		{name: "anthropic batches", method: "POST", path: "/v1/messages/batches", err: errNoModelRoute},
		{name: "GET chat", method: "GET", path: "/v1/chat/completions", err: errNoModelRoute},
		{name: "files", method: "GET", path: "/v1/files", err: errNoModelRoute},
		{name: "v1", method: "POST", path: "/v1", err: errNoModelRoute},
		{name: "v1 slash", method: "POST", path: "/v1/", err: errNoModelRoute},
		{name: "v1beta", method: "POST", path: "/v1beta", err: errNoModelRoute},
		{name: "v1beta other", method: "POST", path: "/v1beta/files", err: errNoModelRoute},
		// Gemini's calls take POST only, as the OpenAI paths do.
		{name: "gemini PUT generate", method: "PUT", path: "/v1beta/models/gemini-pro:generateContent", refused: true},
		{name: "gemini DELETE generate", method: "DELETE", path: "/v1/models/gemini-pro:generateContent", refused: true},
		{name: "gemini GET generate", method: "GET", path: "/v1beta/models/gemini-pro:generateContent", err: errNoModelRoute},
		{name: "gemini no model", method: "POST", path: "/v1beta/models/:generateContent", err: errNoModelRoute},
		{name: "gemini no method", method: "POST", path: "/v1beta/models/gemini-pro:", err: errNoModelRoute},
		{name: "gemini no colon", method: "POST", path: "/v1beta/models/gemini-pro", err: errNoModelRoute},
		{name: "gemini slash in model", method: "POST", path: "/v1beta/models/a/b:generateContent", err: errNoModelRoute},
		{name: "gemini escaped slash in model", method: "POST", path: "/v1beta/models/a%2Fb:generateContent", err: errNoModelRoute},
		{name: "gemini climbing", method: "POST", path: "/v1beta/models/..%2F..%2Fx:generateContent", err: errNoModelRoute},
		{name: "gemini second colon", method: "POST", path: "/v1beta/models/m:generateContent:x", err: errNoModelRoute},
		{name: "gemini slash in method", method: "POST", path: "/v1beta/models/m:generate/x", err: errNoModelRoute},
		{name: "gemini retrieve with a slash", method: "GET", path: "/v1beta/models/a/b", err: errNoModelRoute},
		{name: "bad escape", method: "POST", path: "/v1/chat%zz", err: errBadPath},
		{name: "escaped newline", method: "POST", path: "/v1/chat/completions%0A", err: errBadPath},
		{name: "escaped NUL", method: "POST", path: "/v1beta/models/m%00:generateContent", err: errBadPath},
		{name: "escaped bytes that are not UTF-8", method: "POST", path: "/v1beta/models/gemini-%ff:generateContent", err: errBadPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			got, err := ParseCall(tc.method, tc.path, h)
			if tc.refused {
				if _, ok := err.(*Error); !ok {
					t.Errorf("got %+v, %v; want a refusal", got, err)
				}
				return
			}
			if tc.err != nil {
				if err != tc.err {
					t.Errorf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCallKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		call            Call
		responses, chat bool
	}{
		{Call{API: OpenAI, Endpoint: "/responses"}, true, false},
		{Call{API: OpenAI, Endpoint: "/chat/completions"}, false, true},
		{Call{API: Anthropic, Endpoint: "/chat/completions"}, false, false},
		{Call{API: OpenAI, Endpoint: "/embeddings"}, false, false},
	} {
		if tc.call.Responses() != tc.responses || tc.call.Chat() != tc.chat {
			t.Errorf("%+v: responses %v chat %v", tc.call, tc.call.Responses(), tc.call.Chat())
		}
	}
	for _, api := range []struct {
		api  API
		name string
	}{{OpenAI, "openai"}, {Anthropic, "anthropic"}, {Gemini, "gemini"}} {
		if api.api.String() != api.name {
			t.Errorf("%d is %s", api.api, api.api)
		}
	}
}

func TestIsGatewayPath(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"/v1": true, "/v1/chat/completions": true, "/v1beta": true, "/v1beta/models": true, "/models": true,
		"/v1x": false, "/v1betax/models": false, "/models/x": false, "/openai/v1/chat/completions": false, "/": false,
		"/v10/chat": false,
	} {
		if got := IsGatewayPath(path); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

// ParseCall reads paths straight from clients: it must never panic, and a
// Gemini model it returns goes into the upstream path, so it never holds
// a '/' (a way out of /models/) or a ':' (a second method), and is never
// empty.
func FuzzParseCall(f *testing.F) {
	for _, seed := range []string{
		"/v1/chat/completions", "/v1/messages", "/v1beta/models/gemini-pro:generateContent", "/v1/models/g:generateContent",
		"/v1beta/models/a%2Fb:x", "/v1beta/models/%3A%3A", "/v1/models/ft:a:b", "/models", "/v1beta/models/x", "/v1/%zz",
		"/v1beta/models/..:generateContent", "/v1beta/models/m%3Agenerate%2Fx",
	} {
		f.Add("POST", seed, false)
		f.Add("GET", seed, true)
	}
	f.Fuzz(func(t *testing.T, method, path string, anthropic bool) {
		h := http.Header{}
		if anthropic {
			h.Set("Anthropic-Version", "2023-06-01")
		}
		call, err := ParseCall(method, path, h)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			return
		}
		if call.API < OpenAI || call.API > Gemini {
			t.Fatalf("API %d", call.API)
		}
		if call.API == Gemini && !call.List {
			if call.Model == "" || strings.ContainsAny(call.Model, "/:") {
				t.Fatalf("Gemini model %q from %q", call.Model, path)
			}
			if !call.Retrieve && (call.Endpoint == "" || strings.ContainsAny(call.Endpoint, "/:")) {
				t.Fatalf("Gemini method %q from %q", call.Endpoint, path)
			}
			if call.Version != "v1" && call.Version != "v1beta" {
				t.Fatalf("version %q", call.Version)
			}
		}
		if strings.ContainsAny(call.Model+call.Endpoint, "\x00\r\n") {
			t.Fatalf("control character in %+v", call)
		}
		// (Gemini's methods are the table's: see "gemini PUT generate".)
		if !call.List && !call.Retrieve && call.API != Gemini && method != http.MethodPost {
			t.Fatalf("%s %s routed as a model call", method, path)
		}
	})
}

// A path ParseCall refuses is answered in its family's error format, the
// API of the Call returned with the error: Google's under /v1beta,
// Anthropic's under /v1/messages, OpenAI's elsewhere — where a GET or a
// DELETE on /v1/models/{id} with a colon is OpenAI's (a fine-tuned model)
// and only a POST is Gemini's v1.
func TestParseCallRefusalsNameTheirFormat(t *testing.T) {
	t.Parallel()
	anthropic := http.Header{"Anthropic-Version": {"2023-06-01"}}
	for _, tc := range []struct {
		method, path string
		header       http.Header
		want         API
	}{
		{"POST", "/v1beta/models", nil, Gemini},
		{"GET", "/v1beta/models/gemini-pro:generateContent", nil, Gemini},
		{"POST", "/v1beta/models/a/b:generateContent", nil, Gemini},
		{"GET", "/v1beta/models/a/b", nil, Gemini},
		{"POST", "/v1beta/cachedContents", nil, Gemini},
		{"POST", "/v1beta", nil, Gemini},
		{"POST", "/v1beta/models/m%00:generateContent", nil, Gemini},
		{"POST", "/v1beta/models/m%zz", nil, Gemini},
		{"POST", "/v1beta/models/gemini-%ff:generateContent", nil, Gemini}, // not UTF-8
		{"POST", "/v1/models/a/b:generateContent", nil, Gemini},
		{"PUT", "/v1/models/gemini-pro:generateContent", nil, OpenAI},
		{"DELETE", "/v1/models/ft:gpt-4o-mini:acme::abc", nil, OpenAI},
		{"DELETE", "/v1/models/ft:gpt-4o-mini:acme::abc", anthropic, Anthropic},
		{"GET", "/v1/messages", nil, Anthropic},
		{"PUT", "/v1/messages/count_tokens", nil, Anthropic},
		{"GET", "/v1/messages/batches/b1", nil, Anthropic},
		{"POST", "/v1/messages/batches", nil, Anthropic},
		{"POST", "/v1/messages/%zz", nil, Anthropic},
		{"POST", "/v1/models", anthropic, Anthropic},
		{"POST", "/v1/models/claude-x", anthropic, Anthropic},
		{"POST", "/v1/models", nil, OpenAI},
		{"POST", "/models", anthropic, OpenAI},
		{"POST", "/v1/models/gpt-4o", nil, OpenAI},
		{"GET", "/v1/chat/completions", anthropic, OpenAI},
		{"GET", "/v1/files", nil, OpenAI},
		{"POST", "/v1", nil, OpenAI},
		{"GET", "/v1/messagesx", nil, OpenAI},
		{"POST", "/v1betax/models", nil, OpenAI},
	} {
		h := tc.header
		if h == nil {
			h = http.Header{}
		}
		call, err := ParseCall(tc.method, tc.path, h)
		if _, ok := err.(*Error); !ok {
			t.Errorf("%s %s: %+v, %v; want a refusal", tc.method, tc.path, call, err)
			continue
		}
		if call.API != tc.want {
			t.Errorf("%s %s (anthropic-version %v): refused as %s, want %s", tc.method, tc.path, tc.header != nil, call.API, tc.want)
		}
	}
}
