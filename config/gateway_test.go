package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func loadYAML(t *testing.T, text string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

// The gateway's YAML: providers, models and client keys, with the order
// of providers: and models: kept as written (fallback order and pattern
// precedence depend on it).
func TestLoadGatewayYAML(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, `
gateway:
  auth_header: X-Custom-Auth
  max_attempts: 4
  public: true
  strategy: least_used
providers:
  zeta:
    base_url: https://z.example/v1
    keys: [env:Z_KEY_1, sk-literal-0123456789]
    weight: 2
    models: ["llama-*", qwen]
    headers: {OpenAI-Organization: org-1}
    transport: fetch
    responses: translate
  alpha:
    kind: anthropic
    base_url: https://api.anthropic.com
  mid:
    preset: groq
  az:
    kind: azure
    base_url: https://res.openai.azure.com/openai/v1
    api_version: 2024-10-21
models:
  zz-model:
    targets:
      - {provider: zeta, model: up-model, weight: 3}
      - provider: alpha
    strategy: round_robin
    display_name: ZZ
    description: the last letter first
    context_window: 128000
    max_input_tokens: 100000
    max_output_tokens: 4096
    pricing: {currency: usd, input_per_1m: 1, cached_input_per_1m: 0.25, output_per_1m: 2}
    flags: [tools, vision]
    metadata: {tier: gold, rank: 1}
  aa-model:
    targets: [{provider: alpha}]
  "gpt-*":
    targets: [{provider: mid}]
client_keys:
  - name: alice
    key: env:ALICE_KEY
    models: [zz-model, "gpt-*"]
    presets: [openai]
    rpm: 10
    tpm: 10000
    max_parallel: 2
    budget: 5/day
  - name: bob
    key: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    budget: 20 usd/month
  - name: carol
    key: ck-carol-0123456789abcdef
    budget: {amount: 3.5, period: day, currency: eur}
    expires: 2030-01-01T00:00:00Z
    models: []
`)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Gateway{AuthHeader: "X-Custom-Auth", MaxAttempts: 4, Public: true, Strategy: "least_used"}); cfg.Gateway != want {
		t.Errorf("gateway %+v", cfg.Gateway)
	}
	if got := providerNames(cfg); !reflect.DeepEqual(got, []string{"zeta", "alpha", "mid", "az"}) {
		t.Errorf("providers %v: the file's order", got)
	}
	if got := modelNames(cfg); !reflect.DeepEqual(got, []string{"zz-model", "aa-model", "gpt-*"}) {
		t.Errorf("models %v: the file's order", got)
	}
	zeta := cfg.ProviderList()[0]
	want := Provider{Name: "zeta", Origin: "config", BaseURL: "https://z.example/v1", Keys: []string{"env:Z_KEY_1", "sk-literal-0123456789"},
		Weight: 2, Models: []string{"llama-*", "qwen"}, Headers: map[string]string{"OpenAI-Organization": "org-1"},
		Transport: "fetch", Responses: "translate"}
	if !reflect.DeepEqual(zeta, want) {
		t.Errorf("zeta\n%+v\nwant\n%+v", zeta, want)
	}
	if p := cfg.Providers["alpha"]; p.Kind != "anthropic" || p.Models != nil {
		t.Errorf("alpha %+v", p)
	}
	if p := cfg.Providers["mid"]; p.Preset != "groq" || p.BaseURL != "" {
		t.Errorf("mid %+v", p)
	}
	if p := cfg.Providers["az"]; p.Kind != "azure" || p.APIVersion != "2024-10-21" {
		t.Errorf("az %+v", p)
	}
	zz := cfg.ModelList()[0]
	cached := 0.25
	wantModel := Model{Name: "zz-model", Origin: "config",
		Targets:  []Target{{Provider: "zeta", Model: "up-model", Weight: 3}, {Provider: "alpha"}},
		Strategy: "round_robin", DisplayName: "ZZ", Description: "the last letter first",
		ContextWindow: 128000, MaxInputTokens: 100000, MaxOutputTokens: 4096,
		Pricing: &Pricing{Currency: "usd", InputPer1M: 1, CachedPer1M: &cached, OutputPer1M: 2},
		Flags:   []string{"tools", "vision"}, Metadata: map[string]any{"tier": "gold", "rank": 1}}
	if !reflect.DeepEqual(zz, wantModel) {
		t.Errorf("zz-model\n%+v\nwant\n%+v", zz, wantModel)
	}
	keys := cfg.ClientKeys
	if len(keys) != 3 {
		t.Fatalf("client keys %+v", keys)
	}
	wantAlice := ClientKey{Origin: "config", Name: "alice", Key: "env:ALICE_KEY", Models: []string{"zz-model", "gpt-*"}, Presets: []string{"openai"},
		RPM: 10, TPM: 10000, MaxParallel: 2, Budget: &Budget{Amount: 5, Period: "day"}}
	if !reflect.DeepEqual(keys[0], wantAlice) {
		t.Errorf("alice\n%+v\nwant\n%+v", keys[0], wantAlice)
	}
	if b := keys[1].Budget; b == nil || *b != (Budget{Amount: 20, Period: "month", Currency: "usd"}) || keys[1].Models != nil {
		t.Errorf("bob %+v %+v", keys[1], b)
	}
	c := keys[2]
	if *c.Budget != (Budget{Amount: 3.5, Period: "day", Currency: "eur"}) || !c.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("carol %+v %+v", c, c.Budget)
	}
	// models: [] is an empty list (no model), not an absent one (every
	// model): the two must stay apart.
	if c.Models == nil || len(c.Models) != 0 {
		t.Errorf("carol's models: [] loaded as %#v", c.Models)
	}
}

// Unknown keys are refused inside providers, models, targets, pricing,
// client keys and a budget mapping too: a typo never leaves a default in
// place silently.
func TestGatewayYAMLUnknownKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, typo string
	}{
		{"gateway", "gateway:\n  max_attempt: 3\n", "max_attempt"},
		{"provider", "providers:\n  a:\n    bse_url: https://a.example/v1\n", "bse_url"},
		{"provider key list", "providers:\n  a:\n    base_url: https://a.example/v1\n    key: [x]\n", "key"},
		{"model", "models:\n  m:\n    target: [{provider: a}]\n", "target"},
		{"target", "models:\n  m:\n    targets: [{provder: a}]\n", "provder"},
		{"pricing", "models:\n  m:\n    targets: [{provider: a}]\n    pricing: {input_per_1M: 2}\n", "input_per_1M"},
		{"client key", "client_keys:\n  - name: a\n    key: ck-0123456789abcdef\n    rpmm: 5\n", "rpmm"},
		{"budget mapping", "client_keys:\n  - name: a\n    key: ck-0123456789abcdef\n    budget: {amount: 5, perod: day}\n", "perod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadYAML(t, tc.yaml)
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != "config" || !strings.Contains(se.Msg, tc.typo) {
				t.Errorf("err %v, want a config error naming %q", err, tc.typo)
			}
		})
	}
}

// A provider key written {name: NAME, key: KEY} loads as its key, with
// its name in KeyNames ("" for a key written bare, which keeps its default
// name); a mapping without its key, with another field or a name used
// twice is refused, naming the line.
func TestProviderKeyNames(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, `
providers:
  named:
    base_url: https://n.example/v1
    keys:
      - {name: main, key: sk-named-literal-0123456789}
      - env:N_KEY_2
      - name: backup
        key: env:N_KEY_3
  bare:
    base_url: https://b.example/v1
    keys: [env:B_KEY]
`)
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Providers["named"]
	if !reflect.DeepEqual(n.Keys, []string{"sk-named-literal-0123456789", "env:N_KEY_2", "env:N_KEY_3"}) ||
		!reflect.DeepEqual(n.KeyNames, []string{"main", "", "backup"}) {
		t.Errorf("named: keys %q, names %q", n.Keys, n.KeyNames)
	}
	if b := cfg.Providers["bare"]; !reflect.DeepEqual(b.Keys, []string{"env:B_KEY"}) || b.KeyNames != nil {
		t.Errorf("bare: keys %q, names %q", b.Keys, b.KeyNames)
	}
	if got := cfg.ProviderList(); len(got) != 2 || got[0].Name != "named" {
		t.Errorf("provider order lost: %+v", got)
	}
	const head = "providers:\n  p:\n    base_url: https://p.example/v1\n    keys:\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no key", head + "      - {name: main}\n", "line 5: providers.p.keys[0] needs its key"},
		{"an empty key", head + "      - {name: main, key: ''}\n", "providers.p.keys[0] needs its key"},
		{"another field", head + "      - {name: main, secret: sk-x}\n", `line 5: unknown key "secret" in providers.p.keys[0]`},
		{"a key that is a list", head + "      - {name: main, key: [a]}\n", "providers.p.keys[0].key must be a string"},
		{"a name used twice", head + "      - {name: main, key: sk-a}\n      - {name: main, key: sk-b}\n", `line 6: providers.p.keys[1]: another key of provider p is called "main"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.yaml)
			var se *SettingError
			if !errors.As(err, &se) || se.Setting != "config" || !strings.Contains(se.Msg, tc.want) {
				t.Errorf("err %v, want a config error with %q", err, tc.want)
			}
		})
	}
}

func TestParseBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Budget
		err  bool
	}{
		{"5/day", Budget{Amount: 5, Period: "day"}, false},
		{"20 usd/month", Budget{Amount: 20, Period: "month", Currency: "usd"}, false},
		{" 20  EUR / month ", Budget{Amount: 20, Period: "month", Currency: "eur"}, false},
		{"0.5/day", Budget{Amount: 0.5, Period: "day"}, false},
		{"100", Budget{Amount: 100}, false},
		{"five/day", Budget{}, true},
		{"/day", Budget{}, true},
		{"", Budget{}, true},
		{"5 usd extra/day", Budget{}, true},
	} {
		got, err := ParseBudget(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.err && got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.in, got, tc.want)
		}
	}
	// In a file, a bad short form names its line.
	_, err := loadYAML(t, "client_keys:\n  - name: a\n    key: ck-0123456789abcdef\n    budget: lots/day\n")
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("a bad budget in a file: %v", err)
	}
}

// Providers and models added after loading (seed variables, the store)
// come after the file's, in the order added; a name taken is an error
// naming both origins; entries put in the maps directly come last, sorted.
func TestAddAndOrder(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, `
providers:
  b: {base_url: https://b.example/v1}
  a: {base_url: https://a.example/v1}
models:
  y: {targets: [{provider: b}]}
  x: {targets: [{provider: a}]}
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.AddProvider(Provider{Name: "0-seed", Origin: "ROUTES_CONFIG", BaseURL: "https://s.example/v1"}); err != nil {
		t.Fatal(err)
	}
	cfg.Providers["direct-z"] = Provider{}
	cfg.Providers["direct-c"] = Provider{}
	if got := providerNames(cfg); !reflect.DeepEqual(got, []string{"b", "a", "0-seed", "direct-c", "direct-z"}) {
		t.Errorf("providers %v", got)
	}
	err = cfg.AddProvider(Provider{Name: "a", Origin: "ROUTES_CONFIG"})
	if err == nil || !strings.Contains(err.Error(), `"a" from ROUTES_CONFIG is already defined by config`) {
		t.Errorf("a provider defined twice: %v", err)
	}
	if err := cfg.AddModel(Model{Name: "*", Origin: "ADDITIONAL_PROVIDERS"}); err != nil {
		t.Fatal(err)
	}
	err = cfg.AddModel(Model{Name: "*", Origin: "store"})
	if err == nil || !strings.Contains(err.Error(), `"*" from store is already defined by ADDITIONAL_PROVIDERS`) {
		t.Errorf("a model defined twice: %v", err)
	}
	if got := modelNames(cfg); !reflect.DeepEqual(got, []string{"y", "x", "*"}) {
		t.Errorf("models %v", got)
	}
	// A provider removed from the map leaves the order.
	delete(cfg.Providers, "b")
	if got := providerNames(cfg); !reflect.DeepEqual(got, []string{"a", "0-seed", "direct-c", "direct-z"}) {
		t.Errorf("after removing b: %v", got)
	}
}

// Clone is deep enough for a reload to add providers, models and keys
// without touching the running configuration.
func TestCloneForReload(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.AddProvider(Provider{Name: "a", BaseURL: "https://a.example/v1"})
	cfg.AddModel(Model{Name: "m", Targets: []Target{{Provider: "a"}}})
	cfg.ClientKeys = []ClientKey{{Name: "k"}}
	d := cfg.Clone()
	d.AddProvider(Provider{Name: "b", BaseURL: "https://b.example/v1"})
	d.AddModel(Model{Name: "n", Targets: []Target{{Provider: "b"}}})
	d.ClientKeys[0].Name = "changed"
	d.ClientKeys = append(d.ClientKeys, ClientKey{Name: "k2"})
	if got := providerNames(cfg); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("the original's providers %v", got)
	}
	if got := modelNames(cfg); !reflect.DeepEqual(got, []string{"m"}) {
		t.Errorf("the original's models %v", got)
	}
	if len(cfg.ClientKeys) != 1 || cfg.ClientKeys[0].Name != "k" {
		t.Errorf("the original's keys %+v", cfg.ClientKeys)
	}
	if got := providerNames(d); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("the clone's providers %v", got)
	}
}

// The defaults of the gateway's settings.
func TestGatewayDefaults(t *testing.T) {
	t.Parallel()
	d := Default()
	if d.Gateway.MaxAttempts != 3 || d.Gateway.Strategy != "fallback" || d.Gateway.Public || d.Gateway.AuthHeader != "" {
		t.Errorf("gateway defaults %+v", d.Gateway)
	}
	if d.Responses.TTL != time.Hour || d.Responses.MaxEntries != 10000 {
		t.Errorf("responses defaults %+v", d.Responses)
	}
	cfg, err := loadYAML(t, "gateway:\n  public: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.MaxAttempts != 3 || cfg.Gateway.Strategy != "fallback" {
		t.Errorf("a file setting one gateway key lost the others' defaults: %+v", cfg.Gateway)
	}
}

// A client key's expiry written as a date alone runs through that day in
// UTC, as the admin panel reads one; a time is taken as it stands; a typo
// among a key's settings is still refused.
func TestClientKeyExpiresDate(t *testing.T) {
	t.Parallel()
	cfg, err := loadYAML(t, `
client_keys:
  - {name: dated, key: ck-dated-0123456789abcdef, expires: 2027-01-01}
  - {name: timed, key: ck-timed-0123456789abcdef, expires: "2027-01-01T12:00:00Z"}
  - {name: never, key: ck-never-0123456789abcdef}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"dated": time.Date(2027, 1, 1, 23, 59, 59, 0, time.UTC),
		"timed": time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC),
		"never": {},
	}
	for _, k := range cfg.ClientKeys {
		if !k.Expires.Equal(want[k.Name]) {
			t.Errorf("%s expires %v, want %v", k.Name, k.Expires, want[k.Name])
		}
	}
	if _, err := loadYAML(t, "client_keys:\n  - {name: typo, key: ck-typo-0123456789abcdef, modles: [x]}\n"); err == nil || !strings.Contains(err.Error(), "modles") {
		t.Errorf("a misspelt setting of a client key: %v", err)
	}
}
