package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/llmproxy/llmproxy/preset"
)

// The Workers scripts llmproxy replaces were configured with environment
// variables; a user of one sets the same variables and their clients keep
// working. These are their names (an interface: keep them).
const (
	EnvRoutesConfig        = "ROUTES_CONFIG"           // seed 002: routes by model, JSON
	EnvProxyAuthToken      = "PROXY_AUTH_TOKEN"        // seed 002: the client credential
	EnvDefaultProvider     = "DEFAULT_OPENAI_PROVIDER" // seed 003: base URL without /v1
	EnvDefaultToken        = "DEFAULT_OPENAI_TOKEN"    // seed 003: its key
	EnvAdditionalProviders = "ADDITIONAL_PROVIDERS"    // seed 003: JSON list
	EnvLoadBalancing       = "LOAD_BALANCING_STRATEGY" // seed 003: ROUND_ROBIN, RANDOM, LEAST_USED
)

// ApplySeedEnv adds the providers, model routes and client credential
// that the seed systems' variables describe. getenv is os.Getenv in the
// program and a map in tests. Errors name the variable.
func (c *Config) ApplySeedEnv(getenv func(string) string) error {
	if token := strings.TrimSpace(getenv(EnvProxyAuthToken)); token != "" {
		c.ClientKeys = append(c.ClientKeys, ClientKey{
			Name: "PROXY_AUTH_TOKEN", Key: "env:" + EnvProxyAuthToken, Origin: EnvProxyAuthToken,
		})
	}
	if raw := strings.TrimSpace(getenv(EnvRoutesConfig)); raw != "" {
		if err := c.applyRoutesConfig(raw); err != nil {
			return settingErr(EnvRoutesConfig, "%v", err)
		}
	}
	if err := c.applyLoadBalancer(getenv); err != nil {
		return err
	}
	return nil
}

// seed002Route is one entry of ROUTES_CONFIG (seed 002's JSON).
type seed002Route struct {
	DisplayName     string            `json:"displayName"`
	Description     string            `json:"description"`
	ContextWindow   int               `json:"contextWindow"`
	MaxInputTokens  int               `json:"maxInputTokens"`
	MaxOutputTokens int               `json:"maxOutputTokens"`
	Flags           []string          `json:"flags"`
	Metadata        map[string]any    `json:"metadata"`
	Providers       []seed002Provider `json:"providers"`
	seed002Pricing
}

// seed002Pricing may sit on the route or, in the older format, on a
// provider entry; the route's wins.
type seed002Pricing struct {
	Currency   string   `json:"pricingCurrency"`
	Input      *float64 `json:"inputPricePer1m"`
	InputCache *float64 `json:"inputCachePricePer1m"`
	Output     *float64 `json:"outputPricePer1m"`
}

type seed002Provider struct {
	Provider string   `json:"provider"`
	Model    string   `json:"model"`
	APIKeys  []string `json:"apiKeys"` // names of environment variables
	Endpoint string   `json:"endpoint"`
	seed002Pricing
	// Older entries carried the metadata on the provider.
	ContextWindow   int `json:"contextWindow"`
	MaxOutputTokens int `json:"maxOutputTokens"`
}

// seed002Endpoints are the default endpoints of seed 002's providers.
// Any other provider name must be a preset or carry an endpoint.
var seed002Endpoints = map[string]string{
	"openai": "https://api.openai.com/v1",
	"zhipu":  "https://open.bigmodel.cn/api/paas/v4",
}

func (c *Config) applyRoutesConfig(raw string) error {
	order, err := objectKeys([]byte(raw))
	if err != nil {
		return fmt.Errorf("must be a JSON object of routes by model name: %v", err)
	}
	var routes map[string]seed002Route
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&routes); err != nil {
		return fmt.Errorf("must be a JSON object of routes by model name: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("must be one JSON object of routes by model name (something follows it)")
	}
	// One provider per distinct (name, endpoint, keys): entries that share
	// them share key health and rotation.
	byIdentity := map[string]string{}
	for _, name := range order {
		r := routes[name]
		if len(r.Providers) == 0 {
			return fmt.Errorf("route %q has no providers", name)
		}
		m := Model{
			Name: name, Origin: EnvRoutesConfig, Strategy: "fallback",
			DisplayName: r.DisplayName, Description: r.Description,
			ContextWindow: r.ContextWindow, MaxInputTokens: r.MaxInputTokens, MaxOutputTokens: r.MaxOutputTokens,
			Flags: r.Flags, Metadata: r.Metadata,
		}
		pricing := r.seed002Pricing
		for i, p := range r.Providers {
			if p.Provider == "" {
				return fmt.Errorf("route %q, provider %d: \"provider\" is missing", name, i+1)
			}
			if len(p.APIKeys) == 0 {
				return fmt.Errorf("route %q, provider %q: \"apiKeys\" lists no variable", name, p.Provider)
			}
			base := strings.TrimSuffix(strings.TrimSpace(p.Endpoint), "/")
			if base == "" {
				base = seed002Endpoints[p.Provider]
			}
			if base == "" {
				if pr := builtinPreset(p.Provider); pr != nil {
					base = pr.BaseURL + pr.ClientPath
				}
			}
			if base == "" {
				return fmt.Errorf("route %q, provider %q: needs an \"endpoint\" (only openai, zhipu and the preset names have a default)", name, p.Provider)
			}
			keys := make([]string, len(p.APIKeys))
			for j, k := range p.APIKeys {
				keys[j] = "env:" + strings.TrimSpace(k)
			}
			identity := p.Provider + "\x00" + base + "\x00" + strings.Join(keys, ",")
			provName, ok := byIdentity[identity]
			if !ok {
				provName = c.freeProviderName(p.Provider)
				prov := Provider{Name: provName, Origin: EnvRoutesConfig, Kind: "openai", BaseURL: base, Keys: keys}
				// Seed 002 spoke the Responses API to OpenAI natively and
				// translated it for everyone else (GLM).
				if p.Provider == "openai" && base == seed002Endpoints["openai"] {
					prov.Responses = "native"
				} else {
					prov.Responses = "translate"
				}
				if err := c.AddProvider(prov); err != nil {
					return err
				}
				byIdentity[identity] = provName
			}
			m.Targets = append(m.Targets, Target{Provider: provName, Model: p.Model})
			if pricing.Input == nil && pricing.Output == nil && (p.Input != nil || p.Output != nil) {
				pricing = p.seed002Pricing
			}
			if m.ContextWindow == 0 {
				m.ContextWindow = p.ContextWindow
			}
			if m.MaxOutputTokens == 0 {
				m.MaxOutputTokens = p.MaxOutputTokens
			}
		}
		if pricing.Input != nil || pricing.Output != nil || pricing.InputCache != nil {
			m.Pricing = &Pricing{Currency: strings.ToLower(pricing.Currency), CachedPer1M: pricing.InputCache}
			if pricing.Input != nil {
				m.Pricing.InputPer1M = *pricing.Input
			}
			if pricing.Output != nil {
				m.Pricing.OutputPer1M = *pricing.Output
			}
		}
		if err := c.AddModel(m); err != nil {
			return err
		}
	}
	return nil
}

// freeProviderName returns base, or base-2, base-3… if taken.
func (c *Config) freeProviderName(base string) string {
	name := base
	for i := 2; ; i++ {
		if _, taken := c.Providers[name]; !taken {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// seed003Provider is one entry of ADDITIONAL_PROVIDERS.
type seed003Provider struct {
	ID      string `json:"id"`
	BaseURL string `json:"baseUrl"`
	Token   string `json:"token"`
	Weight  int    `json:"weight"`
}

// seed003Strategies maps LOAD_BALANCING_STRATEGY; llmproxy's own names
// are accepted too.
var seed003Strategies = map[string]string{
	"ROUND_ROBIN": "round_robin", "RANDOM": "random", "LEAST_USED": "least_used",
}

// strategies are the gateway's route strategies (gateway.Strategies,
// which config cannot import; a test keeps the two equal).
var strategies = []string{"fallback", "round_robin", "random", "weighted", "least_used", "least_inflight", "latency"}

func (c *Config) applyLoadBalancer(getenv func(string) string) error {
	base := strings.TrimSpace(getenv(EnvDefaultProvider))
	extra := strings.TrimSpace(getenv(EnvAdditionalProviders))
	if base == "" && extra == "" {
		return nil
	}
	var providers []seed003Provider
	if base != "" {
		providers = append(providers, seed003Provider{ID: "default", BaseURL: base, Weight: 1})
		if token := getenv(EnvDefaultToken); token != "" {
			providers[0].Token = "env:" + EnvDefaultToken
		}
	}
	if extra != "" {
		var list []seed003Provider
		dec := json.NewDecoder(strings.NewReader(extra))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&list); err != nil {
			return settingErr(EnvAdditionalProviders, "must be a JSON list of {\"id\", \"baseUrl\", \"token\", \"weight\"}: %v", err)
		}
		if dec.More() {
			return settingErr(EnvAdditionalProviders, "must be one JSON list (something follows it)")
		}
		for i, p := range list {
			if p.ID == "" || p.BaseURL == "" {
				return settingErr(EnvAdditionalProviders, "entry %d needs an \"id\" and a \"baseUrl\"", i+1)
			}
			if p.Weight < 0 {
				return settingErr(EnvAdditionalProviders, "entry %q: weight must not be negative", p.ID)
			}
		}
		providers = append(providers, list...)
	}
	strategy := "round_robin"
	if s := strings.TrimSpace(getenv(EnvLoadBalancing)); s != "" {
		if mapped, ok := seed003Strategies[strings.ToUpper(s)]; ok {
			strategy = mapped
		} else if strategy = strings.ToLower(s); !slices.Contains(strategies, strategy) {
			// Checked here: the gateway would name the route's origin,
			// ADDITIONAL_PROVIDERS, which may not even be set.
			return settingErr(EnvLoadBalancing, "must be ROUND_ROBIN, RANDOM, LEAST_USED or one of %s", strings.Join(strategies, ", "))
		}
	}
	weighted := false
	route := Model{Name: "*", Origin: EnvAdditionalProviders, Strategy: strategy}
	for i, p := range providers {
		origin := EnvAdditionalProviders
		if i == 0 && base != "" {
			origin = EnvDefaultProvider
		}
		name := c.freeProviderName(p.ID)
		// Seed 003's base URLs stop before /v1: clients call /v1/… and the
		// Worker appended the whole path.
		prov := Provider{
			Name: name, Origin: origin, Kind: "openai", Weight: p.Weight,
			BaseURL: strings.TrimSuffix(p.BaseURL, "/") + "/v1",
		}
		if p.Token != "" {
			prov.Keys = []string{p.Token}
		}
		if p.Weight > 1 {
			weighted = true
		}
		if err := c.AddProvider(prov); err != nil {
			return settingErr(origin, "%v", err)
		}
		route.Targets = append(route.Targets, Target{Provider: name})
	}
	if strategy == "random" && weighted {
		strategy = "weighted" // the weights meant something in the Worker
		route.Strategy = strategy
	}
	if err := c.AddModel(route); err != nil {
		return settingErr(EnvAdditionalProviders, "%v", err)
	}
	return nil
}

// builtinPreset returns the built-in preset (or alias) name, or nil.
func builtinPreset(name string) *preset.Preset {
	for _, p := range preset.Builtin() {
		if p.Name == name {
			return &p
		}
		for _, a := range p.Aliases {
			if a == name {
				return &p
			}
		}
	}
	return nil
}

// objectKeys returns the top-level keys of a JSON object in order.
func objectKeys(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
