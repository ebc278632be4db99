package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"go.uber.org/goleak"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) {
	// genai's dependencies start opencensus's worker at init, for good.
	leaktest.Main(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// testClient is an HTTP client that trusts the fakes' CA; its idle
// connections close when the test ends.
func testClient(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: CA(t).ClientTLS()}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// testClientHTTP2 is testClient speaking HTTP/2.
func testClientHTTP2(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: CA(t).ClientTLS(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// openAIClient is the official SDK pointed at a fake, without retries so
// that one call is one request.
func openAIClient(t testing.TB, baseURL, key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(baseURL), option.WithAPIKey(key),
		option.WithHTTPClient(testClient(t)), option.WithMaxRetries(0),
	}, opts...)...)
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris?")},
	}
}

// lastBody is the body of the last request a fake received.
func lastBody(t *testing.T, s *Server) []byte {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatal("the fake received no request")
	}
	return reqs[len(reqs)-1].Body
}

// extraString is an extra JSON field (one the SDK does not know, such as
// reasoning_content) as a string.
func extraString(t *testing.T, raw string) string {
	t.Helper()
	if raw == "" {
		return ""
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("extra field %s: %v", raw, err)
	}
	return s
}

func TestOpenAIChat(t *testing.T) {
	t.Parallel()
	weather := []Delta{ToolCall(0, "call_a", "get_weather", `{"city":`), ToolArgs(0, `"Paris"}`)}
	tests := []struct {
		name          string
		cfg           OpenAI
		wantContent   string
		wantReasoning string
		wantFinish    string
		wantTools     [][3]string // id, name, arguments
	}{
		{name: "default reply", cfg: OpenAI{Name: "alpha"}, wantContent: "Hello from alpha", wantFinish: "stop"},
		{
			name:        "reasoning then text",
			cfg:         OpenAI{Reply: []Delta{Reasoning("Paris is "), Reasoning("in France."), Text("Sunny.")}},
			wantContent: "Sunny.", wantReasoning: "Paris is in France.", wantFinish: "stop",
		},
		{
			name: "tool call", cfg: OpenAI{Reply: weather}, wantFinish: "tool_calls",
			wantTools: [][3]string{{"call_a", "get_weather", `{"city":"Paris"}`}},
		},
		{
			name:      "two tool calls, default id",
			cfg:       OpenAI{Reply: []Delta{ToolCall(0, "", "a", "{}"), ToolCall(1, "call_b", "b", `{"x":1}`)}},
			wantTools: [][3]string{{"call_0", "a", "{}"}, {"call_b", "b", `{"x":1}`}}, wantFinish: "tool_calls",
		},
		{
			name:        "length with cached tokens",
			cfg:         OpenAI{Reply: []Delta{Text("cut")}, FinishReason: FinishLength, CachedTokens: 5},
			wantContent: "cut", wantFinish: "length",
		},
		{name: "content filter", cfg: OpenAI{Reply: []Delta{}, FinishReason: FinishContentFilter}, wantFinish: "content_filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := NewOpenAI(t, &tt.cfg, nil)
			c := openAIClient(t, fake.BaseURL(), "sk-test")
			resp, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Object != "chat.completion" || !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Model != "gpt-4o-mini" || resp.Created == 0 {
				t.Errorf("envelope: object %q id %q model %q created %d", resp.Object, resp.ID, resp.Model, resp.Created)
			}
			msg := resp.Choices[0].Message
			if msg.Content != tt.wantContent || string(resp.Choices[0].FinishReason) != tt.wantFinish {
				t.Errorf("content %q finish %q, want %q %q", msg.Content, resp.Choices[0].FinishReason, tt.wantContent, tt.wantFinish)
			}
			if got := extraString(t, msg.JSON.ExtraFields["reasoning_content"].Raw()); got != tt.wantReasoning {
				t.Errorf("reasoning_content %q, want %q", got, tt.wantReasoning)
			}
			var tools [][3]string
			for _, tc := range msg.ToolCalls {
				if tc.Type != "function" {
					t.Errorf("tool call type %q", tc.Type)
				}
				tools = append(tools, [3]string{tc.ID, tc.Function.Name, tc.Function.Arguments})
			}
			if !slices.Equal(tools, tt.wantTools) {
				t.Errorf("tool calls %v, want %v", tools, tt.wantTools)
			}
			reply := tt.cfg.Reply
			if reply == nil {
				reply = defaultReply(tt.cfg.Name)
			}
			want := CountTokens(lastBody(t, fake.Server), reply)
			u := resp.Usage
			if u.PromptTokens != int64(want.Prompt) || u.CompletionTokens != int64(want.Completion) ||
				u.TotalTokens != int64(want.Prompt+want.Completion) ||
				u.CompletionTokensDetails.ReasoningTokens != int64(want.Reasoning) ||
				u.PromptTokensDetails.CachedTokens != int64(tt.cfg.CachedTokens) {
				t.Errorf("usage %s, want %+v cached %d", u.RawJSON(), want, tt.cfg.CachedTokens)
			}
		})
	}
}

func TestOpenAIChatStream(t *testing.T) {
	t.Parallel()
	reply := []Delta{Reasoning("Think"), Text("Hel"), Text("lo"), Text("!")}
	tests := []struct {
		name         string
		cfg          OpenAI
		includeUsage bool
		// wantUsageAt: "final" (an empty-choices chunk after the finish
		// chunk), "finish" (on the finish chunk) or "" (none).
		wantUsageAt string
		wantNulls   bool // every other chunk says "usage": null
	}{
		{name: "include_usage", includeUsage: true, wantUsageAt: "final", wantNulls: true},
		{name: "without include_usage", wantUsageAt: ""},
		{name: "usage on last chunk, asked", cfg: OpenAI{UsageOnLastChunk: true}, includeUsage: true, wantUsageAt: "finish"},
		{name: "usage on last chunk, unasked", cfg: OpenAI{UsageOnLastChunk: true}, wantUsageAt: "finish"},
		{name: "no usage", cfg: OpenAI{NoUsage: true}, includeUsage: true, wantUsageAt: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Reply = reply
			fake := NewOpenAI(t, &tt.cfg, nil)
			c := openAIClient(t, fake.BaseURL(), "sk-test")
			p := chatParams("deepseek-reasoner")
			if tt.includeUsage {
				p.StreamOptions.IncludeUsage = openai.Bool(true)
			}
			stream := c.Chat.Completions.NewStreaming(context.Background(), p)
			var acc openai.ChatCompletionAccumulator
			var chunks []openai.ChatCompletionChunk
			var reasoning strings.Builder
			for stream.Next() {
				ch := stream.Current()
				chunks = append(chunks, ch)
				if !acc.AddChunk(ch) {
					t.Fatalf("accumulator refused chunk %s", ch.RawJSON())
				}
				if len(ch.Choices) > 0 {
					reasoning.WriteString(extraString(t, ch.Choices[0].Delta.JSON.ExtraFields["reasoning_content"].Raw()))
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			// One chunk for the role, one per Delta, one with finish_reason,
			// and the usage chunk when there is one.
			wantChunks := 1 + len(reply) + 1
			if tt.wantUsageAt == "final" {
				wantChunks++
			}
			if len(chunks) != wantChunks {
				t.Fatalf("%d chunks, want %d", len(chunks), wantChunks)
			}
			for _, ch := range chunks {
				if ch.Object != "chat.completion.chunk" || ch.Model != "deepseek-reasoner" || ch.ID != chunks[0].ID {
					t.Errorf("chunk envelope: %s", ch.RawJSON())
				}
			}
			if chunks[0].Choices[0].Delta.Role != "assistant" {
				t.Errorf("first chunk %s carries no role", chunks[0].RawJSON())
			}
			if got := acc.Choices[0].Message.Content; got != "Hello!" {
				t.Errorf("accumulated content %q", got)
			}
			if got := reasoning.String(); got != "Think" {
				t.Errorf("reasoning_content %q", got)
			}
			if got := acc.Choices[0].FinishReason; got != "stop" {
				t.Errorf("finish reason %q", got)
			}
			want := CountTokens(lastBody(t, fake.Server), reply)
			var usageAt string
			for i, ch := range chunks {
				raw := ch.RawJSON()
				switch {
				case ch.JSON.Usage.Valid():
					if usageAt != "" {
						t.Errorf("usage twice: %s", raw)
					}
					usageAt = "finish"
					if len(ch.Choices) == 0 {
						usageAt = "final"
					}
					if i != len(chunks)-1 || ch.Usage.PromptTokens != int64(want.Prompt) || ch.Usage.CompletionTokens != int64(want.Completion) ||
						ch.Usage.CompletionTokensDetails.ReasoningTokens != int64(want.Reasoning) {
						t.Errorf("usage chunk %d of %d: %s, want %+v", i, len(chunks), raw, want)
					}
				case tt.wantNulls != strings.Contains(raw, `"usage":null`):
					t.Errorf("chunk %s: want usage null %v", raw, tt.wantNulls)
				}
			}
			if usageAt != tt.wantUsageAt {
				t.Errorf("usage at %q, want %q", usageAt, tt.wantUsageAt)
			}
		})
	}
}

func TestOpenAIStreamToolCalls(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, &OpenAI{Reply: []Delta{
		Text("Let me check."),
		ToolCall(0, "call_w", "get_weather", `{"ci`), ToolArgs(0, `ty":"Paris"}`),
		ToolCall(1, "call_t", "get_time", `{}`),
	}}, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	stream := c.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-4o"))
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	var secondFragment string
	n := 0
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
		if n == 3 { // role, text, first fragment, then this
			secondFragment = ch.Choices[0].Delta.ToolCalls[0].RawJSON()
		}
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// As OpenAI streams them: later fragments carry neither id nor name.
	if strings.Contains(secondFragment, `"id"`) || strings.Contains(secondFragment, `"name"`) || !strings.Contains(secondFragment, `"index":0`) {
		t.Errorf("second fragment %s", secondFragment)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 2 || calls[0].ID != "call_w" || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"Paris"}` ||
		calls[1].ID != "call_t" || calls[1].Function.Arguments != "{}" {
		t.Errorf("accumulated tool calls %+v", calls)
	}
	if len(finished) != 2 || finished[0].Name != "get_weather" || finished[0].Arguments != `{"city":"Paris"}` || finished[1].Name != "get_time" {
		t.Errorf("finished tool calls %+v", finished)
	}
	if acc.Choices[0].Message.Content != "Let me check." || acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("content %q finish %q", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason)
	}
}

// TestOpenAIChunkDelay shows that chunks are flushed one at a time: with a
// delay longer than the test, the first chunk still arrives, and the
// handler gives up when the client does.
func TestOpenAIChunkDelay(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, &OpenAI{ChunkDelay: 1 << 40}, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	ctx, cancel := context.WithCancel(context.Background())
	stream := c.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o"))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if stream.Current().Choices[0].Delta.Role != "assistant" {
		t.Errorf("first chunk %s", stream.Current().RawJSON())
	}
	cancel()
	if stream.Next() {
		t.Errorf("a second chunk arrived within the delay: %s", stream.Current().RawJSON())
	}
	if !errors.Is(stream.Err(), context.Canceled) {
		t.Errorf("err %v, want context.Canceled", stream.Err())
	}
}

func TestOpenAIRespond(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, &OpenAI{Respond: func(r FaultRequest) ([]Delta, string) {
		var body struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		json.Unmarshal(r.Body, &body)
		return []Delta{Text(r.Model + ": " + body.Messages[0].Content)}, FinishLength
	}}, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	for _, model := range []string{"m1", "m2"} {
		resp, err := c.Chat.Completions.New(context.Background(), chatParams(model))
		if err != nil {
			t.Fatal(err)
		}
		if want := model + ": What is the weather in Paris?"; resp.Choices[0].Message.Content != want || resp.Choices[0].FinishReason != "length" {
			t.Errorf("%s: %q %q, want %q length", model, resp.Choices[0].Message.Content, resp.Choices[0].FinishReason, want)
		}
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, nil, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	embed := func(format openai.EmbeddingNewParamsEncodingFormat, dims int64, inputs ...string) *openai.CreateEmbeddingResponse {
		t.Helper()
		p := openai.EmbeddingNewParams{
			Model: "text-embedding-3-small", EncodingFormat: format,
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
		}
		if dims > 0 {
			p.Dimensions = openai.Int(dims)
		}
		resp, err := c.Embeddings.New(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	floats := embed(openai.EmbeddingNewParamsEncodingFormatFloat, 0, "cat", "dog", "cat")
	if len(floats.Data) != 3 || floats.Model != "text-embedding-3-small" {
		t.Fatalf("response %s", floats.RawJSON())
	}
	for i, d := range floats.Data {
		if d.Index != int64(i) || len(d.Embedding) != defaultEmbeddingDims {
			t.Errorf("item %d: index %d, %d dims", i, d.Index, len(d.Embedding))
		}
	}
	if !slices.Equal(floats.Data[0].Embedding, floats.Data[2].Embedding) || slices.Equal(floats.Data[0].Embedding, floats.Data[1].Embedding) {
		t.Error("same text must give the same vector, different texts different ones")
	}
	if want := int64(3); floats.Usage.PromptTokens != want || floats.Usage.TotalTokens != want {
		t.Errorf("usage %s, want %d tokens", floats.Usage.RawJSON(), want)
	}
	b64 := embed(openai.EmbeddingNewParamsEncodingFormatBase64, 0, "cat")
	if !strings.HasPrefix(b64.Data[0].JSON.Embedding.Raw(), `"`) {
		t.Errorf("base64 asked, got %s", b64.Data[0].JSON.Embedding.Raw())
	}
	for i, x := range b64.Data[0].Embedding {
		// float32 on the wire either way; the SDK widens both to float64.
		if float32(x) != float32(floats.Data[0].Embedding[i]) {
			t.Fatalf("base64 vector %v, float vector %v", b64.Data[0].Embedding, floats.Data[0].Embedding)
		}
	}
	if got := embed("", 3, "cat"); len(got.Data[0].Embedding) != 3 {
		t.Errorf("dimensions 3 gave %d", len(got.Data[0].Embedding))
	}
}

func TestOpenAIModels(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, &OpenAI{Name: "zhipu", Models: []string{"glm-4.6", "embedding-3"}}, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	page, err := c.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		if m.OwnedBy != "zhipu" || m.Object != "model" {
			t.Errorf("model %s", m.RawJSON())
		}
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"glm-4.6", "embedding-3"}) {
		t.Errorf("models %v", ids)
	}
	if m, err := c.Models.Get(context.Background(), "glm-4.6"); err != nil || m.ID != "glm-4.6" {
		t.Errorf("get: %v %v", m, err)
	}
	for name, call := range map[string]func() error{
		"get":  func() error { _, err := c.Models.Get(context.Background(), "gpt-5"); return err },
		"chat": func() error { _, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-5")); return err },
	} {
		var apiErr *openai.Error
		if err := call(); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("%s of an unlisted model: %v", name, err)
		}
	}
}

func TestOpenAIKeys(t *testing.T) {
	t.Parallel()
	const good, bad = "sk-good-1234", "sk-wrong-5678"
	tests := []struct {
		name       string
		cfg        OpenAI
		path       string // under URL; default BaseURL
		opts       []option.RequestOption
		key        string
		wantStatus int
		wantCode   string
	}{
		{name: "good key", cfg: OpenAI{Keys: []string{"other", good}}, key: good},
		{name: "wrong key", cfg: OpenAI{Keys: []string{good}}, key: bad, wantStatus: 401, wantCode: "invalid_api_key"},
		{name: "no key", cfg: OpenAI{Keys: []string{good}}, opts: []option.RequestOption{option.WithHeaderDel("Authorization")}, wantStatus: 401},
		{
			name: "azure key in api-key", cfg: OpenAI{Azure: true, Keys: []string{good}}, path: "/openai/deployments/gpt-4o/",
			opts: []option.RequestOption{option.WithHeader("api-key", good), option.WithHeaderDel("Authorization")},
		},
		{
			name: "azure ignores bearer", cfg: OpenAI{Azure: true, Keys: []string{good}}, path: "/openai/",
			key: good, wantStatus: 401, wantCode: "401",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := NewOpenAI(t, &tt.cfg, nil)
			base := fake.BaseURL()
			if tt.path != "" {
				base = fake.URL + tt.path
			}
			c := openAIClient(t, base, tt.key, tt.opts...)
			resp, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini"))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if resp.Choices[0].Message.Content != "Hello from openai" {
					t.Errorf("answer %s", resp.RawJSON())
				}
				return
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v, want an API error", err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.Code != tt.wantCode || apiErr.Message == "" {
				t.Errorf("status %d code %q message %q, want %d %q", apiErr.StatusCode, apiErr.Code, apiErr.Message, tt.wantStatus, tt.wantCode)
			}
			if raw := apiErr.RawJSON(); strings.Contains(raw, tt.key) && tt.key != "" {
				t.Errorf("error body echoes the key: %s", raw)
			}
			if tt.key != "" && fake.KeyRequests(tt.key) != 1 && !tt.cfg.Azure {
				t.Errorf("KeyRequests(%q) = %d", tt.key, fake.KeyRequests(tt.key))
			}
		})
	}
}

func TestOpenAIAzureDeploymentIsTheModel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	fake := NewOpenAI(t, &OpenAI{Azure: true, Fault: func(r FaultRequest) Fault {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Model+" "+r.Key)
		return Fault{}
	}}, nil)
	c := openAIClient(t, fake.URL+"/openai/deployments/my-gpt4o/", "", option.WithHeader("api-key", "az-key"))
	resp, err := c.Chat.Completions.New(context.Background(), chatParams("ignored"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if resp.Model != "my-gpt4o" || !slices.Equal(seen, []string{"my-gpt4o az-key"}) {
		t.Errorf("model %q, fault hook saw %v", resp.Model, seen)
	}
}

func TestOpenAIBasePath(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, &OpenAI{BasePath: "/api/paas/v4", Name: "zhipu"}, nil)
	if want := fake.URL + "/api/paas/v4/"; fake.BaseURL() != want {
		t.Errorf("BaseURL %q, want %q", fake.BaseURL(), want)
	}
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	resp, err := c.Chat.Completions.New(context.Background(), chatParams("glm-4.6"))
	if err != nil || resp.Choices[0].Message.Content != "Hello from zhipu" {
		t.Fatalf("%v %v", resp, err)
	}
	if got := fake.Requests()[0].URI; got != "/api/paas/v4/chat/completions" {
		t.Errorf("request to %q", got)
	}
	var apiErr *openai.Error
	c404 := openAIClient(t, fake.URL+"/v1/", "sk-test")
	_, err = c404.Chat.Completions.New(context.Background(), chatParams("glm-4.6"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("the default base path answered: %v", err)
	}
}

func TestOpenAIBadRequests(t *testing.T) {
	t.Parallel()
	fake := NewOpenAI(t, nil, nil)
	hc := testClient(t)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode                 string
	}{
		{"invalid JSON", "POST", "/v1/chat/completions", `{"model":`, 400, ""},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, ""},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"m"}`, 400, "missing_required_parameter"},
		{"empty messages", "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400, "empty_array"},
		{"unknown path", "POST", "/v1/completionz", `{}`, 404, ""},
		{"GET chat", "GET", "/v1/chat/completions", ``, 404, ""},
		{"responses off", "POST", "/v1/responses", `{"model":"m","input":"hi"}`, 404, ""},
		{"bad embeddings input", "POST", "/v1/embeddings", `{"model":"m","input":{"x":1}}`, 400, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, fake.URL+tt.path, strings.NewReader(tt.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error openAIError `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		code := ""
		if body.Error.Code != nil {
			code = *body.Error.Code
		}
		if err != nil || resp.StatusCode != tt.wantStatus || code != tt.wantCode || body.Error.Message == "" || body.Error.Type == "" {
			t.Errorf("%s: %d %+v (%v), want %d %q", tt.name, resp.StatusCode, body.Error, err, tt.wantStatus, tt.wantCode)
		}
	}
}

func TestOpenAIResponses(t *testing.T) {
	t.Parallel()
	reply := []Delta{Reasoning("Hmm."), Text("It is "), Text("sunny."), ToolCall(0, "call_x", "get_time", `{"tz":`), ToolArgs(0, `"CET"}`)}
	fake := NewOpenAI(t, &OpenAI{NativeResponses: true, Reply: reply, CachedTokens: 2}, nil)
	c := openAIClient(t, fake.BaseURL(), "sk-test")
	params := responses.ResponseNewParams{Model: "gpt-5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather?")}}

	t.Run("non-stream", func(t *testing.T) {
		resp, err := c.Responses.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.ID, "resp_") || resp.Status != "completed" || resp.Model != "gpt-5" || resp.OutputText() != "It is sunny." {
			t.Errorf("response %s", resp.RawJSON())
		}
		var types []string
		for _, item := range resp.Output {
			types = append(types, item.Type)
		}
		if !slices.Equal(types, []string{"reasoning", "message", "function_call"}) {
			t.Errorf("output items %v", types)
		}
		if fc := resp.Output[2].AsFunctionCall(); fc.CallID != "call_x" || fc.Name != "get_time" || fc.Arguments != `{"tz":"CET"}` {
			t.Errorf("function call %s", resp.Output[2].RawJSON())
		}
		want := CountTokens(lastBody(t, fake.Server), reply)
		if u := resp.Usage; u.InputTokens != int64(want.Prompt) || u.OutputTokens != int64(want.Completion) ||
			u.OutputTokensDetails.ReasoningTokens != int64(want.Reasoning) || u.InputTokensDetails.CachedTokens != 2 {
			t.Errorf("usage %s, want %+v", u.RawJSON(), want)
		}
	})

	t.Run("stream", func(t *testing.T) {
		stream := c.Responses.NewStreaming(context.Background(), params)
		var types []string
		var text, args strings.Builder
		var completed responses.Response
		for i := 0; stream.Next(); i++ {
			ev := stream.Current()
			if ev.SequenceNumber != int64(i) {
				t.Errorf("event %d has sequence_number %d", i, ev.SequenceNumber)
			}
			types = append(types, ev.Type)
			switch ev.Type {
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.function_call_arguments.delta":
				args.WriteString(ev.Delta)
			case "response.completed":
				completed = ev.AsResponseCompleted().Response
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		wantTypes := []string{
			"response.created", "response.in_progress",
			"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
			"response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
			"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
			"response.output_text.done", "response.content_part.done", "response.output_item.done",
			"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
			"response.function_call_arguments.done", "response.output_item.done",
			"response.completed",
		}
		if !slices.Equal(types, wantTypes) {
			t.Errorf("events\n%v\nwant\n%v", types, wantTypes)
		}
		if text.String() != "It is sunny." || args.String() != `{"tz":"CET"}` {
			t.Errorf("text %q args %q", text.String(), args.String())
		}
		if completed.Status != "completed" || completed.OutputText() != "It is sunny." || completed.Usage.TotalTokens == 0 {
			t.Errorf("response.completed carries %s", completed.RawJSON())
		}
	})

	t.Run("length is incomplete", func(t *testing.T) {
		fake := NewOpenAI(t, &OpenAI{NativeResponses: true, FinishReason: FinishLength}, nil)
		c := openAIClient(t, fake.BaseURL(), "sk-test")
		stream := c.Responses.NewStreaming(context.Background(), params)
		var last responses.ResponseStreamEventUnion
		for stream.Next() {
			last = stream.Current()
		}
		if stream.Err() != nil || last.Type != "response.incomplete" || last.Response.IncompleteDetails.Reason != "max_output_tokens" {
			t.Errorf("last event %s (%v)", last.RawJSON(), stream.Err())
		}
	})
}
