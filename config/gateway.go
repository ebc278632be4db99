package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Gateway holds the gateway's own settings (YAML `gateway:`).
type Gateway struct {
	// AuthHeader is one more request header that may carry the client
	// credential, besides Authorization: Bearer, x-api-key, x-goog-api-key
	// and ?key= (e.g. X-Custom-Auth, as the seed-000 Worker used).
	AuthHeader string `yaml:"auth_header"`
	// MaxAttempts bounds the tries of one request over keys and providers.
	// Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// Public lets callers without a credential use the gateway's models.
	// Default false: a credential is always required.
	Public bool `yaml:"public"`
	// Strategy orders the providers of a model that has no route of its
	// own (it goes to every provider whose models match it). Default
	// fallback: in configuration order.
	Strategy string `yaml:"strategy"`
}

// Provider is an upstream API the gateway sends requests to (YAML
// `providers:`, by name).
type Provider struct {
	// Name is the key under providers:. Origin says where the entry came
	// from: "config", a seed variable's name, or "store".
	Name   string `yaml:"-"`
	Origin string `yaml:"-"`

	// Kind is the API it speaks: openai (any OpenAI-compatible API; the
	// default), anthropic, gemini, or azure (OpenAI-compatible, key in
	// api-key).
	Kind string `yaml:"kind"`
	// BaseURL in the SDK convention: https://api.openai.com/v1,
	// https://open.bigmodel.cn/api/paas/v4, https://api.anthropic.com,
	// https://generativelanguage.googleapis.com.
	BaseURL string `yaml:"base_url"`
	// Preset takes a preset's URL (with its SDK path), transport, header
	// policy and kind instead of BaseURL.
	Preset string `yaml:"preset"`
	// Keys are the provider's API keys, each a literal or env:NAME; in
	// YAML also {name: NAME, key: KEY}, which names it.
	Keys []string `yaml:"keys"`
	// KeyNames, when set, names Keys[i] in logs, stats and pages (the
	// admin store's keys have names, and so do the file's written as
	// {name, key}; the others are named after their variable, or key-N).
	// "" leaves a key its default name.
	KeyNames []string `yaml:"-"`
	// Unusable counts keys the provider has but that cannot be used here
	// (the admin store's keys that do not decrypt with this process's
	// LLMPROXY_SECRET_KEY). A provider whose every key is unusable is
	// still one that holds keys on the server: its requests are refused,
	// never sent without a key (that would relay the client's own
	// credential, or none).
	Unusable int `yaml:"-"`
	// Weight for the weighted strategies. Default 1.
	Weight int `yaml:"weight"`
	// Models lists the model names (or * patterns) it serves, for models
	// without a route of their own.
	Models []string `yaml:"models"`
	// Headers are static headers sent with every request (e.g.
	// OpenAI-Organization).
	Headers map[string]string `yaml:"headers"`
	// Transport overrides the global transport: auto, socket or fetch.
	Transport string `yaml:"transport"`
	// Responses says whether the provider has the Responses API: native
	// (OpenAI's default) or translate (from Chat Completions; the default
	// for every other openai-kind provider).
	Responses string `yaml:"responses"`
	// APIVersion is sent as ?api-version= (Azure's dated API versions).
	APIVersion string `yaml:"api_version"`
}

// Model is a public model name (or * pattern) and where it goes (YAML
// `models:`).
type Model struct {
	Name   string `yaml:"-"`
	Origin string `yaml:"-"`

	// Targets are the providers that serve it, with the upstream model
	// name (default: the requested one).
	Targets []Target `yaml:"targets"`
	// Strategy orders the targets: fallback (in order; the default),
	// round_robin, random, weighted, least_used, least_inflight, latency.
	Strategy string `yaml:"strategy"`

	// What /v1/models shows.
	DisplayName     string         `yaml:"display_name"`
	Description     string         `yaml:"description"`
	ContextWindow   int            `yaml:"context_window"`
	MaxInputTokens  int            `yaml:"max_input_tokens"`
	MaxOutputTokens int            `yaml:"max_output_tokens"`
	Pricing         *Pricing       `yaml:"pricing"`
	Flags           []string       `yaml:"flags"`
	Metadata        map[string]any `yaml:"metadata"`
}

// Target is one provider of a model.
type Target struct {
	Provider string `yaml:"provider"`
	// Model is the upstream model name; empty means the requested one.
	Model string `yaml:"model"`
	// Weight overrides the provider's weight for this route.
	Weight int `yaml:"weight"`
}

// Pricing is a model's price per million tokens.
type Pricing struct {
	// Currency is a lower-case code; default usd.
	Currency    string   `yaml:"currency" json:"currency"`
	InputPer1M  float64  `yaml:"input_per_1m" json:"input_per_1m"`
	CachedPer1M *float64 `yaml:"cached_input_per_1m" json:"cached_input_per_1m,omitempty"`
	OutputPer1M float64  `yaml:"output_per_1m" json:"output_per_1m"`
}

// ClientKey is a credential the operator hands out (YAML `client_keys:`).
type ClientKey struct {
	Origin string `yaml:"-"`

	Name string `yaml:"name"`
	// Key is the secret: a literal, env:NAME, or sha256:<64 hex digits>
	// (its digest, so the file need not hold it).
	Key string `yaml:"key"`
	// Models and Presets are the names (or * patterns) the key may use;
	// left out means all, an empty list none.
	Models  []string `yaml:"models"`
	Presets []string `yaml:"presets"`
	// RPM: requests per minute; TPM: tokens per minute; MaxParallel:
	// requests at once. 0 means no limit.
	RPM         int `yaml:"rpm"`
	TPM         int `yaml:"tpm"`
	MaxParallel int `yaml:"max_parallel"`
	// Budget caps what the key may spend per day or month, priced from
	// the models' pricing.
	Budget *Budget `yaml:"budget"`
	// Expires is when the key stops working; zero means never. A date
	// alone (2027-01-01) runs through the end of that day in UTC, as in
	// the admin panel.
	Expires time.Time `yaml:"expires"`
}

// UnmarshalYAML decodes a client key; an expiry written as a date alone
// runs through that day (YAML reads it as the day's first instant).
func (k *ClientKey) UnmarshalYAML(n *yaml.Node) error {
	type plain ClientKey
	if err := n.Decode((*plain)(k)); err != nil {
		return err
	}
	if v := mappingValue(n, "expires"); v != nil && v.Kind == yaml.ScalarNode && isDate(v.Value) && !k.Expires.IsZero() {
		k.Expires = k.Expires.Add(24*time.Hour - time.Second)
	}
	return nil
}

// isDate reports whether s is a date alone, YYYY-MM-DD.
func isDate(s string) bool {
	_, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	return err == nil
}

// Budget is an amount per period. In YAML: {amount: 5, period: day,
// currency: usd}, or the short form "5/day" (or "20 usd/month").
type Budget struct {
	Amount   float64 `yaml:"amount"`
	Period   string  `yaml:"period"`   // day or month (UTC); default month
	Currency string  `yaml:"currency"` // default usd
}

// UnmarshalYAML accepts the mapping and the short "AMOUNT[ CURRENCY]/PERIOD" form.
func (b *Budget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parsed, err := ParseBudget(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %v", n.Line, err)
		}
		*b = parsed
		return nil
	}
	type plain Budget
	var p plain
	if err := decodeStrict(n, &p); err != nil {
		return err
	}
	*b = Budget(p)
	return nil
}

// ParseBudget parses "5/day", "20 usd/month" or "100".
func ParseBudget(s string) (Budget, error) {
	amount, period, _ := strings.Cut(strings.TrimSpace(s), "/")
	b := Budget{Period: strings.TrimSpace(period)}
	fields := strings.Fields(amount)
	if len(fields) == 0 || len(fields) > 2 {
		return b, fmt.Errorf("budget %q: write it as AMOUNT/PERIOD, e.g. 5/day or 20 usd/month", s)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return b, fmt.Errorf("budget %q: %q is not a number", s, fields[0])
	}
	b.Amount = v
	if len(fields) == 2 {
		b.Currency = strings.ToLower(fields[1])
	}
	return b, nil
}

// Responses holds the Responses API translation's settings (YAML
// `responses:`).
type Responses struct {
	// Store: "" (none: previous_response_id is refused on translated
	// providers) or memory (kept in memory for TTL, never on disk, for
	// the client key that made each: previous_response_id, GET and
	// DELETE /v1/responses/{id}).
	Store string `yaml:"store"`
	// TTL is how long the memory store keeps a response. Default 1h.
	TTL time.Duration `yaml:"ttl"`
	// MaxEntries bounds the memory store. Default 10000.
	MaxEntries int `yaml:"max_entries"`
}

// decodeStrict decodes a node refusing unknown fields, as the file's own
// decoder does (yaml.Node.Decode would not).
func decodeStrict(n *yaml.Node, v any) error {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(b.String()))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("near line %d: %v", n.Line, err)
	}
	return nil
}
