package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

// The basic gateway path with the official OpenAI SDK as the client: a
// public model name routed to a provider's model, the provider's key
// injected, the client key never sent upstream, the body byte for byte
// except the model, usage counted and the extra usage chunk stripped.
func TestGatewayChatWithOpenAISDK(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha", Keys: []string{gwEnv["ALPHA_KEY_1"]},
		Reply: []providertest.Delta{providertest.Text("Hello"), providertest.Text(", world")}}, nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "alpha", Model: "gpt-alpha"}},
				Pricing: &config.Pricing{Currency: "usd", InputPer1M: 2, OutputPer1M: 8}})
	})
	h := startGateway(t, cfg)
	client := openaiClient(h, aliceKey)

	resp, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi"))
	if err != nil {
		t.Fatalf("non-streaming: %v", err)
	}
	if got := resp.Choices[0].Message.Content; got != "Hello, world" {
		t.Errorf("answer %q", got)
	}

	// The streaming request also carries the client key the way a browser
	// sends it to the Realtime API (a subprotocol), on a plain request:
	// it must not go upstream either.
	stream := client.Chat.Completions.NewStreaming(t.Context(), chatParams("super-brain", "hi again"),
		option.WithHeader("Sec-WebSocket-Protocol", "openai-insecure-api-key."+aliceKey))
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		chunks++
		if len(chunk.Choices) == 0 {
			t.Errorf("the client got a usage-only chunk it never asked for: %s", chunk.RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := acc.Choices[0].Message.Content; got != "Hello, world" {
		t.Errorf("streamed answer %q", got)
	}

	reqs := alpha.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.URI != "/v1/chat/completions" {
			t.Errorf("request %d went to %s", i, r.URI)
		}
		if bearer(r) != gwEnv["ALPHA_KEY_1"] {
			t.Errorf("request %d: the provider's key was not injected", i)
		}
		noSecretIn(t, "upstream body", string(r.Body))
		for name, vs := range r.Header {
			if strings.Contains(strings.Join(vs, ","), aliceKey) {
				t.Errorf("the client key went upstream in %s", name)
			}
		}
		var body map[string]any
		json.Unmarshal(r.Body, &body)
		if body["model"] != "gpt-alpha" {
			t.Errorf("request %d: upstream model %v, want gpt-alpha", i, body["model"])
		}
	}
	// The stream asked for usage on the client's behalf, and only that
	// changed in the body.
	var streamed map[string]any
	json.Unmarshal(reqs[1].Body, &streamed)
	if so, _ := streamed["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("the stream did not ask for usage: %s", reqs[1].Body)
	}

	u := usageRow(t, h, func(u stats.UsageRow) bool {
		return u.Client == "alice" && u.Model == "super-brain" && u.Provider == "alpha" && u.Key == "ALPHA_KEY_1" && u.Requests == 2
	})
	if u.InputTokens == 0 || u.OutputTokens == 0 || u.Cost["usd"] == 0 {
		t.Errorf("usage row %+v", u)
	}
	noSecretIn(t, "the log", h.waitLog(3))
	_, _, metrics := h.do("GET", "/metrics", nil, "")
	if !strings.Contains(metrics, `llmproxy_gateway_tokens_total{client="alice",model="super-brain",provider="alpha",provider_key="ALPHA_KEY_1",type="input"}`) {
		t.Errorf("metrics lack the usage series")
	}
	noSecretIn(t, "/metrics", metrics)
}

// The extra usage chunk llmproxy asked for is gone byte for byte: the
// client sees exactly the events it would have seen without the option.
func TestGatewayStripsTheUsageChunkItAskedFor(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha"}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"*"}})
	}))
	for _, clientAsked := range []bool{false, true} {
		body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if clientAsked {
			body = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		}
		code, _, out := h.do("POST", "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + aliceKey}}, body)
		if code != 200 {
			t.Fatalf("status %d: %s", code, out)
		}
		usageChunks := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: {") && strings.Contains(sc.Text(), `"choices":[]`) {
				usageChunks++
			}
		}
		if want := map[bool]int{false: 0, true: 1}[clientAsked]; usageChunks != want {
			t.Errorf("client asked for usage: %v; usage chunks it got: %d, want %d", clientAsked, usageChunks, want)
		}
		if !strings.HasSuffix(out, "data: [DONE]\n\n") {
			t.Errorf("stream does not end with [DONE]: %q", out[max(0, len(out)-40):])
		}
	}
	usageRow(t, h, func(u stats.UsageRow) bool { return u.Requests == 2 })
	if n := len(statsOf(t, h).Usage); n != 1 {
		t.Errorf("usage rows: %d, want 1 (both streams counted)", n)
	}
}

// A short stream an upstream sends whole, with a Content-Length: once the
// usage chunk is taken out that length is wrong, and a client holding the
// proxy to it would read a truncated answer.
func TestGatewayStrippedStreamDropsItsContentLength(t *testing.T) {
	t.Parallel()
	const events = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		body := events + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\ndata: [DONE]\n\n"
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}), nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"*"}})
	}))
	req, _ := http.NewRequest("POST", h.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+aliceKey)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != events+"data: [DONE]\n\n" {
		t.Fatalf("body %q, %v (Content-Length %d)", body, err, resp.ContentLength)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d for a body of %d bytes", resp.ContentLength, len(body))
	}
	usageRow(t, h, func(u stats.UsageRow) bool { return u.Requests == 1 && u.InputTokens == 7 })
}

// Errors in OpenAI's format with the status the SDK maps to its usual
// exception: 401 without or with a wrong key, 403 for a model the key may
// not use, 404 model_not_found; the param names the field at fault.
func TestGatewayErrorsInOpenAIFormat(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, nil, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
			config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "alpha"}}},
			config.Model{Name: "other", Targets: []config.Target{{Provider: "alpha"}}})
	}))
	for _, tc := range []struct {
		name, key, model string
		status           int
		code, param      string
	}{
		{"no key", "", "super-brain", 401, "invalid_api_key", ""},
		{"wrong key", "ck-wrong-0000000000000000", "super-brain", 401, "invalid_api_key", ""},
		{"model not allowed", bobKey, "other", 403, "model_not_allowed", "model"},
		{"unknown model", aliceKey, "nonexistent", 404, "model_not_found", "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := openaiClient(h, tc.key)
			_, err := client.Chat.Completions.New(t.Context(), chatParams(tc.model, "hi"))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an *openai.Error", err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Param != tc.param {
				t.Errorf("status %d code %q param %q, want %d %q %q (%s)", apiErr.StatusCode, apiErr.Code, apiErr.Param,
					tc.status, tc.code, tc.param, apiErr.Message)
			}
		})
	}
	if n := len(alpha.Requests()); n != 0 {
		t.Errorf("refused requests reached the provider: %d", n)
	}
	noSecretIn(t, "the log", h.logs.String())
}

// README "Serving", Errors: a gateway path that cannot be routed is
// refused in the caller's format all the same — Google's under /v1beta,
// Anthropic's under /v1/messages — with its status (405 and Allow for a
// method the endpoint does not take, 404 for no such endpoint), before any
// key is checked.
func TestGatewayPathErrorsInTheCallersFormat(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, nil, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"*"}})
	}))
	for _, tc := range []struct {
		method, path string
		header       http.Header
		status       int
		format       string
	}{
		{"POST", "/v1beta/models", nil, 405, "google"},
		{"GET", "/v1beta/models/gemini-x:generateContent", nil, 404, "google"},
		{"POST", "/v1beta/models/a/b:generateContent", nil, 404, "google"},
		{"POST", "/v1beta/cachedContents", nil, 404, "google"},
		{"POST", "/v1/models/a/b:generateContent", nil, 404, "google"},
		{"GET", "/v1/messages", nil, 404, "anthropic"},
		{"GET", "/v1/messages/batches/b1", nil, 404, "anthropic"},
		{"POST", "/v1/messages/batches", nil, 404, "anthropic"},
		{"GET", "/v1/models/", nil, 404, "openai"},
		{"POST", "/v1/models", http.Header{"Anthropic-Version": {"2023-06-01"}}, 405, "anthropic"},
		{"GET", "/v1/chat/completions", nil, 404, "openai"},
		{"DELETE", "/v1/models/ft:gpt-4o-mini:acme::abc", nil, 404, "openai"},
		{"POST", "/v1/models", nil, 405, "openai"},
	} {
		code, hdr, body := h.do(tc.method, tc.path, tc.header, "{}")
		if allow := hdr.Get("Allow"); (code == http.StatusMethodNotAllowed) != (allow == "GET, HEAD") {
			t.Errorf("%s %s: %d with Allow %q (a 405 says GET, HEAD)", tc.method, tc.path, code, allow)
		}
		var e struct {
			Type  string `json:"type"`
			Error struct {
				Code    any    `json:"code"`
				Type    string `json:"type"`
				Status  string `json:"status"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, code, body)
			continue
		}
		var format string
		switch {
		case e.Type == "error" && e.Error.Type != "":
			format = "anthropic"
		case e.Error.Status != "" && e.Error.Code == float64(code):
			format = "google"
		case e.Error.Type != "" && e.Error.Code != nil:
			format = "openai"
		}
		if code != tc.status || format != tc.format {
			t.Errorf("%s %s: %d in format %q, want %d in %q: %s", tc.method, tc.path, code, format, tc.status, tc.format, strings.TrimSpace(body))
		}
	}
	if n := len(alpha.Requests()); n != 0 {
		t.Errorf("refused requests reached the provider: %d", n)
	}
}

// The gateway's own refusals in OpenAI's format name the request field at
// fault in "param" (null when none), whether the plan refused the body or
// an attempt did (stream_options); Anthropic's and Google's formats have
// no param.
func TestGatewayErrorsNameTheParam(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, nil, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"gpt-*"}})
	}))
	auth := http.Header{"Authorization": {"Bearer " + aliceKey}}
	for _, tc := range []struct {
		body   string
		status int
		param  any
	}{
		{`{"model":"gpt-x","model":"gpt-y","messages":[]}`, 400, "model"},
		{`{"messages":[]}`, 400, "model"},
		{`{"model":"nope","messages":[]}`, 404, "model"},
		{`{"model":"gpt-x","stream":true,"stream":false,"messages":[]}`, 400, "stream"},
		{`{"model":"gpt-x","stream":true,"stream_options":1,"messages":[]}`, 400, "stream_options"},
		{`{"model":"gpt-x",`, 400, nil},
	} {
		code, _, out := h.do("POST", "/v1/chat/completions", auth, tc.body)
		var e struct {
			Error map[string]any `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || code != tc.status {
			t.Errorf("%s: %d %q", tc.body, code, out)
			continue
		}
		if param, ok := e.Error["param"]; !ok || param != tc.param {
			t.Errorf("%s: %d %s; want param %v", tc.body, code, strings.TrimSpace(out), tc.param)
		}
	}
	for _, tc := range []struct{ path, body string }{
		{"/v1/messages", `{"model":"nope","max_tokens":1,"messages":[]}`},
		{"/v1beta/models/nope:generateContent", `{"contents":[]}`},
	} {
		code, _, out := h.do("POST", tc.path, http.Header{"X-Api-Key": {aliceKey}, "X-Goog-Api-Key": {aliceKey}}, tc.body)
		if code != 404 || strings.Contains(out, "param") {
			t.Errorf("%s: %d %s; want a 404 without param", tc.path, code, strings.TrimSpace(out))
		}
	}
	if n := len(alpha.Requests()); n != 0 {
		t.Errorf("refused requests reached the provider: %d", n)
	}
}
