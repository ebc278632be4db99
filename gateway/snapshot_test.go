package gateway

import (
	"errors"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
)

// Each bad setting gives a *config.SettingError naming it; a message may
// name an environment variable but never a key's value.
func TestCompileErrors(t *testing.T) {
	t.Parallel()
	const leaked = "sk-do-not-print-this-value"
	good := func() *config.Config {
		return newConfig(t, openaiProvider("A", "a1"), route("m", "A"))
	}
	provider := func(edit func(p *config.Provider)) func(*config.Config) {
		return func(c *config.Config) {
			p := openaiProvider("P", "p1")
			edit(&p)
			if err := c.AddProvider(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	model := func(m config.Model) func(*config.Config) {
		return func(c *config.Config) {
			if err := c.AddModel(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*config.Config)
		setting string
		message string // a part of the message
	}{
		{"unknown provider in a target", model(route("x", "A", "nobody")), "models.x.targets[1].provider", `"nobody"`},
		{"bad model strategy", model(config.Model{Name: "x", Strategy: "fastest", Targets: []config.Target{{Provider: "A"}}}), "models.x.strategy", "round_robin"},
		{"model without targets", model(config.Model{Name: "x"}), "models.x.targets", "at least one"},
		{"negative target weight", model(config.Model{Name: "x", Targets: []config.Target{{Provider: "A", Weight: -1}}}), "models.x.targets[0].weight", "negative"},
		{"negative price", model(config.Model{Name: "x", Targets: []config.Target{{Provider: "A"}}, Pricing: &config.Pricing{OutputPer1M: -1}}), "models.x.pricing", "negative"},
		{"empty model name", model(config.Model{Name: " ", Targets: []config.Target{{Provider: "A"}}}), "models. ", "empty"},
		{"bad gateway strategy", func(c *config.Config) { c.Gateway.Strategy = "nearest" }, "gateway.strategy", "least_inflight"},
		{"max_attempts negative", func(c *config.Config) { c.Gateway.MaxAttempts = -1 }, "gateway.max_attempts", "1 to 20"},
		{"max_attempts too many", func(c *config.Config) { c.Gateway.MaxAttempts = 21 }, "gateway.max_attempts", "1 to 20"},
		{"auth_header invalid", func(c *config.Config) { c.Gateway.AuthHeader = "X Auth" }, "gateway.auth_header", "valid header"},
		{"auth_header a forwarding header", func(c *config.Config) { c.Gateway.AuthHeader = "X-Forwarded-For" }, "gateway.auth_header", "valid header"},
		{"bad kind", provider(func(p *config.Provider) { p.Kind = "cohere" }), "providers.P.kind", "openai, anthropic, gemini or azure"},
		{"base_url and preset", provider(func(p *config.Provider) { p.Preset = "openai" }), "providers.P", "not both"},
		{"neither base_url nor preset", provider(func(p *config.Provider) { p.BaseURL = "" }), "providers.P", "base_url"},
		{"bad base_url", provider(func(p *config.Provider) { p.BaseURL = "ftp://x.example" }), "providers.P.base_url", "https://"},
		{"base_url with a query", provider(func(p *config.Provider) { p.BaseURL = "https://x.example/v1?key=" + leaked }), "providers.P.base_url", "query"},
		{"unknown preset", provider(func(p *config.Provider) { p.BaseURL, p.Preset = "", "nope" }), "providers.P.preset", `"nope"`},
		{"a preset that is not an LLM API", provider(func(p *config.Provider) { p.BaseURL, p.Preset = "", "telegram" }), "providers.P.preset", "not an LLM API"},
		{"a preset of another kind", provider(func(p *config.Provider) { p.BaseURL, p.Preset, p.Kind = "", "claude", "openai" }), "providers.P.kind", "speaks anthropic"},
		{"bad provider name", func(c *config.Config) {
			p := openaiProvider("bad name", "p1")
			c.AddProvider(p)
		}, "providers.bad name", "letters, digits"},
		{"negative weight", provider(func(p *config.Provider) { p.Weight = -2 }), "providers.P.weight", "negative"},
		{"bad transport", provider(func(p *config.Provider) { p.Transport = "quic" }), "providers.P.transport", "auto, socket or fetch"},
		{"bad responses", provider(func(p *config.Provider) { p.Responses = "maybe" }), "providers.P.responses", "native or translate"},
		{"responses on anthropic", provider(func(p *config.Provider) { p.Kind, p.Responses = "anthropic", "native" }), "providers.P.responses", "only openai and azure"},
		{"responses on gemini", provider(func(p *config.Provider) { p.Kind, p.Responses = "gemini", "translate" }), "providers.P.responses", "only openai and azure"},
		{"env var not set", provider(func(p *config.Provider) { p.Keys = []string{"env:P_KEY_UNSET"} }), "providers.P.keys", "P_KEY_UNSET is not set"},
		{"key with a space", provider(func(p *config.Provider) { p.Keys = []string{secret("p1"), "sk-do-not print-this-value"} }), "providers.P.keys", "key-2 holds whitespace"},
		{"key with a tab", provider(func(p *config.Provider) { p.Keys = []string{"sk-do-not\tprint-this-value"} }), "providers.P.keys", "whitespace"},
		{"env key with a newline inside", provider(func(p *config.Provider) { p.Keys = []string{"env:MULTILINE"} }), "providers.P.keys", "MULTILINE holds whitespace"},
		{"key listed twice", provider(func(p *config.Provider) { p.Keys = []string{leaked, leaked} }), "providers.P.keys", "listed twice"},
		{"empty key", provider(func(p *config.Provider) { p.Keys = []string{"  "} }), "providers.P.keys", "empty"},
		{"a key named as another's default", provider(func(p *config.Provider) {
			p.Keys, p.KeyNames = []string{secret("p1"), secret("p2")}, []string{"key-2", ""}
		}), "providers.P.keys", "two keys are called key-2"},
		{"header a privacy policy never sends", provider(func(p *config.Provider) { p.Headers = map[string]string{"X-Forwarded-For": "1.2.3.4"} }), "providers.P.headers", "never sends"},
		{"a cookie header", provider(func(p *config.Provider) { p.Headers = map[string]string{"Cookie": "session=" + leaked} }), "providers.P.headers", "never sends"},
		{"a tracing header", provider(func(p *config.Provider) { p.Headers = map[string]string{"traceparent": "00-x"} }), "providers.P.headers", "never sends"},
		{"a header value with a newline", provider(func(p *config.Provider) { p.Headers = map[string]string{"X-Team": leaked + "\n"} }), "providers.P.headers", "invalid"},
		{"bad provider models pattern", provider(func(p *config.Provider) { p.Models = []string{""} }), "providers.P.models", "empty"},
		{"a preset key on telegram", func(c *config.Config) {
			c.Presets = map[string]presetOverride{"telegram": {Keys: []string{leaked}}}
		}, "presets.telegram.keys", "path"},
		{"a preset key unset", func(c *config.Config) {
			c.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_UNSET"}}}
		}, "presets.openai.keys", "OPENAI_UNSET is not set"},
		{"a bad preset", func(c *config.Config) {
			c.Presets = map[string]presetOverride{"v1": {URL: "https://x.example"}}
		}, "presets", "cannot be a preset path"},
		{"a client key too short", func(c *config.Config) {
			c.ClientKeys = []config.ClientKey{{Name: "alice", Key: "short"}}
		}, "client_keys[0]", "shorter"},
		{"a seed provider names its variable", func(c *config.Config) {
			p := openaiProvider("openai", "x")
			p.Origin, p.Keys = "ROUTES_CONFIG", []string{"env:OPENAI_KEY_1"}
			c.AddProvider(p)
		}, "ROUTES_CONFIG: provider openai.keys", "OPENAI_KEY_1 is not set"},
		{"a seed model names its variable", func(c *config.Config) {
			c.AddModel(config.Model{Name: "*", Origin: "ADDITIONAL_PROVIDERS", Strategy: "fastest", Targets: []config.Target{{Provider: "A"}}})
		}, "ADDITIONAL_PROVIDERS: model *.strategy", "round_robin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tc.edit(cfg)
			w := newWorld(t)
			w.env["MULTILINE"] = "sk-part-one\nsk-part-two"
			_, err := Compile(cfg, w.deps())
			var se *config.SettingError
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want a *config.SettingError", err, err)
			}
			if se.Setting != tc.setting || !strings.Contains(se.Msg, tc.message) {
				t.Errorf("got %q: %q\nwant %q: …%s…", se.Setting, se.Msg, tc.setting, tc.message)
			}
			for _, secret := range []string{leaked, "print-this-value", "sk-part", "session="} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the message holds a secret: %q", err.Error())
				}
			}
		})
	}
}

// A good configuration compiles with its names, defaults and warnings.
func TestCompileGood(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env["ZHIPU_KEY_1"] = "zk-0123456789abcdef0123\n" // a trailing newline from a file is forgiven
	cfg := newConfig(t,
		config.Provider{Name: "zhipu", BaseURL: "https://open.bigmodel.cn/api/paas/v4", Keys: []string{"env:ZHIPU_KEY_1", "sk-literal-0123456789"}},
		config.Provider{Name: "claude", Preset: "claude", Keys: []string{"sk-ant-0123456789abcd"}},
		route("glm", "zhipu"), route("claude-*", "claude"))
	snap := w.compile(cfg)
	if !snap.On() || snap.maxAttempts != 3 || snap.strategy != Fallback {
		t.Errorf("defaults: on %v, max %d, strategy %s", snap.On(), snap.maxAttempts, snap.strategy)
	}
	z := snap.providers["zhipu"]
	if z.Kind != KindOpenAI || !z.Keyed() || len(z.Keys()) != 2 {
		t.Fatalf("zhipu %+v", z)
	}
	if k := z.Keys()[0]; k.Name != "ZHIPU_KEY_1" || k.Masked != "…0123" || k.secret != "zk-0123456789abcdef0123" {
		t.Errorf("env key: %q %q", k.Name, k.Masked)
	}
	if k := z.Keys()[1]; k.Name != "key-2" || k.Masked != "…6789" {
		t.Errorf("literal key: %q %q", k.Name, k.Masked)
	}
	if got := z.Hosts(); !equalStrings(got, []string{"open.bigmodel.cn"}) {
		t.Errorf("hosts %v", got)
	}
	c := snap.providers["claude"]
	if c.Kind != KindAnthropic || c.Preset() == nil || c.Preset().Name != "claude" {
		t.Errorf("claude by preset: kind %s", c.Kind)
	}
	if len(snap.Routes()) != 2 || snap.Routes()[0].Name != "glm" || snap.Routes()[1].Name != "claude-*" {
		t.Errorf("routes %v", snap.Routes())
	}
	if len(snap.Warnings) == 0 || !strings.Contains(snap.Warnings[0], "no client credential") {
		t.Errorf("warnings %q: providers without a client credential answer 401 to everyone", snap.Warnings)
	}
	for _, warning := range snap.Warnings {
		if strings.Contains(warning, "sk-") || strings.Contains(warning, "zk-") {
			t.Errorf("a warning holds a key: %q", warning)
		}
	}
	if snap.Preset("anthropic") != snap.Preset("claude") || snap.Preset("anthropic") == nil {
		t.Error("a preset's alias does not reach it")
	}
	if snap.Generic() == nil || snap.Health() != w.health || snap.Keys() == nil {
		t.Error("accessors")
	}
}

// Short secrets are masked to nothing.
func TestMask(t *testing.T) {
	t.Parallel()
	for secret, want := range map[string]string{"": "…", "short": "…", "elevenchars": "…", "twelve-chars": "…hars", "sk-0123456789abcdef": "…cdef"} {
		if got := mask(secret); got != want {
			t.Errorf("mask(%q) = %q, want %q", secret, got, want)
		}
	}
}
