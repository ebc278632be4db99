package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

// Client keys the gateway tests hand out, and provider keys they hold.
const (
	aliceKey = "ck-alice-7c1e0a9d5b3f4e2a8d6c"
	bobKey   = "ck-bob-91f2e8d7c6b5a4f3e2d1"
)

// gwEnv holds the provider keys, as the environment would.
var gwEnv = map[string]string{
	"ALPHA_KEY_1": "sk-alpha-one-000000000001",
	"ALPHA_KEY_2": "sk-alpha-two-000000000002",
	"BETA_KEY_1":  "sk-beta-one-0000000000003",
	"ANTHROPIC_1": "sk-ant-test-000000000004",
	"GEMINI_1":    "AIzaTestGeminiKey00000005",
}

func getenvFrom(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// gatewayConfig returns a configuration with the fake providers' CA
// trusted and the client keys alice (everything) and bob (only
// super-brain); edit adds providers and models.
func gatewayConfig(t testing.TB, edit func(cfg *config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.UpstreamCA = providertest.CA(t).CAFile
	cfg.ClientKeys = []config.ClientKey{
		{Name: "alice", Key: aliceKey},
		{Name: "bob", Key: bobKey, Models: []string{"super-brain"}},
	}
	edit(cfg)
	return cfg
}

func mustAdd(t testing.TB, cfg *config.Config, items ...any) {
	t.Helper()
	for _, it := range items {
		var err error
		switch v := it.(type) {
		case config.Provider:
			err = cfg.AddProvider(v)
		case config.Model:
			err = cfg.AddModel(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// startGateway runs llmproxy with cfg and the test environment.
func startGateway(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	return start(t, cfg, func(o *Options) { o.Getenv = getenvFrom(gwEnv) })
}

func openaiClient(h *harness, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(h.URL+"/v1/"), option.WithAPIKey(key),
		option.WithMaxRetries(0), option.WithHTTPClient(h.client))
}

func anthropicClient(h *harness, key string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(h.URL), aoption.WithAPIKey(key),
		aoption.WithMaxRetries(0), aoption.WithHTTPClient(h.client))
}

func genaiClient(t *testing.T, h *harness, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		APIKey: key, Backend: genai.BackendGeminiAPI, HTTPClient: h.client,
		HTTPOptions: genai.HTTPOptions{BaseURL: h.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}}
}

// statsOf fetches /stats.
func statsOf(t *testing.T, h *harness) statsDoc {
	t.Helper()
	var hdr http.Header
	if tok := h.srv.cfg.AuthToken; tok != "" {
		hdr = http.Header{"Authorization": {"Bearer " + tok}}
	}
	code, _, body := h.do("GET", "/stats", hdr, "")
	if code != 200 {
		t.Fatalf("/stats = %d %s", code, body)
	}
	var doc statsDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// keyState returns a provider key's state from /stats.
func keyState(t *testing.T, h *harness, provider, key string) gateway.KeyReport {
	t.Helper()
	for _, p := range statsOf(t, h).Providers {
		if p.Name != provider {
			continue
		}
		for _, k := range p.Keys {
			if k.Name == key {
				return k
			}
		}
	}
	t.Fatalf("no key %s/%s in /stats", provider, key)
	return gateway.KeyReport{}
}

// bearer returns the credential a fake provider received.
func bearer(r providertest.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// noSecretIn fails if s holds a client key or a provider key.
func noSecretIn(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range append([]string{aliceKey, bobKey}, values(gwEnv)...) {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds a secret (…%s)", where, secret[len(secret)-4:])
		}
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// usageRow waits until /stats has a usage row matching want (usage is
// settled when the handler returns, which may be just after the client
// read the last byte) and returns it.
func usageRow(t *testing.T, h *harness, want func(stats.UsageRow) bool) stats.UsageRow {
	t.Helper()
	var found *stats.UsageRow
	deadline := time.Now().Add(5 * time.Second)
	for found == nil {
		for _, u := range statsOf(t, h).Usage {
			if want(u) {
				found = &u
			}
		}
		if found == nil && time.Now().After(deadline) {
			t.Fatalf("no matching usage row in %+v", statsOf(t, h).Usage)
		}
		if found == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return *found
}
