package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// /v1/models (and /models, as seed 002 had it) lists what the caller's key
// may use, in OpenAI's list format with the metadata; the Anthropic and
// Gemini SDKs get their own formats.
func TestModelsList(t *testing.T) {
	t.Parallel()
	alpha := providertest.NewOpenAI(t, nil, nil)
	claude := providertest.NewAnthropic(t, nil, nil)
	h := startGateway(t, gatewayConfig(t, func(cfg *config.Config) {
		mustAdd(t, cfg,
			config.Provider{Name: "alpha", BaseURL: alpha.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1"}, Models: []string{"gpt-4o-mini", "o*"}},
			config.Provider{Name: "claude", Kind: "anthropic", BaseURL: claude.URL, Keys: []string{"env:ANTHROPIC_1"}},
			config.Model{Name: "super-brain", DisplayName: "Super Brain", Description: "OpenAI first",
				ContextWindow: 8192, MaxOutputTokens: 2048, Flags: []string{"general"}, Metadata: map[string]any{"tier": "pro"},
				Pricing: &config.Pricing{Currency: "cny", InputPer1M: 0.5, OutputPer1M: 3},
				Targets: []config.Target{{Provider: "alpha"}}},
			config.Model{Name: "smart", Targets: []config.Target{{Provider: "claude"}}},
			config.Model{Name: "glm-*", Targets: []config.Target{{Provider: "alpha"}}})
	}))
	type model struct {
		ID            string         `json:"id"`
		Object        string         `json:"object"`
		OwnedBy       string         `json:"owned_by"`
		DisplayName   string         `json:"display_name"`
		Description   string         `json:"description"`
		ContextLength int            `json:"context_length"`
		MaxOutput     int            `json:"max_output_tokens"`
		Pricing       map[string]any `json:"pricing"`
		Flags         []string       `json:"flags"`
		Metadata      map[string]any `json:"metadata"`
	}
	list := func(path, key string, hdr http.Header) []model {
		t.Helper()
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set("Authorization", "Bearer "+key)
		code, _, body := h.do("GET", path, hdr, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var out struct {
			Object string  `json:"object"`
			Data   []model `json:"data"`
		}
		json.Unmarshal([]byte(body), &out)
		return out.Data
	}
	all := list("/v1/models", aliceKey, nil)
	ids := []string{}
	for _, m := range all {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "super-brain,gpt-4o-mini" {
		t.Errorf("alice's OpenAI models: %v (patterns and Anthropic-only models are not listed)", ids)
	}
	sb := all[0]
	if sb.Object != "model" || sb.OwnedBy != "alpha" || sb.DisplayName != "Super Brain" || sb.ContextLength != 8192 ||
		sb.MaxOutput != 2048 || sb.Pricing["currency"] != "cny" || sb.Pricing["input_per_1m"] != 0.5 ||
		len(sb.Flags) != 1 || sb.Metadata["tier"] != "pro" || sb.Description != "OpenAI first" {
		t.Errorf("super-brain's entry %+v", sb)
	}
	if bob := list("/models", bobKey, nil); len(bob) != 1 || bob[0].ID != "super-brain" {
		t.Errorf("bob may use only super-brain, /models says %+v", bob)
	}
	// The OpenAI SDK reads the list.
	client := openaiClient(h, aliceKey)
	page, err := client.Models.List(t.Context())
	if err != nil || len(page.Data) != 2 {
		t.Fatalf("SDK list: %v %+v", err, page)
	}
	if m, err := client.Models.Get(t.Context(), "super-brain"); err != nil || m.ID != "super-brain" {
		t.Errorf("SDK get: %v", err)
	}
	// The Anthropic SDK lists at the same path with anthropic-version.
	code, _, body := h.do("GET", "/v1/models", http.Header{"X-Api-Key": {aliceKey}, "Anthropic-Version": {"2023-06-01"}}, "")
	if code != 200 || !strings.Contains(body, `"type": "model"`) || !strings.Contains(body, `"id": "smart"`) || strings.Contains(body, "super-brain") {
		t.Errorf("Anthropic list: %d %s", code, body)
	}
	// Without a key: 401.
	if code, _, _ := h.do("GET", "/v1/models", nil, ""); code != 401 {
		t.Errorf("anonymous list: %d", code)
	}
}

// Seed 002's users set ROUTES_CONFIG (with apiKeys naming variables) and
// PROXY_AUTH_TOKEN; their clients keep working, and a route falls back
// from OpenAI to GLM.
func TestSeed002RoutesConfig(t *testing.T) {
	t.Parallel()
	openaiFake := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "openai",
		Fault: func(providertest.FaultRequest) providertest.Fault { return providertest.Status(500) }}, nil)
	zhipu := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "zhipu", BasePath: "/api/paas/v4"}, nil)
	routes := `{
  "super-brain": {
    "displayName": "Super Brain",
    "description": "OpenAI first, then GLM",
    "contextWindow": 8192,
    "maxOutputTokens": 2048,
    "flags": ["general"],
    "providers": [
      {"provider": "openai", "model": "gpt-4.1", "apiKeys": ["OPENAI_KEY_1"], "endpoint": "` + openaiFake.URL + `/v1"},
      {"provider": "zhipu", "model": "glm-4.7", "apiKeys": ["ZHIPU_KEY_1"], "endpoint": "` + zhipu.URL + `/api/paas/v4/"}
    ]
  }
}`
	env := map[string]string{
		"ROUTES_CONFIG":    routes,
		"PROXY_AUTH_TOKEN": "seed-two-proxy-token-123456",
		"OPENAI_KEY_1":     "sk-openai-seed-000000001",
		"ZHIPU_KEY_1":      "zhipu-seed-key-000000002",
	}
	cfg := config.Default()
	cfg.UpstreamCA = providertest.CA(t).CAFile
	if err := cfg.ApplySeedEnv(getenvFrom(env)); err != nil {
		t.Fatal(err)
	}
	h := start(t, cfg, func(o *Options) { o.Getenv = getenvFrom(env) })
	client := openaiClient(h, env["PROXY_AUTH_TOKEN"])
	resp, err := client.Chat.Completions.New(t.Context(), chatParams("super-brain", "请介绍一下 GPT-4o。"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "Hello from zhipu" {
		t.Errorf("answer %q, want GLM's after OpenAI failed", resp.Choices[0].Message.Content)
	}
	zr := zhipu.Requests()
	if len(zr) != 1 || zr[0].URI != "/api/paas/v4/chat/completions" || bearer(zr[0]) != env["ZHIPU_KEY_1"] ||
		!strings.Contains(string(zr[0].Body), `"model":"glm-4.7"`) {
		t.Errorf("GLM got %+v", zr)
	}
	page, err := client.Models.List(t.Context())
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "super-brain" {
		t.Errorf("models: %v %+v", err, page)
	}
	var meta map[string]any
	json.Unmarshal([]byte(page.Data[0].RawJSON()), &meta)
	if meta["display_name"] != "Super Brain" || meta["context_length"] != 8192.0 || meta["description"] != "OpenAI first, then GLM" {
		t.Errorf("model metadata: %v", meta)
	}
	if code, _, _ := chat(h, "not-the-proxy-token-0000", "super-brain"); code != 401 {
		t.Errorf("a wrong token: %d", code)
	}
}

// Seed 003's users set DEFAULT_OPENAI_PROVIDER (a base URL without /v1),
// DEFAULT_OPENAI_TOKEN, ADDITIONAL_PROVIDERS with weights and
// LOAD_BALANCING_STRATEGY; requests are spread accordingly.
func TestSeed003LoadBalancing(t *testing.T) {
	t.Parallel()
	first := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "first", BasePath: "/inference/v1"}, nil)
	second := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "second"}, nil)
	env := map[string]string{
		"DEFAULT_OPENAI_PROVIDER": first.URL + "/inference",
		"DEFAULT_OPENAI_TOKEN":    "fw-default-token-00000001",
		"ADDITIONAL_PROVIDERS":    `[{"id":"second","baseUrl":"` + second.URL + `","token":"tok-second-000000000002","weight":3}]`,
		"LOAD_BALANCING_STRATEGY": "ROUND_ROBIN",
		"PROXY_AUTH_TOKEN":        "seed-three-client-key-0001",
	}
	cfg := config.Default()
	cfg.UpstreamCA = providertest.CA(t).CAFile
	if err := cfg.ApplySeedEnv(getenvFrom(env)); err != nil {
		t.Fatal(err)
	}
	h := start(t, cfg, func(o *Options) { o.Getenv = getenvFrom(env) })
	client := openaiClient(h, env["PROXY_AUTH_TOKEN"])
	var order []string
	for range 8 {
		resp, err := client.Chat.Completions.New(t.Context(), chatParams("accounts/fireworks/models/llama-v3-70b-instruct", "hi"))
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, strings.TrimPrefix(resp.Choices[0].Message.Content, "Hello from "))
	}
	// Smooth weighted round robin with weights 1 and 3 (ties go to the
	// earlier target, as in nginx): b a b b, then again.
	if got := strings.Join(order, ","); got != "second,first,second,second,second,first,second,second" {
		t.Errorf("order %s", got)
	}
	fr := first.Requests()
	if fr[0].URI != "/inference/v1/chat/completions" || bearer(fr[0]) != env["DEFAULT_OPENAI_TOKEN"] {
		t.Errorf("the default provider got %s with the right token: %v", fr[0].URI, bearer(fr[0]) == env["DEFAULT_OPENAI_TOKEN"])
	}
	if bearer(second.Requests()[0]) != "tok-second-000000000002" {
		t.Error("the additional provider's token was not sent")
	}
}

// A reload swaps the routing whole; a stream that started before it runs
// to its end on the old configuration; a bad configuration changes
// nothing.
func TestReloadSwapsTheSnapshot(t *testing.T) {
	t.Parallel()
	slow := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "old", ChunkDelay: 50 * time.Millisecond,
		Reply: []providertest.Delta{providertest.Text("a"), providertest.Text("b"), providertest.Text("c"), providertest.Text("d")}}, nil)
	fresh := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "new"}, nil)
	build := func(name, url string) *config.Config {
		return gatewayConfig(t, func(cfg *config.Config) {
			mustAdd(t, cfg,
				config.Provider{Name: name, BaseURL: url + "/v1", Keys: []string{"env:ALPHA_KEY_1"}},
				config.Model{Name: "m-" + name, Targets: []config.Target{{Provider: name}}})
		})
	}
	h := startGateway(t, build("old", slow.URL))
	client := openaiClient(h, aliceKey)
	stream := client.Chat.Completions.NewStreaming(t.Context(), chatParams("m-old", "hi"))
	if !stream.Next() {
		t.Fatalf("stream did not start: %v", stream.Err())
	}
	acc := openai.ChatCompletionAccumulator{}
	acc.AddChunk(stream.Current())

	if err := h.srv.Reload(build("new", fresh.URL)); err != nil {
		t.Fatal(err)
	}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != "abcd" {
		t.Errorf("the running stream: %v %q", err, acc.Choices[0].Message.Content)
	}
	if _, err := client.Chat.Completions.New(t.Context(), chatParams("m-new", "hi")); err != nil {
		t.Errorf("the new model after the reload: %v", err)
	}
	if code, _, _ := chat(h, aliceKey, "m-old"); code != 404 {
		t.Errorf("the old model after the reload: %d, want 404", code)
	}
	bad := build("broken", fresh.URL)
	bad.Models["m-broken"] = config.Model{Targets: []config.Target{{Provider: "nobody"}}}
	if err := h.srv.Reload(bad); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("a bad configuration: %v", err)
	}
	if _, err := client.Chat.Completions.New(t.Context(), chatParams("m-new", "hi")); err != nil {
		t.Errorf("after a failed reload the running configuration must stay: %v", err)
	}
}

// A reload names every changed setting that is read only at start (and
// applies none of them); settings it does apply are not named.
func TestReloadNamesRestartSettings(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, nil)
	h := start(t, cfg)
	next := cfg.Clone()
	next.RedisURL = "redis://redis.internal:6379"
	next.RedisSlotTTL = 5 * time.Second
	next.DatabaseURL = "postgres://db.internal/llmproxy"
	next.Timeouts.Dial = cfg.Timeouts.Dial + time.Second
	next.KeepSetCookie = !cfg.KeepSetCookie
	if err := h.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, name := range []string{"redis_url", "redis_slot_ttl", "database_url", "timeouts", "keep_set_cookie"} {
		if !strings.Contains(logs, `"setting":"`+name+`"`) {
			t.Errorf("the reload did not name %s: %s", name, logs)
		}
	}
	for _, name := range []string{"redis_fail", "data_dir", "listen"} {
		if strings.Contains(logs, `"setting":"`+name+`"`) {
			t.Errorf("the reload named %s, which did not change", name)
		}
	}
}

// The token needs a restart: after a reload that changed it, the running
// token still opens /<token>/…, and it is still the one kept from the
// upstream — the reloaded policies took the new one while the old one
// stayed live.
func TestReloadWithANewTokenKeepsTheRunningOneFromUpstreams(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}), nil)
	h, _ := startGeneric(t)
	path := "/" + testToken + "/https/provider.test:" + portOf(fake.URL) + "/echo"
	send := func() http.Header {
		t.Helper()
		n := len(fake.Requests())
		if status, _, body := h.do("GET", path, http.Header{"X-Token-Echo": {testToken}}, ""); status != 200 {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		return fake.Requests()[n].Header
	}
	if _, ok := send()["X-Token-Echo"]; ok {
		t.Fatal("before the reload: the token reached the upstream")
	}
	next := h.srv.cfg.Clone()
	next.AuthToken = "another-token-9d8c7b6a5f4e3d2c"
	if err := h.srv.Reload(next); err != nil {
		t.Fatal(err)
	}
	if _, ok := send()["X-Token-Echo"]; ok {
		t.Error("after a reload that changed auth_token, the running token reached the upstream")
	}
	if !strings.Contains(h.logs.String(), `"setting":"auth_token"`) {
		t.Error("the reload did not say the token takes effect at restart")
	}
}
