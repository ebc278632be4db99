package server

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// limitedGateway serves gpt-* through one provider for client keys with
// the given limits.
func limitedGateway(t *testing.T, fake *providertest.OpenAIServer, keys ...config.ClientKey) *harness {
	t.Helper()
	return startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		cfg.ClientKeys = keys
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
			config.Model{Name: "gpt-priced", Targets: []config.Target{{Provider: "alpha"}},
				Pricing: &config.Pricing{Currency: "usd", InputPer1M: 1_000_000, OutputPer1M: 1_000_000}})
	}))
}

func chat(h *harness, key, model string) (int, http.Header, string) {
	return h.do("POST", "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + key}},
		`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
}

func TestClientKeyLimits(t *testing.T) {
	t.Parallel()
	t.Run("rpm", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t, nil, nil)
		h := limitedGateway(t, fake, config.ClientKey{Name: "rpm2", Key: aliceKey, RPM: 2})
		for i := range 2 {
			if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 200 {
				t.Fatalf("request %d: %d %s", i, code, body)
			}
		}
		code, hdr, body := chat(h, aliceKey, "gpt-priced")
		if code != 429 || !strings.Contains(body, "requests per minute") {
			t.Fatalf("third request: %d %s", code, body)
		}
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", hdr.Get("Retry-After"))
		}
		if n := len(fake.Requests()); n != 2 {
			t.Errorf("upstream got %d requests, want 2", n)
		}
	})
	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t, nil, nil)
		// At a dollar a token, the first answer spends the day's budget.
		h := limitedGateway(t, fake, config.ClientKey{Name: "thrifty", Key: aliceKey,
			Budget: &config.Budget{Amount: 5, Period: "day"}})
		if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 200 {
			t.Fatalf("first request: %d %s", code, body)
		}
		code, hdr, body := chat(h, aliceKey, "gpt-priced")
		if code != 429 || !strings.Contains(body, "budget") {
			t.Fatalf("over budget: %d %s", code, body)
		}
		if s, _ := strconv.Atoi(hdr.Get("Retry-After")); s < 1 || s > 86400 {
			t.Errorf("Retry-After %q, want the time to the next UTC day", hdr.Get("Retry-After"))
		}
	})
	t.Run("budget and pricing in capitals", func(t *testing.T) {
		t.Parallel()
		// USD is usd: a budget and a pricing written in capitals are the
		// same currency, and the answer is charged to the budget.
		fake := providertest.NewOpenAI(t, nil, nil)
		h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
			cfg.ClientKeys = []config.ClientKey{{Name: "thrifty", Key: aliceKey,
				Budget: &config.Budget{Amount: 5, Period: "day", Currency: "USD"}}}
			mustAdd(t, cfg,
				config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
				config.Model{Name: "gpt-priced", Targets: []config.Target{{Provider: "alpha"}},
					Pricing: &config.Pricing{Currency: "USD", InputPer1M: 1_000_000, OutputPer1M: 1_000_000}})
		}))
		if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 200 {
			t.Fatalf("first request: %d %s", code, body)
		}
		if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 429 || !strings.Contains(body, "budget") {
			t.Fatalf("over a USD budget priced in USD: %d %s", code, body)
		}
		if _, _, metrics := h.do("GET", "/metrics", nil, ""); strings.Contains(metrics, `currency="USD"`) {
			t.Error("/metrics counts the cost under USD besides usd")
		}
	})
	t.Run("tpm", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t, nil, nil)
		h := limitedGateway(t, fake, config.ClientKey{Name: "tpm", Key: aliceKey, TPM: 10})
		if code, _, _ := chat(h, aliceKey, "gpt-priced"); code != 200 {
			t.Fatal("first request refused")
		}
		// The fake's answer used more than 10 tokens.
		if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 429 || !strings.Contains(body, "tokens per minute") {
			t.Fatalf("tpm: %d %s", code, body)
		}
	})
	t.Run("max_parallel", func(t *testing.T) {
		t.Parallel()
		// Chunks far enough apart that the stream still runs when the
		// second request comes, on a busy machine too.
		fake := providertest.NewOpenAI(t, &providertest.OpenAI{ChunkDelay: 300 * time.Millisecond}, nil)
		h := limitedGateway(t, fake, config.ClientKey{Name: "one-at-a-time", Key: aliceKey, MaxParallel: 1})
		req, _ := http.NewRequest("POST", h.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-priced","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+aliceKey)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		br.ReadString('\n') // the stream is running
		if code, _, body := chat(h, aliceKey, "gpt-priced"); code != 429 || !strings.Contains(body, "requests running") {
			t.Errorf("a second request while one runs: %d %s", code, body)
		}
		for {
			if _, err := br.ReadString('\n'); err != nil {
				break
			}
		}
		resp.Body.Close()
		waitFor(t, "the slot to be freed", func() bool { code, _, _ := chat(h, aliceKey, "gpt-priced"); return code == 200 })
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		fake := providertest.NewOpenAI(t, nil, nil)
		h := limitedGateway(t, fake, config.ClientKey{Name: "old", Key: aliceKey, Expires: time.Now().Add(-time.Hour)})
		client := openaiClient(h, aliceKey)
		_, err := client.Chat.Completions.New(t.Context(), chatParams("gpt-priced", "hi"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !strings.Contains(apiErr.Message, "expired") {
			t.Errorf("expired key: %v", err)
		}
	})
	// Refusals are counted per key and limit.
}
