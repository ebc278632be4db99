// Package config holds llmproxy's settings: their defaults, the YAML file,
// and the checks that reject a bad value at start with a message naming the
// setting. Flags and environment variables are applied on top by the command
// line (flag beats env beats file beats default).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/llmproxy/llmproxy/preset"
)

// Config is every setting of llmproxy. YAML keys are the field tags.
type Config struct {
	// Listen is the address to serve on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AuthToken is the operator's token (path prefix /<token>/…). Empty
	// means no token: generic mode is off and /stats is open.
	AuthToken string `yaml:"auth_token"`
	// PresetAuth makes presets answer only under /<token>/<preset>/….
	// A preset holding provider keys on the server (keys:) still answers
	// at /<preset>/… to a client key, which it asks for anyway.
	PresetAuth bool `yaml:"preset_auth"`
	// Transport is auto (socket, else fetch), socket or fetch. Default auto.
	Transport string `yaml:"transport"`
	// AggressiveFallback also falls back to fetch after the request was sent
	// but before response headers (the body is buffered to be replayable).
	AggressiveFallback bool `yaml:"aggressive_fallback"`
	// UpstreamCA is a PEM file of extra roots trusted for upstream TLS.
	UpstreamCA string `yaml:"upstream_ca"`
	// EgressProxy sends all upstream traffic through socks5:// or http://.
	EgressProxy string `yaml:"egress_proxy"`
	// Debug turns on debug logging (still redacted).
	Debug bool `yaml:"debug"`
	// LogFormat is text, json or auto (text on a terminal, else json).
	LogFormat string `yaml:"log_format"`

	// CORSOrigins lists the origins browsers may call from. Default ["*"].
	CORSOrigins []string `yaml:"cors_origins"`
	// MaxBodyBytes bounds a request body (413 beyond). Default 32 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxHeaderBytes bounds the request headers (431 beyond). Default 1 MiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// KeepSetCookie passes providers' Set-Cookie headers to clients. They
	// are CDN tracking cookies, dropped by default.
	KeepSetCookie bool `yaml:"keep_set_cookie"`
	// Dashboard serves the page at / (presets, features, live numbers).
	// Default true.
	Dashboard bool `yaml:"dashboard"`
	// ForwardSDKHeaders forwards client-SDK fingerprint headers
	// (X-Stainless-*), dropped by default.
	ForwardSDKHeaders bool `yaml:"forward_sdk_headers"`

	// AllowPrivate lets generic mode reach loopback, private, link-local
	// and other internal addresses. The proxy's own address stays blocked.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowedDestinations lists networks (CIDR or single IP) and host names
	// generic mode may reach despite the address guard.
	AllowedDestinations []string `yaml:"allowed_destinations"`

	WebSocket WebSocket `yaml:"websocket"`
	Gemini    Gemini    `yaml:"gemini"`

	Timeouts Timeouts `yaml:"timeouts"`

	// Presets changes built-in presets or adds new ones, by name.
	Presets map[string]preset.Override `yaml:"presets"`

	// AdminPassword turns the admin panel on at /admin (at least 12
	// characters). Better given as ADMIN_PASSWORD than in the file.
	AdminPassword string `yaml:"admin_password"`
	// DataDir holds the admin panel's store. Default ./llmproxy-data.
	DataDir string `yaml:"data_dir"`
	// DatabaseURL puts the admin store in PostgreSQL (postgres://…)
	// instead of the embedded database, shared by every replica.
	DatabaseURL string `yaml:"database_url"`
	// RedisURL shares client-key limits, provider-key health, breakers and
	// balancing counters between replicas (redis:// or rediss://).
	RedisURL string `yaml:"redis_url"`
	// RedisFail is what limited keys get while Redis is unreachable: open
	// (local counters; the default) or closed (refused).
	RedisFail string `yaml:"redis_fail"`
	// RedisSlotTTL is how long a replica's max_parallel slot outlives the
	// replica: a replica that dies with requests in flight frees their
	// slots after this long. It renews its live slots every third of it.
	// Default 30s; at least 1s.
	RedisSlotTTL time.Duration `yaml:"redis_slot_ttl"`

	// Gateway: one OpenAI-compatible (and Anthropic and Gemini) endpoint
	// in front of many providers and keys. See gateway.go.
	Gateway    Gateway             `yaml:"gateway"`
	Providers  map[string]Provider `yaml:"providers"`
	Models     map[string]Model    `yaml:"models"`
	ClientKeys []ClientKey         `yaml:"client_keys"`
	Responses  Responses           `yaml:"responses"`

	// The order of providers: and models: in the file (YAML maps lose
	// it; fallback order and pattern precedence need it).
	providerOrder, modelOrder []string
}

// Timeouts are the deadlines of the server and the transports. There is
// deliberately no cap on a whole request: a stream that keeps moving may
// run for hours.
type Timeouts struct {
	// Dial: TCP connect to an upstream. Default 10s.
	Dial time.Duration `yaml:"dial"`
	// TLSHandshake: upstream TLS handshake. Default 10s.
	TLSHandshake time.Duration `yaml:"tls_handshake"`
	// ResponseHeader: from request sent to response headers. A non-streaming
	// completion answers only when the model is done. Default 10m.
	ResponseHeader time.Duration `yaml:"response_header"`
	// UpstreamIdle: longest silence on a response body. Default 5m.
	UpstreamIdle time.Duration `yaml:"upstream_idle"`
	// ReadHeader: for a client to send its request headers. Default 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// ClientIdle: keep-alive between a client's requests. Default 2m.
	ClientIdle time.Duration `yaml:"client_idle"`
	// Shutdown: on SIGINT/SIGTERM, how long running streams may finish.
	// Default 30s.
	Shutdown time.Duration `yaml:"shutdown"`
}

// WebSocket tunes the WebSocket relay.
type WebSocket struct {
	// ReadLimit bounds one message, each way. Default 32 MiB.
	ReadLimit int64 `yaml:"read_limit"`
	// IdleTimeout closes a session with no message either way. Default 10m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PingInterval pings both sides. Default 30s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// HandshakeTimeout bounds the upstream handshake. Default 30s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// Gemini tunes the stream resume of the gemini preset (and of any preset
// with gemini_resume: true).
type Gemini struct {
	// Resume turns the resume logic on. Default true.
	Resume bool `yaml:"resume"`
	// MaxResumes bounds the continuations of one answer. Default 5.
	MaxResumes int `yaml:"max_resumes"`
	// ResumeDelay is the pause before each continuation. Default 500ms.
	ResumeDelay time.Duration `yaml:"resume_delay"`
	// AttemptIdleTimeout cuts (and resumes) an attempt silent for this long.
	// Default 2m.
	AttemptIdleTimeout time.Duration `yaml:"attempt_idle_timeout"`
	// TotalTimeout: no continuation starts later than this after the
	// request. Default 30m.
	TotalTimeout time.Duration `yaml:"total_timeout"`
	// Prompts are the continuation requests by language: zh, en, ja, ko,
	// es, fr, de, ru, default.
	Prompts map[string]string `yaml:"prompts"`
}

// Default returns the configuration llmproxy runs with when nothing is set.
func Default() *Config {
	return &Config{
		Listen:         "127.0.0.1:8080",
		Dashboard:      true,
		Transport:      "auto",
		LogFormat:      "auto",
		CORSOrigins:    []string{"*"},
		MaxBodyBytes:   32 << 20,
		MaxHeaderBytes: 1 << 20,
		Gemini: Gemini{
			Resume:             true,
			MaxResumes:         5,
			ResumeDelay:        500 * time.Millisecond,
			AttemptIdleTimeout: 2 * time.Minute,
			TotalTimeout:       30 * time.Minute,
		},
		WebSocket: WebSocket{
			ReadLimit:        32 << 20,
			IdleTimeout:      10 * time.Minute,
			PingInterval:     30 * time.Second,
			HandshakeTimeout: 30 * time.Second,
		},
		DataDir:   "./llmproxy-data",
		Gateway:   Gateway{MaxAttempts: 3, Strategy: "fallback"},
		Responses: Responses{TTL: time.Hour, MaxEntries: 10000},
		Timeouts: Timeouts{
			Dial:           10 * time.Second,
			TLSHandshake:   10 * time.Second,
			ResponseHeader: 10 * time.Minute,
			UpstreamIdle:   5 * time.Minute,
			ReadHeader:     10 * time.Second,
			ClientIdle:     2 * time.Minute,
			Shutdown:       30 * time.Second,
		},
	}
}

// SettingError is a bad value for a setting, named by its YAML key.
type SettingError struct {
	Setting string
	Msg     string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Msg }

func settingErr(setting, format string, args ...any) error {
	return &SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
}

// Load reads a YAML file over the defaults. Unknown keys are errors, so a
// typo does not silently leave a default in place.
func Load(path string) (*Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		why := err
		if pe, ok := err.(*os.PathError); ok {
			why = pe.Err
		}
		return nil, settingErr("config", "cannot read %s: %v", path, why)
	}
	return Parse(data)
}

// Parse reads a configuration file's contents over the defaults.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, settingErr("config", "%v", err)
	}
	if len(root.Content) == 0 {
		return cfg, nil // an empty file
	}
	// Say what the decoder would not (a typo's likely meaning, a duration
	// without its unit), and take yes/no/on/off for booleans.
	if err := checkNode(root.Content[0], reflect.TypeFor[Config](), ""); err != nil {
		return nil, settingErr("config", "%v", err)
	}
	// A provider key written {name: NAME, key: SPEC} is decoded as its
	// spec, the name kept aside for KeyNames.
	keyNames, err := takeKeyNames(root.Content[0])
	if err != nil {
		return nil, settingErr("config", "%v", err)
	}
	if keyNames != nil {
		if data, err = yaml.Marshal(&root); err != nil {
			return nil, settingErr("config", "%v", err)
		}
	}
	if err := decodeFile(data, cfg); err != nil {
		// A yes/no/on/off boolean fails the strict decoder; the checked
		// node has it as true/false. Its line numbers may differ, so an
		// error still there is reported as the file has it.
		fixed, merr := yaml.Marshal(&root)
		cfg = Default()
		if merr != nil || decodeFile(fixed, cfg) != nil {
			return nil, settingErr("config", "%v", err)
		}
	}
	for name, names := range keyNames {
		if p, ok := cfg.Providers[name]; ok {
			p.KeyNames = names
			cfg.Providers[name] = p
		}
	}
	cfg.providerOrder = mappingKeys(&root, "providers")
	cfg.modelOrder = mappingKeys(&root, "models")
	for i := range cfg.ClientKeys {
		cfg.ClientKeys[i].Origin = "config"
	}
	return cfg, nil
}

// takeKeyNames rewrites each provider key written as a mapping, {name:
// NAME, key: SPEC}, in the document doc as its SPEC, and returns the names
// by provider and position ("" where a key is a plain spec); nil when no
// key is written so.
func takeKeyNames(doc *yaml.Node) (map[string][]string, error) {
	providers := mappingValue(doc, "providers")
	if providers == nil || providers.Kind != yaml.MappingNode {
		return nil, nil
	}
	var out map[string][]string
	for i := 0; i+1 < len(providers.Content); i += 2 {
		name, keys := providers.Content[i].Value, mappingValue(providers.Content[i+1], "keys")
		if keys == nil || keys.Kind != yaml.SequenceNode {
			continue
		}
		names := make([]string, len(keys.Content))
		named := false
		for j, item := range keys.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			path := fmt.Sprintf("providers.%s.keys[%d]", name, j)
			var spec *yaml.Node
			for k := 0; k+1 < len(item.Content); k += 2 {
				key, val := item.Content[k], item.Content[k+1]
				switch {
				case key.Value != "name" && key.Value != "key":
					return nil, fmt.Errorf("line %d: unknown key %q in %s: a provider key is a literal, env:NAME, or {name: NAME, key: KEY}", key.Line, key.Value, path)
				case val.Kind != yaml.ScalarNode:
					return nil, fmt.Errorf("line %d: %s.%s must be a string", val.Line, path, key.Value)
				case key.Value == "name":
					names[j] = strings.TrimSpace(val.Value)
				default:
					spec = val
				}
			}
			if spec == nil || strings.TrimSpace(spec.Value) == "" {
				return nil, fmt.Errorf("line %d: %s needs its key: {name: NAME, key: KEY}", item.Line, path)
			}
			if names[j] != "" && slices.Contains(names[:j], names[j]) {
				return nil, fmt.Errorf("line %d: %s: another key of provider %s is called %q", item.Line, path, name, names[j])
			}
			keys.Content[j] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: spec.Value, Line: spec.Line, Column: spec.Column}
			named = true
		}
		if named {
			if out == nil {
				out = make(map[string][]string)
			}
			out[name] = names
		}
	}
	return out, nil
}

// mappingValue returns the value under key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func decodeFile(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty file
		return err
	}
	return nil
}

// mappingKeys returns the keys of the top-level mapping named key, in
// the order the document has them.
func mappingKeys(root *yaml.Node, key string) []string {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != key || doc.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[i+1]
		keys := make([]string, 0, len(m.Content)/2)
		for j := 0; j+1 < len(m.Content); j += 2 {
			keys = append(keys, m.Content[j].Value)
		}
		return keys
	}
	return nil
}

// ProviderList returns the providers in order: the file's order, then
// the ones added later (seed variables, the admin store) in the order
// they were added. Name and Origin are filled in.
func (c *Config) ProviderList() []Provider {
	out := make([]Provider, 0, len(c.Providers))
	for _, name := range orderedNames(c.providerOrder, c.Providers) {
		p := c.Providers[name]
		p.Name = name
		if p.Origin == "" {
			p.Origin = "config"
		}
		out = append(out, p)
	}
	return out
}

// ModelList returns the model routes in order, as ProviderList does.
func (c *Config) ModelList() []Model {
	out := make([]Model, 0, len(c.Models))
	for _, name := range orderedNames(c.modelOrder, c.Models) {
		m := c.Models[name]
		m.Name = name
		if m.Origin == "" {
			m.Origin = "config"
		}
		out = append(out, m)
	}
	return out
}

// AddProvider adds a provider after the others (seed variables, the
// admin store). A name already taken is an error naming both origins.
func (c *Config) AddProvider(p Provider) error {
	if c.Providers == nil {
		c.Providers = make(map[string]Provider)
	}
	if old, ok := c.Providers[p.Name]; ok {
		return fmt.Errorf("provider %q from %s is already defined by %s", p.Name, p.Origin, originOf(old.Origin))
	}
	c.Providers[p.Name] = p
	c.providerOrder = append(c.providerOrder, p.Name)
	return nil
}

// AddModel adds a model route after the others, as AddProvider does.
func (c *Config) AddModel(m Model) error {
	if c.Models == nil {
		c.Models = make(map[string]Model)
	}
	if old, ok := c.Models[m.Name]; ok {
		return fmt.Errorf("model %q from %s is already defined by %s", m.Name, m.Origin, originOf(old.Origin))
	}
	c.Models[m.Name] = m
	c.modelOrder = append(c.modelOrder, m.Name)
	return nil
}

func originOf(o string) string {
	if o == "" {
		return "config"
	}
	return o
}

// orderedNames lists m's keys: those in order first (as far as they are
// in m), then the rest sorted, so that the result never depends on map
// iteration.
func orderedNames[V any](order []string, m map[string]V) []string {
	names := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, n := range order {
		if _, ok := m[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range m {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// Clone returns a deep enough copy of c for a reload to change the
// gateway parts without touching the running configuration.
func (c *Config) Clone() *Config {
	d := *c
	d.Providers = maps.Clone(c.Providers)
	d.Models = maps.Clone(c.Models)
	d.ClientKeys = slices.Clone(c.ClientKeys)
	d.Presets = maps.Clone(c.Presets)
	d.providerOrder = slices.Clone(c.providerOrder)
	d.modelOrder = slices.Clone(c.modelOrder)
	return &d
}
