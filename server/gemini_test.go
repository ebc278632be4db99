package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

const longAnswer = "The quick brown fox jumps over the lazy dog while the careful engineer writes a proxy " +
	"that stitches a cut-off answer back together, so that the reader never notices the seam between attempts."

const chineseAnswer = "这是一个很长的回答，用来测试代理在回答被截断之后能否接着写下去，并且让读者完全看不出中间断开过。"

// geminiSeen is what a client assembled from a proxied Gemini response.
type geminiSeen struct {
	text      string   // visible answer text
	thoughts  []string // thought texts
	finishes  []string // every finishReason, in order
	errors    []map[string]any
	usage     map[string]any // the last usageMetadata
	ids       map[string]bool
	functions int
	raw       string
}

func (g *geminiSeen) chunk(t *testing.T, data []byte) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("chunk is not JSON: %q", data)
	}
	if e, ok := m["error"].(map[string]any); ok {
		g.errors = append(g.errors, e)
		return
	}
	if u, ok := m["usageMetadata"].(map[string]any); ok {
		g.usage = u
	}
	if id, ok := m["responseId"].(string); ok {
		g.ids[id] = true
	}
	cands, _ := m["candidates"].([]any)
	if len(cands) == 0 {
		return
	}
	c := cands[0].(map[string]any)
	if fr, ok := c["finishReason"].(string); ok {
		g.finishes = append(g.finishes, fr)
	}
	content, _ := c["content"].(map[string]any)
	parts, _ := content["parts"].([]any)
	for _, p := range parts {
		pm := p.(map[string]any)
		if _, ok := pm["functionCall"]; ok {
			g.functions++
		}
		text, _ := pm["text"].(string)
		if th, _ := pm["thought"].(bool); th {
			g.thoughts = append(g.thoughts, text)
		} else {
			g.text += text
		}
	}
}

// askGemini sends a generation request through the proxy and parses the
// answer in whatever framing it came.
func askGemini(t *testing.T, h *harness, method string, body string) (int, *geminiSeen) {
	t.Helper()
	resp, err := h.client.Post(h.URL+"/gemini/v1beta/models/gemini-2.5-pro"+method, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, raw)
	}
	g := &geminiSeen{ids: map[string]bool{}, raw: string(raw)}
	switch {
	case strings.Contains(method, "alt=sse"):
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), "data: "); ok {
				g.chunk(t, []byte(data))
			}
		}
	case strings.Contains(method, "stream"):
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, raw)
		}
		for _, c := range arr {
			g.chunk(t, c)
		}
	default:
		g.chunk(t, raw)
	}
	return resp.StatusCode, g
}

const userPrompt = `{"contents":[{"role":"user","parts":[{"text":"Tell me a long story."}]}],"generationConfig":{"temperature":0.7}}`

func startGemini(t *testing.T, fake http.Handler, mutate ...func(*config.Config)) *harness {
	srv := providertest.NewServer(t, fake, nil)
	cfg := testConfig(t, map[string]string{"gemini": srv.URL})
	cfg.Gemini.ResumeDelay = time.Millisecond
	for _, m := range mutate {
		m(cfg)
	}
	return start(t, cfg)
}

// continuationOf checks a continuation request: the original turns, a model
// turn with exactly the visible text so far, and the user's request to go on.
func continuationOf(t *testing.T, body map[string]any, wantModel, wantPromptLang string) {
	t.Helper()
	contents := body["contents"].([]any)
	if len(contents) != 3 {
		t.Fatalf("continuation has %d turns, want 3: %v", len(contents), contents)
	}
	model := contents[1].(map[string]any)
	parts := model["parts"].([]any)
	if model["role"] != "model" || len(parts) != 1 || parts[0].(map[string]any)["text"] != wantModel {
		t.Errorf("model turn = %v, want exactly the visible text %q", model, wantModel)
	}
	if _, thought := parts[0].(map[string]any)["thought"]; thought {
		t.Error("the model turn carries a thought")
	}
	user := contents[2].(map[string]any)
	prompt := user["parts"].([]any)[0].(map[string]any)["text"].(string)
	want := map[string]string{"en": "Continue exactly", "zh": "请从你上一条回答"}[wantPromptLang]
	if user["role"] != "user" || !strings.HasPrefix(prompt, want) {
		t.Errorf("user turn = %v, want the %s continuation prompt", user, wantPromptLang)
	}
	if body["generationConfig"] == nil {
		t.Error("the continuation lost the original generationConfig")
	}
}

func TestGeminiResumeStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		answer   string
		attempts []providertest.GeminiAttempt
		requests int
	}{
		{"sse cut once", ":streamGenerateContent?alt=sse", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 40, How: "eof"}}, 2},
		{"sse cut twice, the second continuation repeating a tail", ":streamGenerateContent?alt=sse", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 30, How: "eof"}, {Cut: 50, How: "eof", Repeat: 15}, {Repeat: 24}}, 3},
		{"sse connection dropped", ":streamGenerateContent?alt=sse", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 60, How: "reset"}}, 2},
		{"json array with an abnormal finishReason", ":streamGenerateContent", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 45, How: "OTHER"}}, 2},
		{"json array cut without its closing bracket", ":streamGenerateContent", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 45, How: "eof"}}, 2},
		{"malformed function call ending", ":streamGenerateContent?alt=sse", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 20, How: "MALFORMED_FUNCTION_CALL"}}, 2},
		{"chinese answer", ":streamGenerateContent?alt=sse", chineseAnswer,
			[]providertest.GeminiAttempt{{Cut: 20, How: "eof"}}, 2},
		{"unary generateContent", ":generateContent", longAnswer,
			[]providertest.GeminiAttempt{{Cut: 33, How: "OTHER"}, {Cut: 20, How: "reset"}}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &providertest.Gemini{Answer: tc.answer, Attempts: tc.attempts}
			h := startGemini(t, fake)
			status, seen := askGemini(t, h, tc.method, userPrompt)
			if status != 200 {
				t.Fatalf("status %d: %s", status, seen.raw)
			}
			if seen.text != tc.answer {
				t.Errorf("assembled answer differs:\n got %q\nwant %q", seen.text, tc.answer)
			}
			if len(seen.finishes) != 1 || seen.finishes[0] != "STOP" {
				t.Errorf("finish reasons seen: %v, want exactly one STOP", seen.finishes)
			}
			if len(seen.ids) != 1 {
				t.Errorf("response ids %v: one stream, one id", seen.ids)
			}
			bodies := fake.Bodies()
			if len(bodies) != tc.requests {
				t.Fatalf("fake received %d requests, want %d", len(bodies), tc.requests)
			}
			lang := "en"
			if tc.answer == chineseAnswer {
				lang = "zh"
			}
			// The first continuation carries what the client had after the first cut.
			firstCut := []rune(tc.answer)[:tc.attempts[0].Cut]
			continuationOf(t, bodies[1], string(firstCut), lang)

			// Token counts add up over the attempts.
			var wantPrompt, wantCands float64
			have := 0
			for i := range tc.requests {
				var a providertest.GeminiAttempt
				if i < len(tc.attempts) {
					a = tc.attempts[i]
				}
				if a.How == "reset" && tc.method == ":generateContent" {
					continue // a unary answer cut off arrives not at all, usage included
				}
				wantPrompt += float64(10 * len(bodies[i]["contents"].([]any)))
				rest := len([]rune(tc.answer)) - have + min(a.Repeat, have)
				sent := rest
				if a.Cut > 0 && a.Cut < rest {
					sent = a.Cut
				}
				wantCands += float64(sent)
				have += sent - min(a.Repeat, have)
			}
			if seen.usage["promptTokenCount"] != wantPrompt || seen.usage["candidatesTokenCount"] != wantCands ||
				seen.usage["totalTokenCount"] != wantPrompt+wantCands {
				t.Errorf("usage %v, want prompt %v and candidates %v summed over the attempts", seen.usage, wantPrompt, wantCands)
			}
			logs := h.waitLog(1)
			if n := strings.Count(logs, "gemini answer cut off"); n != tc.requests-1 {
				t.Errorf("%d resumes logged, want %d", n, tc.requests-1)
			}
			if strings.Contains(logs, string(firstCut)) {
				t.Error("the answer text reached the log")
			}
		})
	}
}

func TestGeminiThoughtsStayOutOfTheAnswer(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{
		{Thoughts: []string{"Let me plan the story."}, Cut: 25, How: "eof"},
		{Thoughts: []string{"I was cut off; let me continue."}},
	}}
	h := startGemini(t, fake)
	_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	if seen.text != longAnswer {
		t.Errorf("answer %q", seen.text)
	}
	if len(seen.thoughts) != 1 || seen.thoughts[0] != "Let me plan the story." {
		t.Errorf("thoughts seen %q: the continuation's thinking before the answer must be dropped", seen.thoughts)
	}
	continuationOf(t, fake.Bodies()[1], longAnswer[:25], "en")
}

func TestGeminiStopAfterOnlyThinkingIsRetried(t *testing.T) {
	t.Parallel()
	// Every attempt thinks, then says STOP without a word of answer.
	only := &providertest.Gemini{Answer: "", Attempts: []providertest.GeminiAttempt{
		{Thoughts: []string{"Thinking only."}}, {Thoughts: []string{"Still thinking."}},
		{Thoughts: []string{"And more."}}, {Thoughts: []string{"More."}}, {Thoughts: []string{"…"}}, {Thoughts: []string{"…"}},
	}}
	h := startGemini(t, only)
	_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	bodies := only.Bodies()
	if len(bodies) != 1+5 {
		t.Errorf("%d requests: a STOP after only thinking must be retried, up to the limit", len(bodies))
	}
	for _, b := range bodies[1:] {
		if len(b["contents"].([]any)) != 1 {
			t.Error("with no visible answer yet, the retry is the original request")
		}
	}
	if len(seen.errors) != 1 || seen.errors[0]["status"] != "UNAVAILABLE" || len(seen.finishes) != 0 {
		t.Errorf("after the limit: errors %v, finishes %v", seen.errors, seen.finishes)
	}
	if len(seen.thoughts) != 1 {
		t.Errorf("thoughts seen %q: the retries' thinking must not repeat", seen.thoughts)
	}

	// A retry that then answers completes the stream.
	then := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{Thoughts: []string{"Hmm."}, Cut: -1}}}
	_, seen = askGemini(t, startGemini(t, then), ":streamGenerateContent?alt=sse", userPrompt)
	if seen.text != longAnswer || len(then.Bodies()) != 2 {
		t.Errorf("text %q after %d requests", seen.text, len(then.Bodies()))
	}
}

func TestGeminiEndingsThatAreNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		attempt providertest.GeminiAttempt
		check   func(t *testing.T, seen *geminiSeen)
	}{
		{"MAX_TOKENS", providertest.GeminiAttempt{Cut: 30, How: "MAX_TOKENS"}, func(t *testing.T, seen *geminiSeen) {
			if seen.text != longAnswer[:30] || len(seen.finishes) != 1 || seen.finishes[0] != "MAX_TOKENS" {
				t.Errorf("text %q finishes %v", seen.text, seen.finishes)
			}
		}},
		{"SAFETY", providertest.GeminiAttempt{Cut: 30, How: "SAFETY"}, func(t *testing.T, seen *geminiSeen) {
			if len(seen.finishes) != 1 || seen.finishes[0] != "SAFETY" {
				t.Errorf("finishes %v", seen.finishes)
			}
		}},
		{"blocked prompt", providertest.GeminiAttempt{Block: "PROHIBITED_CONTENT"}, func(t *testing.T, seen *geminiSeen) {
			if !strings.Contains(seen.raw, "PROHIBITED_CONTENT") {
				t.Errorf("the block did not reach the client: %s", seen.raw)
			}
		}},
		{"function call then an abnormal ending", providertest.GeminiAttempt{FunctionCall: true, Cut: 10, How: "OTHER"}, func(t *testing.T, seen *geminiSeen) {
			if seen.functions != 1 || len(seen.finishes) != 1 || seen.finishes[0] != "OTHER" {
				t.Errorf("functions %d finishes %v: the ending must pass through", seen.functions, seen.finishes)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{tc.attempt}}
			h := startGemini(t, fake)
			_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
			tc.check(t, seen)
			if n := len(fake.Bodies()); n != 1 {
				t.Errorf("%d requests: this ending must not be retried", n)
			}
		})
	}
}

func TestGeminiContinuationRefused(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{
		{Cut: 30, How: "eof"}, {Status: 429},
	}}
	h := startGemini(t, fake)
	status, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	if status != 200 || seen.text != longAnswer[:30] {
		t.Errorf("status %d, text %q", status, seen.text)
	}
	if len(seen.errors) != 1 || seen.errors[0]["code"] != float64(429) || seen.errors[0]["status"] != "RESOURCE_EXHAUSTED" {
		t.Errorf("errors %v: want Google's 429 error as the last event", seen.errors)
	}
	if len(seen.finishes) != 0 {
		t.Errorf("finishes %v: a refused continuation must not look like a finished answer", seen.finishes)
	}
	if n := len(fake.Bodies()); n != 2 {
		t.Errorf("%d requests: a 429 must not be retried", n)
	}
	// JSON-array framing carries the error as the last element.
	fake2 := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{Cut: 30, How: "OTHER"}, {Status: 403}}}
	_, seen = askGemini(t, startGemini(t, fake2), ":streamGenerateContent", userPrompt)
	if len(seen.errors) != 1 || seen.errors[0]["code"] != float64(403) {
		t.Errorf("array framing: errors %v", seen.errors)
	}
}

func TestGeminiExhaustedRetries(t *testing.T) {
	t.Parallel()
	var attempts []providertest.GeminiAttempt
	for range 10 {
		attempts = append(attempts, providertest.GeminiAttempt{Cut: 5, How: "eof"})
	}
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: attempts}
	h := startGemini(t, fake, func(c *config.Config) { c.Gemini.MaxResumes = 3 })
	_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	if seen.text != longAnswer[:20] || len(seen.errors) != 1 || seen.errors[0]["status"] != "UNAVAILABLE" {
		t.Errorf("text %q errors %v", seen.text, seen.errors)
	}
	if n := len(fake.Bodies()); n != 4 {
		t.Errorf("%d requests, want 1 + 3 continuations", n)
	}
}

func TestGeminiClientLeavingStopsEverything(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{Cut: 20, How: "eof"}}}
	// A pause long enough that a busy machine notices the client leaving
	// within it; the check below waits past it.
	h := startGemini(t, fake, func(c *config.Config) { c.Gemini.ResumeDelay = 1500 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", h.URL+"/gemini/v1beta/models/m:streamGenerateContent?alt=sse", strings.NewReader(userPrompt))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read what the first attempt sent, then leave during the pause before
	// the continuation.
	buf := make([]byte, 4096)
	resp.Body.Read(buf)
	time.Sleep(100 * time.Millisecond)
	cancel()
	resp.Body.Close()
	time.Sleep(2 * time.Second) // past the pause
	if n := len(fake.Bodies()); n != 1 {
		t.Errorf("%d requests: after the client left no continuation may go out", n)
	}
}

func TestGeminiResumeOffAndElsewhere(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{Cut: 20, How: "OTHER"}}}
	h := startGemini(t, fake, func(c *config.Config) { c.Gemini.Resume = false })
	_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	if len(seen.finishes) != 1 || seen.finishes[0] != "OTHER" || len(fake.Bodies()) != 1 {
		t.Errorf("with resume off the stream passes as is: finishes %v, %d requests", seen.finishes, len(fake.Bodies()))
	}
	// Other methods pass straight through.
	fake2 := &providertest.Gemini{Answer: longAnswer}
	h2 := startGemini(t, fake2)
	if status, _, _ := h2.do("GET", "/gemini/v1beta/models", nil, ""); status != 200 {
		t.Errorf("GET models: %d", status)
	}
}

func TestGeminiConfiguredPrompt(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: chineseAnswer, Attempts: []providertest.GeminiAttempt{{Cut: 10, How: "eof"}}}
	h := startGemini(t, fake, func(c *config.Config) { c.Gemini.Prompts = map[string]string{"zh": "接着写。"} })
	_, seen := askGemini(t, h, ":streamGenerateContent?alt=sse", userPrompt)
	if seen.text != chineseAnswer {
		t.Fatalf("answer %q", seen.text)
	}
	contents := fake.Bodies()[1]["contents"].([]any)
	user := contents[len(contents)-1].(map[string]any)
	if got := user["parts"].([]any)[0].(map[string]any)["text"]; got != "接着写。" {
		t.Errorf("continuation asked %q, want the configured prompt", got)
	}
}
