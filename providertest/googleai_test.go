package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genai"
)

func genaiClient(t testing.TB, url, key string) *genai.Client {
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI, HTTPClient: testClient(t),
		HTTPOptions: genai.HTTPOptions{BaseURL: url},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// partSummary is a part as "text:…", "thought:…" or "call:name:args".
func partSummary(p *genai.Part) string {
	switch {
	case p.FunctionCall != nil:
		args, _ := json.Marshal(p.FunctionCall.Args)
		return "call:" + p.FunctionCall.Name + ":" + string(args)
	case p.Thought:
		return "thought:" + p.Text
	}
	return "text:" + p.Text
}

func TestGoogleAIGenerate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        GoogleAI
		wantParts  []string // non-streaming: one part per block
		wantStream []string // streaming: one part per chunk
		wantFinish genai.FinishReason
	}{
		{
			name: "default reply", cfg: GoogleAI{Name: "g"},
			wantParts: []string{"text:Hello from g"}, wantStream: []string{"text:Hello", "text: from ", "text:g"}, wantFinish: "STOP",
		},
		{
			name:       "thought, text, call",
			cfg:        GoogleAI{Reply: []Delta{Reasoning("Hmm"), Text("Let me "), Text("see."), ToolCall(0, "", "get_weather", `{"city":`), ToolArgs(0, `"Paris"}`)}},
			wantParts:  []string{"thought:Hmm", "text:Let me see.", `call:get_weather:{"city":"Paris"}`},
			wantStream: []string{"thought:Hmm", "text:Let me ", "text:see.", `call:get_weather:{"city":"Paris"}`},
			wantFinish: "STOP",
		},
		{
			name:      "max tokens, cached",
			cfg:       GoogleAI{Reply: []Delta{Text("cut")}, FinishReason: FinishLength, CachedTokens: 4},
			wantParts: []string{"text:cut"}, wantStream: []string{"text:cut"}, wantFinish: "MAX_TOKENS",
		},
		{
			name:      "safety",
			cfg:       GoogleAI{Reply: []Delta{Text("")}, FinishReason: FinishContentFilter},
			wantParts: []string{"text:"}, wantStream: []string{"text:"}, wantFinish: "SAFETY",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := NewGoogleAI(t, &tt.cfg, nil)
			c := genaiClient(t, fake.URL, "AIza-test")
			reply := tt.cfg.Reply
			if reply == nil {
				reply = defaultReply(tt.cfg.Name)
			}
			checkUsage := func(how string, u *genai.GenerateContentResponseUsageMetadata) {
				t.Helper()
				want := CountTokens(lastBody(t, fake.Server), reply)
				if u == nil || u.PromptTokenCount != int32(want.Prompt) || u.CandidatesTokenCount != int32(want.Completion-want.Reasoning) ||
					u.ThoughtsTokenCount != int32(want.Reasoning) || u.TotalTokenCount != int32(want.Prompt+want.Completion) ||
					u.CachedContentTokenCount != int32(tt.cfg.CachedTokens) {
					t.Errorf("%s: usage %+v, want %+v", how, u, want)
				}
			}

			resp, err := c.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("Weather in Paris?"), nil)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, p := range resp.Candidates[0].Content.Parts {
				parts = append(parts, partSummary(p))
			}
			if !slices.Equal(parts, tt.wantParts) || resp.Candidates[0].FinishReason != tt.wantFinish || resp.ModelVersion != "gemini-2.5-flash" ||
				resp.Candidates[0].Content.Role != "model" {
				t.Errorf("parts %q finish %q model %q, want %q %q", parts, resp.Candidates[0].FinishReason, resp.ModelVersion, tt.wantParts, tt.wantFinish)
			}
			checkUsage("GenerateContent", resp.UsageMetadata)

			parts = nil
			var last *genai.GenerateContentResponse
			for chunk, err := range c.Models.GenerateContentStream(context.Background(), "gemini-2.5-flash", genai.Text("Weather in Paris?"), nil) {
				if err != nil {
					t.Fatal(err)
				}
				if last != nil && last.Candidates[0].FinishReason != "" {
					t.Errorf("a chunk after the one with finishReason")
				}
				for _, p := range chunk.Candidates[0].Content.Parts {
					parts = append(parts, partSummary(p))
				}
				last = chunk
			}
			if !slices.Equal(parts, tt.wantStream) || last.Candidates[0].FinishReason != tt.wantFinish {
				t.Errorf("stream parts %q finish %q, want %q %q", parts, last.Candidates[0].FinishReason, tt.wantStream, tt.wantFinish)
			}
			if q := fake.Requests()[1].URI; !strings.HasSuffix(q, ":streamGenerateContent?alt=sse") {
				t.Errorf("genai streamed from %q", q)
			}
			checkUsage("GenerateContentStream", last.UsageMetadata)
		})
	}
}

// TestGoogleAIArrayStream reads the JSON-array framing that Gemini uses for
// streamGenerateContent without alt=sse.
func TestGoogleAIArrayStream(t *testing.T) {
	t.Parallel()
	fake := NewGoogleAI(t, &GoogleAI{Reply: []Delta{Text("a"), Text("b"), Text("c")}}, nil)
	resp, err := testClient(t).Post(fake.URL+"/v1beta/models/gemini-2.5-pro:streamGenerateContent", "application/json",
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var chunks []genai.GenerateContentResponse
	if err := json.NewDecoder(resp.Body).Decode(&chunks); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, c := range chunks {
		text.WriteString(c.Candidates[0].Content.Parts[0].Text)
	}
	if len(chunks) != 3 || text.String() != "abc" || chunks[2].Candidates[0].FinishReason != "STOP" || chunks[0].ModelVersion != "gemini-2.5-pro" {
		t.Errorf("%d chunks %q", len(chunks), text.String())
	}
	// Every chunk has the usage so far; the last one's is the total.
	if chunks[0].UsageMetadata.CandidatesTokenCount != 1 || chunks[2].UsageMetadata.CandidatesTokenCount != 3 {
		t.Errorf("usage %+v then %+v", chunks[0].UsageMetadata, chunks[2].UsageMetadata)
	}
}

func TestGoogleAIKeys(t *testing.T) {
	t.Parallel()
	const good = "AIza-good-1234"
	fake := NewGoogleAI(t, &GoogleAI{Keys: []string{good}}, nil)
	hc := testClient(t)
	tests := []struct {
		name       string
		query      string
		header     string
		wantStatus int
		wantCode   string
	}{
		{name: "header", header: good, wantStatus: 200},
		{name: "query", query: "?key=" + good, wantStatus: 200},
		{name: "wrong key", header: "AIza-wrong-9876", wantStatus: 400, wantCode: "INVALID_ARGUMENT"},
		{name: "no key", wantStatus: 403, wantCode: "PERMISSION_DENIED"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", fake.URL+"/v1beta/models/gemini-2.5-flash:generateContent"+tt.query, strings.NewReader(`{"contents":[]}`))
		if tt.header != "" {
			req.Header.Set("x-goog-api-key", tt.header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error genai.APIError `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || body.Error.Status != tt.wantCode || (tt.wantCode != "" && body.Error.Code != tt.wantStatus) {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, resp.StatusCode, body.Error, tt.wantStatus, tt.wantCode)
		}
	}
	if fake.KeyRequests(good) != 2 || fake.KeyRequests("") != 1 {
		t.Errorf("KeyRequests: good %d, none %d", fake.KeyRequests(good), fake.KeyRequests(""))
	}

	// Through the SDK: a wrong key is Google's API_KEY_INVALID.
	_, err := genaiClient(t, fake.URL, "AIza-wrong-9876").Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || len(apiErr.Details) == 0 || apiErr.Details[0]["reason"] != "API_KEY_INVALID" {
		t.Errorf("err %v", err)
	}
	if strings.Contains(err.Error(), "AIza-wrong-9876") {
		t.Errorf("error echoes the key: %v", err)
	}
}

func TestGoogleAICountEmbedModels(t *testing.T) {
	t.Parallel()
	fake := NewGoogleAI(t, &GoogleAI{Models: []string{"gemini-2.5-flash", "gemini-embedding-001"}}, nil)
	c := genaiClient(t, fake.URL, "AIza-test")
	ctx := context.Background()

	count, err := c.Models.CountTokens(ctx, "gemini-2.5-flash", genai.Text("How many tokens?"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := CountTokens(lastBody(t, fake.Server), nil).Prompt; count.TotalTokens != int32(want) || want == 0 {
		t.Errorf("countTokens %d, want %d", count.TotalTokens, want)
	}

	dims := int32(5)
	emb, err := c.Models.EmbedContent(ctx, "gemini-embedding-001",
		[]*genai.Content{genai.NewContentFromText("cat", "user"), genai.NewContentFromText("dog", "user"), genai.NewContentFromText("cat", "user")},
		&genai.EmbedContentConfig{OutputDimensionality: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Embeddings) != 3 || len(emb.Embeddings[0].Values) != 5 ||
		!slices.Equal(emb.Embeddings[0].Values, emb.Embeddings[2].Values) || slices.Equal(emb.Embeddings[0].Values, emb.Embeddings[1].Values) {
		t.Errorf("embeddings %+v", emb.Embeddings)
	}
	// The single-content endpoint, which genai does not use for the Gemini API.
	resp, err := testClient(t).Post(fake.URL+"/v1beta/models/gemini-embedding-001:embedContent", "application/json",
		strings.NewReader(`{"content":{"parts":[{"text":"cat"}]},"outputDimensionality":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var single struct {
		Embedding struct{ Values []float32 } `json:"embedding"`
	}
	json.NewDecoder(resp.Body).Decode(&single)
	resp.Body.Close()
	if !slices.Equal(single.Embedding.Values, emb.Embeddings[0].Values) {
		t.Errorf("embedContent %v, batch %v", single.Embedding.Values, emb.Embeddings[0].Values)
	}

	page, err := c.Models.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range page.Items {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"models/gemini-2.5-flash", "models/gemini-embedding-001"}) {
		t.Errorf("models %v", names)
	}

	_, err = c.Models.GenerateContent(ctx, "gemini-1.0-pro", genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 404 || apiErr.Status != "NOT_FOUND" {
		t.Errorf("unlisted model: %v", err)
	}
}
