package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// A stream that stops sending, its connection open, is cut after
// attempt_idle_timeout and continued: the client gets the whole answer
// with one ending, and the stalled request upstream is given up. (A
// generateContent answer sends nothing before it is whole: a stall there is
// the upstream's response-header timeout, not this.)
func TestGeminiStalledAttemptIsResumed(t *testing.T) {
	t.Parallel()
	for _, method := range []string{":streamGenerateContent?alt=sse", ":streamGenerateContent"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{Cut: 40, How: "stall"}}}
			h := startGemini(t, fake, func(c *config.Config) { c.Gemini.AttemptIdleTimeout = 300 * time.Millisecond })
			status, seen := askGemini(t, h, method, userPrompt)
			if status != http.StatusOK || seen.text != longAnswer {
				t.Fatalf("status %d, text %q: want the whole answer", status, seen.text)
			}
			if len(seen.finishes) != 1 || seen.finishes[0] != "STOP" || len(seen.errors) != 0 {
				t.Errorf("finishes %v, errors %v: want one STOP", seen.finishes, seen.errors)
			}
			bodies := fake.Bodies()
			if len(bodies) != 2 {
				t.Fatalf("%d requests, want the stalled one and a continuation", len(bodies))
			}
			continuationOf(t, bodies[1], longAnswer[:40], "en")
			if logs := h.waitLog(1); !strings.Contains(logs, "idle_timeout") {
				t.Errorf("the resume's reason is not logged as idle_timeout:\n%s", logs)
			}
		})
	}
}

// attempt_idle_timeout holds for every attempt: a continuation that stalls
// is cut and continued as a first attempt that stalls is. The fake's stall
// lasts 20 s; the whole answer comes long before.
func TestGeminiStalledContinuationIsResumed(t *testing.T) {
	t.Parallel()
	for _, method := range []string{":streamGenerateContent?alt=sse", ":streamGenerateContent"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{
				{Cut: 40, How: "eof"}, {Cut: 30, How: "stall"},
			}}
			h := startGemini(t, fake, func(c *config.Config) { c.Gemini.AttemptIdleTimeout = 300 * time.Millisecond })
			start := time.Now()
			status, seen := askGemini(t, h, method, userPrompt)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the answer took %v: the stalled continuation was not cut after attempt_idle_timeout", took.Round(time.Second))
			}
			if status != http.StatusOK || seen.text != longAnswer {
				t.Fatalf("status %d, text %q: want the whole answer", status, seen.text)
			}
			if len(seen.finishes) != 1 || seen.finishes[0] != "STOP" || len(seen.errors) != 0 {
				t.Errorf("finishes %v, errors %v: want one STOP", seen.finishes, seen.errors)
			}
			if n := len(fake.Bodies()); n != 3 {
				t.Errorf("%d requests, want the first, the stalled continuation and another", n)
			}
		})
	}
}

// A stream that broke off, without an ending, after a function call went
// out cannot be continued (the call would run twice) and must not look
// finished: the client's connection is aborted, no end is made up.
func TestGeminiBreakAfterFunctionCallIsNotDisguised(t *testing.T) {
	t.Parallel()
	fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{{FunctionCall: true, Cut: 10, How: "eof"}}}
	h := startGemini(t, fake)
	resp, err := h.client.Post(h.URL+"/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", "application/json", strings.NewReader(userPrompt))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the stream ended cleanly; want an aborted connection. Got:\n%s", raw)
	}
	if !strings.Contains(string(raw), "functionCall") || strings.Contains(string(raw), "finishReason") {
		t.Errorf("want the function call relayed and no finishReason made up; got:\n%s", raw)
	}
	if n := len(fake.Bodies()); n != 1 {
		t.Errorf("%d requests: a stream with a function call out is not continued", n)
	}
}
