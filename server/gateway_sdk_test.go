package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"google.golang.org/genai"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

// The Anthropic SDK with base_url = the gateway and a client key: routed
// by model to an anthropic provider, the provider's key in x-api-key,
// usage read from message_start/message_delta, errors in Anthropic's
// format.
func TestGatewayAnthropicSDK(t *testing.T) {
	t.Parallel()
	fake := providertest.NewAnthropic(t, &providertest.Anthropic{Keys: []string{gwEnv["ANTHROPIC_1"]},
		Reply:        []providertest.Delta{providertest.Reasoning("thinking it over"), providertest.Text("Bonjour"), providertest.Text("!")},
		CachedTokens: 7}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "claude", Kind: "anthropic", BaseURL: fake.URL, Keys: []string{"env:ANTHROPIC_1"}},
			config.Model{Name: "smart", Targets: []config.Target{{Provider: "claude", Model: "claude-sonnet-4-5"}}})
	}))
	client := anthropicClient(h, aliceKey)
	params := anthropic.MessageNewParams{Model: "smart", MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	msg, err := client.Messages.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if text := msgText(msg); text != "Bonjour!" {
		t.Errorf("answer %q", text)
	}
	stream := client.Messages.NewStreaming(t.Context(), params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text := msgText(&acc); text != "Bonjour!" {
		t.Errorf("streamed answer %q", text)
	}
	for _, r := range fake.Requests() {
		if r.Header.Get("X-Api-Key") != gwEnv["ANTHROPIC_1"] || r.Header.Get("Anthropic-Version") == "" {
			t.Errorf("upstream headers: key injected %v, anthropic-version %q",
				r.Header.Get("X-Api-Key") == gwEnv["ANTHROPIC_1"], r.Header.Get("Anthropic-Version"))
		}
		if !strings.Contains(string(r.Body), `"model":"claude-sonnet-4-5"`) {
			t.Errorf("upstream model not renamed: %s", r.Body)
		}
	}
	usage := usageRow(t, h, func(u stats.UsageRow) bool { return u.Client == "alice" && u.Model == "smart" && u.Requests == 2 })
	if usage.InputTokens == 0 || usage.OutputTokens == 0 || usage.CachedTokens != 14 {
		t.Errorf("usage %+v, want input and output counted and 7 cached tokens per request", usage)
	}

	// Errors in Anthropic's format: the SDK raises its own error type.
	bad := anthropicClient(h, "ck-wrong-0000000000000000")
	_, err = bad.Messages.New(t.Context(), params)
	var aerr *anthropic.Error
	if !errors.As(err, &aerr) || aerr.StatusCode != 401 || !strings.Contains(aerr.RawJSON(), `"authentication_error"`) {
		t.Errorf("wrong key: %v", err)
	}
	params.Model = "nonexistent"
	_, err = client.Messages.New(t.Context(), params)
	if !errors.As(err, &aerr) || aerr.StatusCode != 404 || !strings.Contains(aerr.RawJSON(), `"not_found_error"`) {
		t.Errorf("unknown model: %v", err)
	}
	// So is a path the gateway does not route.
	_, err = client.Messages.Batches.Get(t.Context(), "msgbatch_1", anthropic.MessageBatchGetParams{})
	if !errors.As(err, &aerr) || aerr.StatusCode != 404 || !strings.Contains(aerr.RawJSON(), `"not_found_error"`) {
		t.Errorf("unrouted path: %v", err)
	}
}

func msgText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// The Google Gen AI SDK with base_url = the gateway: the model is taken
// from the path and renamed there, the client's key (x-goog-api-key) is
// replaced by the provider's, usage comes from usageMetadata, errors are
// Google's.
func TestGatewayGenAISDK(t *testing.T) {
	t.Parallel()
	fake := providertest.NewGoogleAI(t, &providertest.GoogleAI{Keys: []string{gwEnv["GEMINI_1"]},
		Reply: []providertest.Delta{providertest.Text("Hallo "), providertest.Text("Welt")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "google", Kind: "gemini", BaseURL: fake.URL, Keys: []string{"env:GEMINI_1"}},
			config.Model{Name: "flash", Targets: []config.Target{{Provider: "google", Model: "gemini-2.5-flash"}}})
	}))
	client := genaiClient(t, h, aliceKey)
	resp, err := client.Models.GenerateContent(t.Context(), "flash", genai.Text("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != "Hallo Welt" {
		t.Errorf("answer %q", resp.Text())
	}
	var streamed strings.Builder
	for chunk, err := range client.Models.GenerateContentStream(t.Context(), "flash", genai.Text("hi"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		streamed.WriteString(chunk.Text())
	}
	if streamed.String() != "Hallo Welt" {
		t.Errorf("streamed answer %q", streamed.String())
	}
	for _, r := range fake.Requests() {
		if !strings.Contains(r.URI, "/v1beta/models/gemini-2.5-flash:") {
			t.Errorf("upstream path %s: the model was not renamed in the path", r.URI)
		}
		if r.Header.Get("X-Goog-Api-Key") != gwEnv["GEMINI_1"] || strings.Contains(r.URI, "key=") {
			t.Errorf("the provider's key was not injected, or a key stayed in the query: %s", r.URI)
		}
	}
	if u := usageRow(t, h, func(u stats.UsageRow) bool { return u.Client == "alice" && u.Model == "flash" && u.Requests == 2 }); u.OutputTokens == 0 {
		t.Errorf("usage not counted: %+v", u)
	}

	// A client key sent as ?key= works too, and never goes upstream.
	code, _, body := h.do("POST", "/v1beta/models/flash:generateContent?key="+aliceKey, nil,
		`{"contents":[{"parts":[{"text":"hi"}]}]}`)
	if code != 200 {
		t.Errorf("?key=: %d %s", code, body)
	}
	reqs := fake.Requests()
	if last := reqs[len(reqs)-1]; strings.Contains(last.URI, aliceKey) {
		t.Error("the client key went upstream in the query")
	}

	bad := genaiClient(t, h, "ck-wrong-0000000000000000")
	_, err = bad.Models.GenerateContent(t.Context(), "flash", genai.Text("hi"), nil)
	var gerr genai.APIError
	if !errors.As(err, &gerr) || gerr.Code != 401 || gerr.Status != "UNAUTHENTICATED" {
		t.Errorf("wrong key: %v", err)
	}
	// So is a path the gateway does not route.
	_, err = client.Caches.Create(t.Context(), "flash", nil)
	if !errors.As(err, &gerr) || gerr.Code != 404 || gerr.Status != "NOT_FOUND" {
		t.Errorf("unrouted path: %v", err)
	}
	noSecretIn(t, "the log", h.waitLog(3))
}

// A model served in one API's format only is refused in another's with a
// 400 that says where to go.
func TestGatewayWrongAPIFormat(t *testing.T) {
	t.Parallel()
	fake := providertest.NewAnthropic(t, nil, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "claude", Kind: "anthropic", BaseURL: fake.URL, Keys: []string{"env:ANTHROPIC_1"}},
			config.Model{Name: "smart", Targets: []config.Target{{Provider: "claude"}}})
	}))
	code, _, body := h.do("POST", "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + aliceKey}},
		`{"model":"smart","messages":[{"role":"user","content":"hi"}]}`)
	if code != 400 || !strings.Contains(body, "/v1/messages") {
		t.Errorf("%d %s", code, body)
	}
	if len(fake.Requests()) != 0 {
		t.Error("the request reached the provider")
	}
}

// Gemini's methods besides generating — countTokens, embedContent,
// batchEmbedContents — are routed by the gateway and answered whole: their
// one object has no finishReason, and is no cut answer.
func TestGatewayGeminiMethodsBesidesGenerating(t *testing.T) {
	t.Parallel()
	fake := providertest.NewGoogleAI(t, &providertest.GoogleAI{Keys: []string{gwEnv["GEMINI_1"]},
		Reply: []providertest.Delta{providertest.Text("Hallo")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "google", Kind: "gemini", BaseURL: fake.URL, Keys: []string{"env:GEMINI_1"}},
			config.Model{Name: "flash", Targets: []config.Target{{Provider: "google", Model: "gemini-2.5-flash"}}})
	}))
	client := genaiClient(t, h, aliceKey)
	count, err := client.Models.CountTokens(t.Context(), "flash", genai.Text("How many tokens?"), nil)
	if err != nil {
		t.Errorf("countTokens through the gateway: %v", err)
	} else if count.TotalTokens == 0 {
		t.Errorf("countTokens: %+v", count)
	}
	if _, err := client.Models.EmbedContent(t.Context(), "flash", genai.Text("hi"), nil); err != nil {
		t.Errorf("embedContent (SDK, batchEmbedContents) through the gateway: %v", err)
	}
	code, _, body := h.do("POST", "/v1beta/models/flash:embedContent?key="+aliceKey, nil,
		`{"content":{"parts":[{"text":"hi"}]}}`)
	if code != 200 {
		t.Errorf("embedContent: %d %s", code, body)
	}
	code, _, body = h.do("POST", "/v1beta/models/flash:countTokens?key="+aliceKey, nil,
		`{"contents":[{"parts":[{"text":"hi"}]}]}`)
	if code != 200 || len(body) == 0 {
		t.Errorf("countTokens raw: %d %q", code, body)
	}
}

// Anthropic's count_tokens is routed by the gateway, with the SDK.
func TestGatewayAnthropicCountTokens(t *testing.T) {
	t.Parallel()
	fake := providertest.NewAnthropic(t, &providertest.Anthropic{Keys: []string{gwEnv["ANTHROPIC_1"]},
		Reply: []providertest.Delta{providertest.Text("Bonjour")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "claude", Kind: "anthropic", BaseURL: fake.URL, Keys: []string{"env:ANTHROPIC_1"}},
			config.Model{Name: "smart", Targets: []config.Target{{Provider: "claude", Model: "claude-sonnet-4-5"}}})
	}))
	client := anthropicClient(h, aliceKey)
	n, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{Model: "smart",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	if err != nil || n.InputTokens == 0 {
		t.Errorf("count_tokens through the gateway: %v %+v", err, n)
	}
}
