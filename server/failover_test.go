package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
)

// twoProviders runs alpha (two keys) and beta (one key) behind the model
// super-brain with the fallback strategy; faults script alpha.
func twoProviders(t *testing.T, alphaFault func(providertest.FaultRequest) providertest.Fault, edit func(*config.Config)) (*harness, *providertest.OpenAIServer, *providertest.OpenAIServer) {
	t.Helper()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha", Fault: alphaFault,
		Reply: []providertest.Delta{providertest.Text("from "), providertest.Text("alpha")}}, nil)
	beta := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "beta",
		Reply: []providertest.Delta{providertest.Text("from "), providertest.Text("beta")}}, nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1", "env:ALPHA_KEY_2"}},
			config.Provider{Name: "beta", BaseURL: beta.URL + "/v1", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Strategy: "fallback",
				Targets: []config.Target{{Provider: "alpha", Model: "a-model"}, {Provider: "beta", Model: "b-model"}}})
		if edit != nil {
			edit(cfg)
		}
	})
	return startGateway(t, cfg), alpha, beta
}

// A failure before the client saw anything moves on to the next provider:
// 5xx, a reset, a hang past the response-header timeout, a 200 whose body
// breaks before its first byte.
func TestGatewayFailsOverBeforeTheFirstByte(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  providertest.Fault
		stream bool
	}{
		{"500", providertest.Status(500), false},
		{"503", providertest.Status(503), true},
		{"reset before headers", providertest.ResetBeforeHeaders(), false},
		{"hang past the header timeout", providertest.Hang(), false},
		{"200 then cut before the first byte", providertest.CutBeforeFirstByte(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, alpha, beta := twoProviders(t, func(providertest.FaultRequest) providertest.Fault { return tc.fault },
				func(cfg *config.Config) { cfg.Timeouts.ResponseHeader = time.Second }) // only the hang waits for it
			client := openaiClient(h, aliceKey)
			var answer string
			if tc.stream {
				stream := client.Chat.Completions.NewStreaming(t.Context(), chatParams("super-brain", "hi"))
				var acc openai.ChatCompletionAccumulator
				for stream.Next() {
					acc.AddChunk(stream.Current())
				}
				if err := stream.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				answer = acc.Choices[0].Message.Content
			} else {
				resp, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi"))
				if err != nil {
					t.Fatal(err)
				}
				answer = resp.Choices[0].Message.Content
			}
			if answer != "from beta" {
				t.Errorf("answer %q, want beta's", answer)
			}
			if len(alpha.Requests()) != 1 || len(beta.Requests()) != 1 {
				t.Errorf("requests: alpha %d, beta %d; want 1 each", len(alpha.Requests()), len(beta.Requests()))
			}
			if logs := h.waitLog(1); !strings.Contains(logs, `"attempts":2`) || !strings.Contains(logs, `"provider":"beta"`) {
				t.Errorf("the log line does not tell the failover: %s", logs)
			}
		})
	}
}

// After the first byte reached the client nothing is retried: a stream
// cut mid-way aborts the client's connection, and no second provider is
// asked (it would answer from the start, and bill twice).
func TestGatewayNeverRetriesAfterTheFirstByte(t *testing.T) {
	t.Parallel()
	h, alpha, beta := twoProviders(t, func(providertest.FaultRequest) providertest.Fault {
		return providertest.CutAfterEvents(2)
	}, nil)
	client := openaiClient(h, aliceKey)
	stream := client.Chat.Completions.NewStreaming(t.Context(), chatParams("super-brain", "hi"))
	events := 0
	for stream.Next() {
		events++
	}
	if stream.Err() == nil {
		t.Fatal("a stream cut mid-way ended as if it were complete")
	}
	if events == 0 {
		t.Error("no event reached the client before the cut")
	}
	if len(alpha.Requests()) != 1 || len(beta.Requests()) != 0 {
		t.Errorf("requests: alpha %d, beta %d; want 1 and 0", len(alpha.Requests()), len(beta.Requests()))
	}
	if logs := h.waitLog(1); !strings.Contains(logs, `"aborted":true`) {
		t.Errorf("the log does not say the stream was aborted: %s", logs)
	}
}

// The client's own errors come back as they are, with no other attempt.
func TestGatewayClientErrorsComeBackAsTheyAre(t *testing.T) {
	t.Parallel()
	h, alpha, beta := twoProviders(t, func(providertest.FaultRequest) providertest.Fault {
		return providertest.ContextLengthExceeded()
	}, nil)
	client := openaiClient(h, aliceKey)
	_, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Fatalf("err = %v, want the provider's 400 context_length_exceeded", err)
	}
	if len(alpha.Requests()) != 1 || len(beta.Requests()) != 0 {
		t.Errorf("requests: alpha %d, beta %d; want 1 and 0", len(alpha.Requests()), len(beta.Requests()))
	}
}

// A 429 cools that key for Retry-After and the request goes on with the
// next key; the next request does not wait for the cooling key.
func TestGatewayRotatesKeysOnRateLimits(t *testing.T) {
	t.Parallel()
	k1 := gwEnv["ALPHA_KEY_1"]
	h, alpha, beta := twoProviders(t, func(r providertest.FaultRequest) providertest.Fault {
		if r.Key == k1 {
			return providertest.RateLimited("30")
		}
		return providertest.Fault{}
	}, nil)
	client := openaiClient(h, aliceKey)
	for i := range 3 {
		resp, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := resp.Choices[0].Message.Content; got != "from alpha" {
			t.Errorf("request %d answered %q, want alpha's second key", i, got)
		}
	}
	if n := alpha.KeyRequests(k1); n != 1 {
		t.Errorf("the rate-limited key was tried %d times, want once (then it cools down)", n)
	}
	if n := alpha.KeyRequests(gwEnv["ALPHA_KEY_2"]); n != 3 {
		t.Errorf("the second key served %d requests, want 3", n)
	}
	if len(beta.Requests()) != 0 {
		t.Error("a key's rate limit moved the request to another provider")
	}
	k := keyState(t, h, "alpha", "ALPHA_KEY_1")
	if k.State != "cooling" || k.Until == nil || time.Until(*k.Until) < 20*time.Second || k.Reason != "rate limited" {
		t.Errorf("ALPHA_KEY_1 health %+v, want cooling for about 30s", k)
	}
	if k.Masked != "…0001" {
		t.Errorf("masked key %q, want its last four characters", k.Masked)
	}
}

// 401 from the provider disables the key (until a reload) and says so in
// the log and in /stats; the request goes on with the next key.
func TestGatewayDisablesARefusedKey(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha", Keys: []string{gwEnv["ALPHA_KEY_2"]}}, nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1",
			Keys: []string{"env:ALPHA_KEY_1", "env:ALPHA_KEY_2"}, Models: []string{"gpt-*"}})
	})
	h := startGateway(t, cfg)
	client := openaiClient(h, aliceKey)
	for i := range 3 {
		if _, err := client.Chat.Completions.New(t.Context(), chatParams("gpt-4o-mini", "hi")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := alpha.KeyRequests(gwEnv["ALPHA_KEY_1"]); n != 1 {
		t.Errorf("the refused key was tried %d times, want once", n)
	}
	k := keyState(t, h, "alpha", "ALPHA_KEY_1")
	if k.State != "disabled" || !strings.Contains(k.Reason, "401") {
		t.Errorf("ALPHA_KEY_1 health %+v, want disabled for a 401", k)
	}
	logs := h.waitLog(3)
	if !strings.Contains(logs, "ALPHA_KEY_1: 401: key disabled") {
		t.Errorf("the log does not name the disabled key: %s", logs)
	}
	noSecretIn(t, "the log", logs)
	// A reload gives the key another chance (the operator may have fixed it).
	if err := h.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if k := keyState(t, h, "alpha", "ALPHA_KEY_1"); k.State != "ok" {
		t.Errorf("after a reload the key is %s, want ok", k.State)
	}
}

// When every key is rate limited the client gets llmproxy's own 429 with
// Retry-After, not the provider's message (which may name the operator's
// organisation or key).
func TestGatewayAllKeysRateLimited(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha",
		Fault: func(providertest.FaultRequest) providertest.Fault {
			return providertest.RateLimited("12").WithMessage("Rate limit reached for org-secretorg on sk-...0001")
		}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg, config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1",
			Keys: []string{"env:ALPHA_KEY_1", "env:ALPHA_KEY_2"}, Models: []string{"*"}})
	}))
	code, hdr, body := h.do("POST", "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + aliceKey}},
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	if code != 429 || hdr.Get("Retry-After") == "" || hdr.Get("X-Proxy-Error") != "true" {
		t.Fatalf("status %d Retry-After %q X-Proxy-Error %q", code, hdr.Get("Retry-After"), hdr.Get("X-Proxy-Error"))
	}
	if strings.Contains(body, "org-secretorg") || !strings.Contains(body, "rate_limit_exceeded") {
		t.Errorf("body %s", body)
	}
	if n := len(alpha.Requests()); n != 2 {
		t.Errorf("upstream requests %d, want one per key", n)
	}
}

// Repeated 5xx open the provider's circuit breaker: the provider is then
// tried only after the others.
func TestGatewayCircuitBreaker(t *testing.T) {
	t.Parallel()
	h, alpha, beta := twoProviders(t, func(providertest.FaultRequest) providertest.Fault { return providertest.Status(503) }, nil)
	client := openaiClient(h, aliceKey)
	for i := range 8 {
		if _, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	// Five failures open the breaker; after that alpha is not asked while
	// beta answers.
	if n := len(alpha.Requests()); n != 5 {
		t.Errorf("alpha was asked %d times, want 5 (then its breaker opens)", n)
	}
	if n := len(beta.Requests()); n != 8 {
		t.Errorf("beta answered %d, want 8", n)
	}
	for _, p := range statsOf(t, h).Providers {
		if p.Name == "alpha" && p.Breaker != "open" {
			t.Errorf("alpha's breaker is %s, want open", p.Breaker)
		}
	}
}

// A provider that ends a stream cleanly but without its last event cut
// it short: the client's connection is aborted (an honest failure), not
// ended as if the answer were whole — every SDK would take a clean end
// for a complete answer.
func TestGatewayAbortsAStreamThatEndsWithoutItsEnd(t *testing.T) {
	t.Parallel()
	h, alpha, beta := twoProviders(t, func(providertest.FaultRequest) providertest.Fault {
		return providertest.EndEarly(2)
	}, nil)
	client := openaiClient(h, aliceKey)
	stream := client.Chat.Completions.NewStreaming(t.Context(), chatParams("super-brain", "hi"))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Error("a stream that stopped without finish_reason or [DONE] reached the client as a clean end")
	}
	if len(alpha.Requests()) != 1 || len(beta.Requests()) != 0 {
		t.Errorf("requests: alpha %d, beta %d; want 1 and 0 (bytes had reached the client)", len(alpha.Requests()), len(beta.Requests()))
	}
	// A stream that ends before its first byte has shown the client
	// nothing: the next provider answers.
	h2, alpha2, beta2 := twoProviders(t, func(providertest.FaultRequest) providertest.Fault {
		return providertest.EndEarly(0)
	}, nil)
	client2 := openaiClient(h2, aliceKey)
	stream = client2.Chat.Completions.NewStreaming(t.Context(), chatParams("super-brain", "hi"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if stream.Err() != nil || len(acc.Choices) == 0 || acc.Choices[0].Message.Content != "from beta" {
		t.Errorf("empty stream: %v %+v", stream.Err(), acc.Choices)
	}
	if len(alpha2.Requests()) != 1 || len(beta2.Requests()) != 1 {
		t.Errorf("requests: alpha %d, beta %d", len(alpha2.Requests()), len(beta2.Requests()))
	}
}

// A 200 whose body ends before its first byte answers nothing (no model
// call's answer is empty): as a stream's, the next provider answers.
func TestGatewayFailsOverAnEmpty200(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}), nil)
	beta := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "beta", Reply: []providertest.Delta{providertest.Text("from beta")}}, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
			config.Provider{Name: "beta", BaseURL: beta.URL + "/v1", Keys: []string{"env:BETA_KEY_1"}},
			config.Model{Name: "super-brain", Strategy: "fallback", Targets: []config.Target{{Provider: "alpha"}, {Provider: "beta"}}})
	}))
	client := openaiClient(h, aliceKey)
	resp, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "hi"))
	if err != nil || resp.Choices[0].Message.Content != "from beta" {
		t.Fatalf("answer %+v, error %v; want beta's after alpha's empty 200", resp, err)
	}
	if logs := h.waitLog(1); !strings.Contains(logs, `"attempts":2`) {
		t.Errorf("the log line does not tell the failover: %s", logs)
	}
}

// A HEAD through a preset with several upstreams is answered by the first:
// a 200 without a body is all a HEAD's answer is, not a body that broke
// before its first byte.
func TestPresetHeadIsNotFailedOver(t *testing.T) {
	t.Parallel()
	mk := func() *providertest.Server {
		return providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "17")
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				w.Write([]byte(`{"object":"list"}`))
			}
		}), nil)
	}
	a, b := mk(), mk()
	cfg := testConfig(t, nil)
	cfg.Presets = map[string]preset.Override{"pool": {Upstreams: []string{a.URL, b.URL}, ClientPath: "/v1"}}
	h := start(t, cfg)
	if code, _, out := h.do("HEAD", "/pool/v1/models", http.Header{"Authorization": {"Bearer sk-own-key-of-the-client"}}, ""); code != 200 {
		t.Fatalf("HEAD: %d %s", code, out)
	}
	if n := len(a.Requests()) + len(b.Requests()); n != 1 {
		t.Errorf("one HEAD reached the upstreams %d times (a %d, b %d)", n, len(a.Requests()), len(b.Requests()))
	}
	if logs := h.waitLog(1); strings.Contains(logs, "broke before the first byte") {
		t.Errorf("a HEAD's 200 was logged as a failover: %s", logs)
	}
}
