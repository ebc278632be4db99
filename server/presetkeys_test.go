package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/stats"
)

// A preset with server-side keys injects one and, from then on, demands a
// client credential: nothing is ever injected for an anonymous caller.
func TestPresetWithServerKeys(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{gwEnv["ALPHA_KEY_1"]}}, nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.AuthToken = testToken
		cfg.Presets = map[string]preset.Override{"openai": {URL: fake.URL, Keys: []string{"env:ALPHA_KEY_1"}}}
		cfg.ClientKeys = append(cfg.ClientKeys, config.ClientKey{Name: "claude-only", Key: "ck-claude-only-00000000000", Presets: []string{"claude"}})
	})
	h := startGateway(t, cfg)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"client key", "/openai/v1/chat/completions", http.Header{"Authorization": {"Bearer " + aliceKey}}, 200},
		{"client key in x-api-key", "/openai/v1/chat/completions", http.Header{"X-Api-Key": {aliceKey}}, 200},
		// The Realtime API's browser form, sent on a plain request.
		{"client key in a websocket subprotocol", "/openai/v1/chat/completions", http.Header{"Sec-Websocket-Protocol": {"openai-insecure-api-key." + aliceKey}}, 200},
		{"operator token in the path", "/" + testToken + "/openai/v1/chat/completions", nil, 200},
		{"anonymous", "/openai/v1/chat/completions", nil, 401},
		{"the client's own provider key", "/openai/v1/chat/completions", http.Header{"Authorization": {"Bearer sk-clients-own-key-123456"}}, 401},
		{"a key not allowed this preset", "/openai/v1/chat/completions", http.Header{"Authorization": {"Bearer ck-claude-only-00000000000"}}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fake.Requests())
			code, _, out := h.do("POST", tc.path, tc.header, body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, out)
			}
			reqs := fake.Requests()
			if tc.status != 200 {
				if len(reqs) != before {
					t.Error("a refused request reached the provider")
				}
				return
			}
			last := reqs[len(reqs)-1]
			if bearer(last) != gwEnv["ALPHA_KEY_1"] || last.Header.Get("X-Api-Key") != "" {
				t.Error("the server's key was not what went upstream")
			}
			if strings.Contains(last.URI, testToken) {
				t.Error("the token went upstream")
			}
			for name, values := range last.Header {
				for _, v := range values {
					if strings.Contains(v, aliceKey) {
						t.Errorf("the client key went upstream in %s: %q", name, v)
					}
				}
			}
		})
	}
	// preset_auth closes the presets that relay the client's own key; a
	// keyed one still takes client keys at its short path.
	cfg = cfg.Clone()
	cfg.PresetAuth = true
	closed := startGateway(t, cfg)
	if code, _, out := closed.do("POST", "/openai/v1/chat/completions", http.Header{"Authorization": {"Bearer " + aliceKey}}, body); code != 200 {
		t.Errorf("keyed preset under preset_auth with a client key: %d %s", code, out)
	}
	if code, _, _ := closed.do("POST", "/openai/v1/chat/completions", nil, body); code != 401 {
		t.Errorf("keyed preset under preset_auth, anonymous: %d", code)
	}
	if code, _, _ := closed.do("POST", "/claude/v1/messages", http.Header{"X-Api-Key": {"sk-ant-own-key-1234567890"}}, `{}`); code != 401 {
		t.Errorf("unkeyed preset under preset_auth without the token: %d", code)
	}
	// Usage on a keyed preset counts toward the client key.
	usageRow(t, h, func(u stats.UsageRow) bool { return u.Client == "alice" && u.Provider == "openai" && u.Requests == 3 })
	noSecretIn(t, "the log", h.waitLog(7))
}

// A preset's upstreams are tried in turn, and one that cannot be reached
// or answers 5xx/429 before the first byte is skipped for the next.
func TestPresetUpstreamsFailOver(t *testing.T) {
	t.Parallel()
	good := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "good"}, nil)
	busy := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "busy",
		Fault: func(providertest.FaultRequest) providertest.Fault { return providertest.Status(503) }}, nil)
	refused := providertest.RefusedURL(t)
	cfg := testConfig(t, nil)
	cfg.Presets = map[string]preset.Override{"pool": {Upstreams: []string{refused, busy.URL, good.URL}, ClientPath: "/v1"}}
	h := start(t, cfg)
	for i := range 6 {
		code, _, out := h.do("POST", "/pool/v1/chat/completions", http.Header{"Authorization": {"Bearer sk-own-key-of-the-client"}},
			`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
		if code != 200 || !strings.Contains(out, "Hello from good") {
			t.Fatalf("request %d: %d %s", i, code, out)
		}
	}
	if n := len(good.Requests()); n != 6 {
		t.Errorf("the good upstream answered %d, want all 6", n)
	}
	// The client's own key goes to whichever upstream answers.
	for _, r := range good.Requests() {
		if bearer(r) != "sk-own-key-of-the-client" {
			t.Error("the client's own key did not reach the upstream")
		}
	}
}

// A key limited to some models cannot reach another one on a keyed preset
// by naming the model twice, in another letter case, or not readably.
func TestPresetKeysModelScopeCannotBeBypassed(t *testing.T) {
	t.Parallel()
	fake := providertest.NewOpenAI(t, nil, nil)
	cfg := gatewayConfig(t, func(cfg *config.Config) {
		cfg.Presets = map[string]preset.Override{"openai": {URL: fake.URL, Keys: []string{"env:ALPHA_KEY_1"}}}
		cfg.ClientKeys = []config.ClientKey{{Name: "mini-only", Key: bobKey, Models: []string{"gpt-4o-mini"}}}
	})
	h := startGateway(t, cfg)
	auth := http.Header{"Authorization": {"Bearer " + bobKey}}
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"allowed", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, 200},
		{"another model", `{"model":"gpt-4o","messages":[]}`, 403},
		{"named twice", `{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}`, 400},
		{"escaped twice", `{"model":"gpt-4o-mini","mod\u0065l":"gpt-4o","messages":[]}`, 400},
		{"another case", `{"model":"gpt-4o-mini","Model":"gpt-4o","messages":[]}`, 400},
		{"not JSON", `{"model":"gpt-4o-mini",`, 400},
		{"no model", `{"messages":[]}`, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fake.Requests())
			code, _, out := h.do("POST", "/openai/v1/chat/completions", auth, tc.body)
			if code != tc.status {
				t.Errorf("status %d, want %d: %s", code, tc.status, out)
			}
			if tc.status != 200 && len(fake.Requests()) != before {
				t.Error("the request reached the provider")
			}
		})
	}
}
