package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// ModelPlan's refusals, each an *Error with the status an SDK maps to its
// usual exception, and nothing sent upstream.
func TestModelPlanRefusals(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t,
		openaiProvider("O", "o1"), // not api.openai.com: no Responses API of its own
		config.Provider{Name: "C", Kind: "anthropic", BaseURL: "https://api.anthropic.com", Keys: []string{secret("c1")}},
		config.Provider{Name: "G", Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com", Keys: []string{secret("g1")}},
		route("chat-model", "O"), route("claude-model", "C"), route("gemini-model", "G"), route("both", "C", "G"),
		route("secret-model", "O"),
		config.ClientKey{Name: "bob", Key: "ck-bob-0123456789abcdef", Models: []string{"chat-model", "claude-*"}})
	w := newWorld(t)
	snap := w.compile(cfg)
	bob, err := snap.Keys().Authenticate(authed("ck-bob-0123456789abcdef"), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		target  string
		body    string
		caller  *access.Caller
		status  int
		code    string
		message string // a part of the message
		not     string // what the message must not say
	}{
		{name: "invalid JSON", target: "/v1/chat/completions", body: `{"model":"chat-model",`, status: 400, code: "invalid_json"},
		{name: "not an object", target: "/v1/chat/completions", body: `["model"]`, status: 400, code: "missing_model"},
		{name: "trailing garbage", target: "/v1/chat/completions", body: `{"model":"chat-model"} x`, status: 400, code: "invalid_json"},
		{name: "duplicate model", target: "/v1/chat/completions", body: `{"model":"chat-model","model":"secret-model"}`, status: 400, code: "invalid_json", message: "more than once"},
		{name: "duplicate escaped model", target: "/v1/chat/completions", body: `{"model":"chat-model","mod\u0065l":"secret-model"}`, status: 400, code: "invalid_json", message: "more than once"},
		{name: "model in another case too", target: "/v1/chat/completions", body: `{"model":"chat-model","Model":"secret-model"}`, status: 400, code: "invalid_json", message: "another letter case"},
		{name: "model only in another case", target: "/v1/chat/completions", body: `{"MODEL":"secret-model"}`, status: 400, code: "invalid_json"},
		{name: "stream twice", target: "/v1/chat/completions", body: `{"model":"chat-model","stream":false,"stream":true}`, status: 400, code: "invalid_json", message: `"stream" more than once`},
		{name: "include_usage twice", target: "/v1/chat/completions", body: `{"model":"chat-model","stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`,
			status: 400, code: "invalid_json", message: "include_usage"},
		{name: "stream_options twice", target: "/v1/chat/completions", body: `{"model":"chat-model","stream":true,"stream_options":{},"stream_options":{"include_usage":true}}`,
			status: 400, code: "invalid_json", message: "include_usage"},
		// A duplicate in a body that is not JSON: not JSON, whichever field
		// is named twice.
		{name: "stream twice, then not JSON", target: "/v1/chat/completions", body: `{"model":"chat-model","stream":true,"stream":true,`,
			status: 400, code: "invalid_json", message: "not valid JSON"},
		{name: "model twice, then not JSON", target: "/v1/chat/completions", body: `{"model":"chat-model","model":"x",`,
			status: 400, code: "invalid_json", message: "not valid JSON"},
		{name: "stream_options twice, then stream twice", target: "/v1/chat/completions", body: `{"model":"chat-model","stream_options":{},"stream_options":{},"stream":true,"stream":true}`,
			status: 400, code: "invalid_json", message: `"stream" more than once`},
		{name: "missing model", target: "/v1/chat/completions", body: `{"messages":[]}`, status: 400, code: "missing_model"},
		{name: "empty model", target: "/v1/chat/completions", body: `{"model":""}`, status: 400, code: "missing_model"},
		{name: "model not a string", target: "/v1/chat/completions", body: `{"model":5}`, status: 400, code: "missing_model"},
		{name: "nested model only", target: "/v1/chat/completions", body: `{"x":{"model":"chat-model"}}`, status: 400, code: "missing_model"},
		{name: "model not allowed", target: "/v1/chat/completions", body: `{"model":"secret-model"}`, caller: bob, status: 403, code: "model_not_allowed", message: "secret-model"},
		{name: "gemini model not allowed", target: "/v1beta/models/gemini-model:generateContent", body: `{}`, caller: bob, status: 403, code: "model_not_allowed"},
		{name: "unknown model", target: "/v1/chat/completions", body: `{"model":"gpt-5-ultra"}`, status: 404, code: "model_not_found", message: "`gpt-5-ultra` does not exist"},
		{name: "unknown model for a scoped key", target: "/v1/chat/completions", body: `{"model":"claude-unknown"}`, caller: bob, status: 404, code: "model_not_found"},
		{name: "unprintable model", target: "/v1/chat/completions", body: `{"model":"bad\u0001name\u00e9"}`, status: 404, code: "model_not_found", message: "`bad?name??`"},
		{name: "anthropic model over chat", target: "/v1/chat/completions", body: `{"model":"claude-model"}`, status: 400, code: "unsupported_api", message: "call /v1/messages"},
		{name: "gemini model over chat", target: "/v1/chat/completions", body: `{"model":"gemini-model"}`, status: 400, code: "unsupported_api", message: "call /v1beta/models/{model}:generateContent"},
		{name: "chat model over messages", target: "/v1/messages", body: `{"model":"chat-model"}`, status: 400, code: "unsupported_api", message: "call /v1/chat/completions"},
		{name: "chat model over gemini", target: "/v1beta/models/chat-model:generateContent", body: `{}`, status: 400, code: "unsupported_api", message: "call /v1/chat/completions"},
		// BUG: hintFor knows one kind at a time; for a model served in two
		// other formats it falls back to "call /v1/chat/completions", the
		// very endpoint the client called.
		{name: "two other formats", target: "/v1/chat/completions", body: `{"model":"both"}`, status: 400, code: "unsupported_api", message: "anthropic and gemini",
			not: "call /v1/chat/completions"},
		{name: "responses without a provider that has it", target: "/v1/responses", body: `{"model":"chat-model"}`, status: 400, code: "unsupported_api", message: "/v1/chat/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			caller := tc.caller
			if caller == nil {
				caller = access.OperatorCaller()
			}
			r := httptestRequest(http.MethodPost, tc.target, tc.body)
			call, err := ParseCall(r.Method, r.URL.EscapedPath(), r.Header)
			if err != nil {
				t.Fatal(err)
			}
			_, err = snap.ModelPlan(r, call, caller, 1<<20)
			ge := gatewayError(t, err)
			if ge.Status != tc.status || ge.Code != tc.code || !strings.Contains(ge.Message, tc.message) {
				t.Errorf("got %d %s %q, want %d %s containing %q", ge.Status, ge.Code, ge.Message, tc.status, tc.code, tc.message)
			}
			if tc.not != "" && strings.Contains(ge.Message, tc.not) {
				t.Errorf("the message %q says %q", ge.Message, tc.not)
			}
		})
	}
	if n := len(w.attempts()); n != 0 {
		t.Errorf("refused requests reached providers: %v", w.attempts())
	}
}

// A keyed preset reads the body as the gateway does, in one pass: the same
// refusals in the same order, and include_usage added to a chat stream
// that did not ask for usage, spliced in where the pass found
// stream_options (the body otherwise as sent: a preset renames nothing).
func TestKeyedPresetReadsTheBody(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env["OPENAI_API_KEY"] = secret("o1")
	cfg := newConfig(t)
	cfg.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_API_KEY"}}}
	snap := w.compile(cfg)
	plan := func(body string) (*Plan, *http.Request, error) {
		r := httptestRequest(http.MethodPost, "/openai/v1/chat/completions", body)
		p, err := snap.PresetPlan(r, snap.Preset("openai"), "/v1/chat/completions", access.OperatorCaller(), 1<<20)
		return p, r, err
	}
	for _, tc := range []struct{ name, body, message string }{
		{"not JSON", `{"model":"m",`, "not valid JSON"},
		{"model twice", `{"model":"m","model":"n","stream":true}`, `"model" more than once`},
		{"stream twice", `{"model":"m","stream":false,"stream":true}`, `"stream" more than once`},
		{"stream twice, then not JSON", `{"model":"m","stream":true,"stream":true,`, "not valid JSON"},
		{"model twice, then not JSON", `{"model":"m","model":"n",`, "not valid JSON"},
		{"stream_options twice", `{"model":"m","stream":true,"stream_options":{},"stream_options":{}}`, "include_usage"},
		{"include_usage twice", `{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, "include_usage"},
	} {
		_, _, err := plan(tc.body)
		if ge := gatewayError(t, err); ge.Status != 400 || ge.Code != "invalid_json" || !strings.Contains(ge.Message, tc.message) {
			t.Errorf("%s: got %d %s %q, want 400 invalid_json containing %q", tc.name, ge.Status, ge.Code, ge.Message, tc.message)
		}
	}
	for i, tc := range []struct{ name, body, want string }{
		{"no options", `{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{"options first", `{"stream_options":{"x":1},"stream":true,"model":"m"}`, `{"stream_options":{"include_usage":true,"x":1},"stream":true,"model":"m"}`},
		{"null options", `{"model":"m","stream":true,"stream_options":null}`, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"asking itself", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`},
		{"not a stream: options twice pass", `{"model":"m","stream_options":{},"stream_options":{}}`, `{"model":"m","stream_options":{},"stream_options":{}}`},
	} {
		p, r, err := plan(tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res := w.roundTrip(p, r); res.err != nil {
			t.Fatalf("%s: %v", tc.name, res.err)
		}
		if got := string(w.requests()[i].body); got != tc.want {
			t.Errorf("%s: upstream body\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func authed(key string) *http.Request {
	r := httptestRequest(http.MethodPost, "/v1/chat/completions", "{}")
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// The model in an error message is cut to a readable length.
func TestErrorModelIsShortened(t *testing.T) {
	t.Parallel()
	e := modelNotFound(strings.Repeat("m", 500))
	if len(e.Message) > 250 || !strings.Contains(e.Message, "...") {
		t.Errorf("message of %d bytes: %q", len(e.Message), e.Message)
	}
}

// A body larger than the limit is refused with the body's own error; the
// gateway off answers its own 404.
func TestModelPlanBodyAndOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := w.compile(newConfig(t, openaiProvider("A", "a1"), route("m", "A")))
	r := httptestRequest(http.MethodPost, "/v1/chat/completions", `{"model":"m","pad":"`+strings.Repeat("x", 100)+`"}`)
	call, _ := ParseCall(r.Method, r.URL.EscapedPath(), r.Header)
	_, err := snap.ModelPlan(r, call, access.OperatorCaller(), 64)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Errorf("a body over the limit: %v, want *http.MaxBytesError", err)
	}
	off := w.compile(config.Default())
	if off.On() {
		t.Fatal("a configuration without providers turns the gateway on")
	}
	_, err = off.ModelPlan(chatRequest("m"), call, access.OperatorCaller(), 1<<20)
	if !errors.Is(err, ErrGatewayOff) {
		t.Errorf("gateway off: %v", err)
	}
}

// /v1/responses goes to a provider with the Responses API: OpenAI itself,
// one marked native, or (when the server translates) any OpenAI-compatible
// one through the translation.
func TestResponsesProviders(t *testing.T) {
	t.Parallel()
	translated := newWorld(t)
	deps := translated.deps()
	var through []string
	deps.Translate = func(name string, next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			through = append(through, name)
			return next.RoundTrip(r)
		})
	}
	cfg := newConfig(t, openaiProvider("Z", "z1"), route("glm", "Z"),
		config.Provider{Name: "OA", BaseURL: "https://api.openai.com/v1", Keys: []string{secret("oa1")}}, route("gpt", "OA"),
		config.Provider{Name: "N", BaseURL: "https://n.example/v1", Responses: "native", Keys: []string{secret("n1")}}, route("native", "N"))
	snap, err := Compile(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"glm", "gpt", "native"} {
		res := translated.do(snap, httptestRequest(http.MethodPost, "/v1/responses", `{"model":"`+model+`","input":"hi"}`), nil)
		if res.err != nil {
			t.Fatalf("%s: %v", model, res.err)
		}
	}
	if !equalStrings(through, []string{"Z"}) {
		t.Errorf("translated for %v, want only Z", through)
	}
	if got := translated.attempts(); !equalStrings(got, []string{"Z/z1", "OA/oa1", "N/n1"}) {
		t.Errorf("attempts %v", got)
	}
}

// A scoped caller on a keyed preset: the model in the body is checked.
func TestPresetPlanChecksTheModel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env["OPENAI_API_KEY"] = secret("o1")
	cfg := newConfig(t, config.ClientKey{Name: "bob", Key: "ck-bob-0123456789abcdef", Models: []string{"gpt-4o-mini"}})
	cfg.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_API_KEY"}}}
	snap := w.compile(cfg)
	bob, err := snap.Keys().Authenticate(authed("ck-bob-0123456789abcdef"), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		model string
		ok    bool
	}{{"gpt-4o-mini", true}, {"gpt-4o", false}} {
		r := httptestRequest(http.MethodPost, "/openai/v1/chat/completions", `{"model":"`+tc.model+`","stream":true}`)
		plan, err := snap.PresetPlan(r, snap.Preset("openai"), "/v1/chat/completions", bob, 1<<20)
		if !tc.ok {
			if ge := gatewayError(t, err); ge.Code != "model_not_allowed" {
				t.Errorf("%s: %v", tc.model, ge)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		res := w.roundTrip(plan, r)
		if res.err != nil {
			t.Fatal(res.err)
		}
		// A keyed preset meters its chat streams like the gateway: it asks
		// for usage.
		if body := string(w.requests()[0].body); !strings.Contains(body, `"include_usage":true`) {
			t.Errorf("keyed preset stream body %s", body)
		}
	}
}

// The model a body names: a configured model's name is the route's string,
// read without a copy; an escaped spelling of it, and a model nobody
// configured, read as JSON says.
func TestModelName(t *testing.T) {
	w := newWorld(t) // not parallel: AllocsPerRun
	snap := w.compile(newConfig(t, openaiProvider("A", "a1"), route("gpt-x", "A")))
	for _, tc := range []struct{ lit, want string }{
		{`"gpt-x"`, "gpt-x"},
		{`"gpt\u002dx"`, "gpt-x"},
		{`"gpt-\"x"`, `gpt-"x`},
		{`"other"`, "other"},
		{`"gpt-x2"`, "gpt-x2"},
		{`""`, ""},
	} {
		if got := snap.modelName([]byte(tc.lit)); got != tc.want {
			t.Errorf("modelName(%s) = %q, want %q", tc.lit, got, tc.want)
		}
	}
	lit := []byte(`"gpt-x"`)
	if n := testing.AllocsPerRun(100, func() { _ = snap.modelName(lit) }); n != 0 {
		t.Errorf("a configured model's name took %v allocations, want 0", n)
	}
	if got := snap.modelName(lit); got != snap.routes["gpt-x"].Name {
		t.Error("not the route's own string")
	}
}
