package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// modelsSnapshot: routes and provider models in each API format, and two
// callers.
func modelsSnapshot(t *testing.T) (*Snapshot, map[string]*access.Caller) {
	t.Helper()
	cached := 0.1
	o := openaiProvider("O", "o1")
	o.Models = []string{"llama-3", "qwen-*", "gpt-x", "super-brain"}
	g := config.Provider{Name: "G", Kind: "gemini", BaseURL: "https://generativelanguage.googleapis.com", Keys: []string{secret("g1")},
		Models: []string{"gemini-2.5-flash"}}
	cfg := newConfig(t, o,
		config.Provider{Name: "C", Kind: "anthropic", BaseURL: "https://api.anthropic.com", Keys: []string{secret("c1")}}, g,
		config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "O", Model: "gpt-4.1"}}, DisplayName: "Super Brain",
			Description: "OpenAI first", ContextWindow: 8192, MaxInputTokens: 6000, MaxOutputTokens: 2048,
			Pricing: &config.Pricing{Currency: "cny", InputPer1M: 0.5, CachedPer1M: &cached, OutputPer1M: 3},
			Flags:   []string{"general"}, Metadata: map[string]any{"tier": "flash"}},
		route("claude-sonnet", "C"),
		config.Model{Name: "gem", Targets: []config.Target{{Provider: "G"}}, ContextWindow: 1000000, MaxOutputTokens: 65536},
		route("gpt-*", "O"), // a pattern: not listed, and it claims gpt-x
		route("mixed", "C", "O"),
		config.ClientKey{Name: "bob", Key: "ck-bob-0123456789abcdef", Models: []string{"super-brain", "claude-*", "llama-3"}},
		config.ClientKey{Name: "nobody", Key: "ck-nobody-0123456789abcd", Models: []string{}})
	snap := newWorld(t).compile(cfg)
	callers := map[string]*access.Caller{"operator": access.OperatorCaller()}
	for _, name := range []string{"bob", "nobody"} {
		key := map[string]string{"bob": "ck-bob-0123456789abcdef", "nobody": "ck-nobody-0123456789abcd"}[name]
		c, err := snap.Keys().Authenticate(authed(key), t0)
		if err != nil {
			t.Fatal(err)
		}
		callers[name] = c
	}
	return snap, callers
}

func modelIDs(ms []ModelInfo) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// Models lists, per API and caller, the plain-named routes in
// configuration order, then the plain names providers serve that no route
// claims; patterns are never listed.
func TestModels(t *testing.T) {
	t.Parallel()
	snap, callers := modelsSnapshot(t)
	for _, tc := range []struct {
		caller string
		api    API
		want   []string
	}{
		{"operator", OpenAI, []string{"super-brain", "mixed", "llama-3"}},
		{"operator", Anthropic, []string{"claude-sonnet", "mixed"}},
		{"operator", Gemini, []string{"gem", "gemini-2.5-flash"}},
		{"bob", OpenAI, []string{"super-brain", "llama-3"}},
		{"bob", Anthropic, []string{"claude-sonnet"}},
		{"bob", Gemini, []string{}},
		{"nobody", OpenAI, []string{}},
	} {
		got := modelIDs(snap.Models(callers[tc.caller], tc.api))
		if !equalStrings(got, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.caller, tc.api, got, tc.want)
		}
	}
}

func TestListModelsFormats(t *testing.T) {
	t.Parallel()
	snap, callers := modelsSnapshot(t)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	list := func(call Call, caller string) map[string]any {
		t.Helper()
		v, err := snap.ListModels(call, callers[caller], created)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	openai := list(Call{API: OpenAI, List: true}, "bob")
	data := openai["data"].([]any)
	if openai["object"] != "list" || len(data) != 2 {
		t.Fatalf("OpenAI list %v", openai)
	}
	sb := data[0].(map[string]any)
	want := map[string]any{
		"id": "super-brain", "object": "model", "created": float64(created.Unix()), "owned_by": "O",
		"display_name": "Super Brain", "description": "OpenAI first", "context_length": float64(8192),
		"max_input_tokens": float64(6000), "max_output_tokens": float64(2048),
		"pricing":  map[string]any{"currency": "cny", "input_per_1m": 0.5, "cached_input_per_1m": 0.1, "output_per_1m": float64(3)},
		"flags":    []any{"general"},
		"metadata": map[string]any{"tier": "flash"},
	}
	if got, _ := json.Marshal(sb); string(got) != mustJSON(t, want) {
		t.Errorf("OpenAI model\n%s\nwant\n%s", got, mustJSON(t, want))
	}
	if l3 := data[1].(map[string]any); l3["id"] != "llama-3" || l3["owned_by"] != "O" || len(l3) != 4 {
		t.Errorf("a provider's model: %v", l3)
	}

	anth := list(Call{API: Anthropic, List: true}, "operator")
	ad := anth["data"].([]any)
	if len(ad) != 2 || anth["has_more"] != false || anth["first_id"] != "claude-sonnet" || anth["last_id"] != "mixed" {
		t.Errorf("Anthropic list %v", anth)
	}
	if m := ad[0].(map[string]any); m["type"] != "model" || m["id"] != "claude-sonnet" || m["display_name"] != "claude-sonnet" ||
		m["created_at"] != "2025-01-02T03:04:05Z" {
		t.Errorf("Anthropic model %v", m)
	}
	empty := list(Call{API: Anthropic, List: true}, "nobody")
	if empty["first_id"] != nil || empty["last_id"] != nil || len(empty["data"].([]any)) != 0 {
		t.Errorf("empty Anthropic list %v", empty)
	}

	gem := list(Call{API: Gemini, List: true, Version: "v1beta"}, "operator")
	gm := gem["models"].([]any)
	if len(gm) != 2 {
		t.Fatalf("Gemini list %v", gem)
	}
	if m := gm[0].(map[string]any); m["name"] != "models/gem" || m["baseModelId"] != "gem" || m["displayName"] != "gem" ||
		m["inputTokenLimit"] != float64(1000000) || m["outputTokenLimit"] != float64(65536) {
		t.Errorf("Gemini model %v", m)
	}

	// Retrieve: one model in the API's format; one the caller may not see
	// does not exist for it.
	one := list(Call{API: OpenAI, Retrieve: true, Model: "super-brain"}, "bob")
	if one["id"] != "super-brain" || one["object"] != "model" {
		t.Errorf("retrieve %v", one)
	}
	for _, tc := range []struct {
		call   Call
		caller string
	}{
		{Call{API: OpenAI, Retrieve: true, Model: "mixed"}, "bob"},
		{Call{API: OpenAI, Retrieve: true, Model: "gpt-*"}, "operator"},
		{Call{API: Gemini, Retrieve: true, Model: "super-brain"}, "operator"},
		{Call{API: OpenAI, Retrieve: true, Model: "nonexistent"}, "operator"},
	} {
		_, err := snap.ListModels(tc.call, callers[tc.caller], created)
		if ge := gatewayError(t, err); ge.Status != 404 || ge.Code != "model_not_found" {
			t.Errorf("retrieve %s as %s: %+v", tc.call.Model, tc.caller, ge)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
