package gateway

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// seedConfig applies the seeds' variables and compiles the result.
func seedConfig(t *testing.T, w *world, env map[string]string) (*Snapshot, error) {
	t.Helper()
	for k, v := range env {
		w.env[k] = v
	}
	cfg := config.Default()
	if err := cfg.ApplySeedEnv(func(name string) string { return w.env[name] }); err != nil {
		return nil, err
	}
	return Compile(cfg, w.deps())
}

// A seed-002 user's ROUTES_CONFIG and PROXY_AUTH_TOKEN: the token is a
// client key, super-brain fails over from OpenAI to Zhipu with each one's
// own model name, URL and key.
func TestSeed002Gateway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("openai", status(503, ""))
	snap, err := seedConfig(t, w, map[string]string{
		"ROUTES_CONFIG": `{"super-brain":{"displayName":"Super Brain","providers":[
			{"provider":"openai","model":"gpt-4.1","apiKeys":["OPENAI_KEY_1"]},
			{"provider":"zhipu","model":"glm-4.7","apiKeys":["ZHIPU_KEY_1"],"endpoint":"https://api.z.ai/api/paas/v4/"}]}}`,
		"PROXY_AUTH_TOKEN": "seed-two-proxy-auth-token-1",
		"OPENAI_KEY_1":     secret("o1"),
		"ZHIPU_KEY_1":      secret("z1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := chatRequest("super-brain")
	r.Header.Set("Authorization", "Bearer seed-two-proxy-auth-token-1")
	caller, err := snap.Keys().Authenticate(r, t0)
	if err != nil || caller.Kind != access.Client || caller.Name() != "PROXY_AUTH_TOKEN" {
		t.Fatalf("PROXY_AUTH_TOKEN: %v %v", caller, err)
	}
	res := w.do(snap, r, caller)
	if statusOf(res) != 200 {
		t.Fatalf("status %d %v", statusOf(res), res.err)
	}
	reqs := w.requests()
	if got := w.attempts(); !equalStrings(got, []string{"openai/o1", "zhipu/z1"}) {
		t.Fatalf("attempts %v", got)
	}
	for i, want := range []struct{ url, model string }{
		{"https://api.openai.com/v1/chat/completions", `"model":"gpt-4.1"`},
		{"https://api.z.ai/api/paas/v4/chat/completions", `"model":"glm-4.7"`},
	} {
		if reqs[i].url.String() != want.url || !strings.Contains(string(reqs[i].body), want.model) {
			t.Errorf("attempt %d: %s %s", i+1, reqs[i].url, reqs[i].body)
		}
		if strings.Contains(reqs[i].header.Get("Authorization"), "seed-two-proxy-auth-token-1") {
			t.Errorf("attempt %d carried the client's token", i+1)
		}
	}
	// /v1/models shows the route with its metadata.
	models := snap.Models(caller, OpenAI)
	if len(models) != 1 || models[0].ID != "super-brain" || models[0].DisplayName != "Super Brain" {
		t.Errorf("models %+v", models)
	}
}

// A seed-003 user's providers: round robin over every model.
func TestSeed003Gateway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap, err := seedConfig(t, w, map[string]string{
		"DEFAULT_OPENAI_PROVIDER": "https://api.fireworks.ai/inference",
		"DEFAULT_OPENAI_TOKEN":    secret("d1"),
		"ADDITIONAL_PROVIDERS": `[{"id":"fireworks","baseUrl":"https://api.fireworks.ai/inference","token":"` + secret("f1") + `","weight":1},
			{"id":"another-provider","baseUrl":"https://api.another-provider.com","token":"` + secret("a1") + `","weight":1}]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"accounts/fireworks/models/llama-v3p1-8b-instruct", "x", "y", "z"} {
		if res := w.do(snap, chatRequest(model), nil); statusOf(res) != 200 {
			t.Fatalf("%s: %d %v", model, statusOf(res), res.err)
		}
	}
	want := []string{"default/d1", "fireworks/f1", "another-provider/a1", "default/d1"}
	if got := w.attempts(); !equalStrings(got, want) {
		t.Errorf("attempts %v, want %v", got, want)
	}
	if u := w.requests()[2].url.String(); u != "https://api.another-provider.com/v1/chat/completions" {
		t.Errorf("URL %s", u)
	}
	if b := string(w.requests()[0].body); !strings.Contains(b, `"model":"accounts/fireworks/models/llama-v3p1-8b-instruct"`) {
		t.Errorf("the model was renamed: %s", b)
	}
}

// Seed settings that loading or Compile refuses name their variable.
func TestSeedCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"an unknown strategy", map[string]string{"ADDITIONAL_PROVIDERS": `[{"id":"a","baseUrl":"https://a.example"}]`, "LOAD_BALANCING_STRATEGY": "FASTEST"},
			"LOAD_BALANCING_STRATEGY"},
		{"a short PROXY_AUTH_TOKEN", map[string]string{"PROXY_AUTH_TOKEN": "short"}, "PROXY_AUTH_TOKEN"},
		{"an apiKeys variable not set", map[string]string{"ROUTES_CONFIG": `{"m":{"providers":[{"provider":"openai","model":"x","apiKeys":["NOT_SET_KEY"]}]}}`},
			"ROUTES_CONFIG: provider openai.keys"},
		{"a bad endpoint", map[string]string{"ROUTES_CONFIG": `{"m":{"providers":[{"provider":"x","model":"x","apiKeys":["K"],"endpoint":"api.x.com/v1"}]}}`, "K": secret("k")},
			"ROUTES_CONFIG: provider x.base_url"},
		{"a bad baseUrl", map[string]string{"ADDITIONAL_PROVIDERS": `[{"id":"a","baseUrl":"a.example"}]`}, "ADDITIONAL_PROVIDERS: provider a.base_url"},
		{"a bad id", map[string]string{"ADDITIONAL_PROVIDERS": `[{"id":"a b","baseUrl":"https://a.example"}]`}, "ADDITIONAL_PROVIDERS: provider a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := seedConfig(t, newWorld(t), tc.env)
			var se *config.SettingError
			if !errors.As(err, &se) || se.Setting != tc.setting {
				t.Errorf("err %v, want a setting error for %q", err, tc.setting)
			}
		})
	}
}
