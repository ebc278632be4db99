package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// A generateContent answer whose continuation is refused: with part of the
// answer in hand the client gets it, with the ending that cut it; with
// nothing, it gets the refusal, under the refusal's own HTTP status whatever
// the provider's error object says its code is.
func TestGeminiUnaryContinuationRefused(t *testing.T) {
	t.Parallel()
	t.Run("partial answer kept", func(t *testing.T) {
		t.Parallel()
		fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{
			{Cut: 33, How: "OTHER"}, {Status: http.StatusForbidden},
		}}
		h := startGemini(t, fake)
		status, seen := askGemini(t, h, ":generateContent", userPrompt)
		if status != http.StatusOK || seen.text != longAnswer[:33] {
			t.Fatalf("status %d, text %q: want 200 with the 33 characters that came", status, seen.text)
		}
		if len(seen.finishes) != 1 || seen.finishes[0] != "OTHER" {
			t.Errorf("finish reasons %v: the partial answer must keep the ending that cut it", seen.finishes)
		}
		if n := len(fake.Bodies()); n != 2 {
			t.Errorf("%d requests: a 403 is not tried again", n)
		}
	})
	t.Run("only thinking came", func(t *testing.T) {
		t.Parallel()
		// Thoughts and STOP: no answer text, so the continuation's refusal
		// is the answer, not a 200 with the thoughts and a made-up STOP.
		fake := &providertest.Gemini{Answer: longAnswer, Attempts: []providertest.GeminiAttempt{
			{Thoughts: []string{"Let me think about a story."}, Cut: -1, How: "STOP"}, {Status: http.StatusTooManyRequests},
		}}
		h := startGemini(t, fake)
		status, seen := askGemini(t, h, ":generateContent", userPrompt)
		if status != http.StatusTooManyRequests || len(seen.errors) != 1 || seen.errors[0]["status"] != "RESOURCE_EXHAUSTED" {
			t.Fatalf("status %d, body %s: want 429 with the refusal's error object", status, seen.raw)
		}
		if n := len(fake.Bodies()); n != 2 {
			t.Errorf("%d requests, want the first and one continuation", n)
		}
	})
	for _, code := range []string{"429", "200", "0", `"RESOURCE_EXHAUSTED"`, "7000"} {
		t.Run("nothing came, error code "+code, func(t *testing.T) {
			t.Parallel()
			// The first answer breaks off in its first bytes, before any
			// text; the continuation is refused with 429 and an error
			// object whose code may be anything.
			var n atomic.Int32
			h := startGemini(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if n.Add(1) == 1 {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"candidates":[{"content":{"role":"model","parts":[{"te`)
					w.(http.Flusher).Flush()
					if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"error":{"code":`+code+`,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`)
			}))

			resp, err := h.client.Post(h.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent", "application/json", strings.NewReader(userPrompt))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Error struct {
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("status %d, want the refusal's 429", resp.StatusCode)
			}
			if got.Error.Message != "slow down" || got.Error.Status != "RESOURCE_EXHAUSTED" {
				t.Errorf("error %+v: want the provider's own error object", got.Error)
			}
			if n.Load() != 2 {
				t.Errorf("%d requests, want the first and one continuation", n.Load())
			}
		})
	}
}

// A blocked prompt's answer — promptFeedback's blockReason and usage, no
// candidate, hence no finishReason — is whole: through the gemini preset
// and through the gateway, as generateContent and as a stream (SSE and
// the JSON array), the client gets it with 200 and a clean end, and the
// provider is asked once.
func TestGeminiBlockedPromptIsAnAnswer(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"preset", "gateway"} {
		for _, method := range []string{":generateContent", ":streamGenerateContent?alt=sse", ":streamGenerateContent"} {
			t.Run(via+method, func(t *testing.T) {
				t.Parallel()
				fake := &providertest.Gemini{Answer: "never", Attempts: []providertest.GeminiAttempt{{Block: "PROHIBITED_CONTENT"}}}
				var h *harness
				path := "/gemini/v1beta/models/gemini-2.5-pro" + method
				hdr := http.Header{}
				if via == "preset" {
					h = startGemini(t, fake)
				} else {
					up := providertest.NewServer(t, fake, nil)
					h = startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
						mustAdd(t, cfg, config.Provider{Name: "google", Kind: "gemini", BaseURL: up.URL, Keys: []string{"env:GEMINI_1"}, Models: []string{"gemini-*"}})
					}))
					path = "/v1beta/models/gemini-x" + method
					hdr.Set("X-Goog-Api-Key", aliceKey)
				}
				req, _ := http.NewRequest(http.MethodPost, h.URL+path, strings.NewReader(userPrompt))
				req.Header = hdr
				req.Header.Set("Content-Type", "application/json")
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || err != nil || !strings.Contains(string(body), `"blockReason":"PROHIBITED_CONTENT"`) {
					t.Errorf("status %d, read error %v, body %.300q; want 200, the whole block answer, a clean end", resp.StatusCode, err, body)
				}
				if n := len(fake.Bodies()); n != 1 {
					t.Errorf("%d requests: a blocked prompt is not tried again", n)
				}
			})
		}
	}
}
