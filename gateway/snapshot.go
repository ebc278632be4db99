package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/privacy"
)

// Deps are the long-lived parts a snapshot is built on: transports keep
// their connection pools and Health keeps what was learned across
// snapshots.
type Deps struct {
	// Transport returns the socket→fetch transport for a preset or
	// provider in a mode: auto, socket, fetch, or "" for the global
	// setting. name is a preset's name, or ProviderPrefix and a gateway
	// provider's (a provider may share a preset's name; its requests count
	// under the gateway). Required.
	Transport func(name, mode string) http.RoundTripper
	// Guarded carries generic mode's requests, behind the address guard.
	// Required.
	Guarded http.RoundTripper
	// Resume wraps a Gemini transport with stream resume; nil when off.
	// name is as Transport's.
	Resume func(name string, next http.RoundTripper) http.RoundTripper
	// Translate wraps a provider transport with the Responses API over
	// Chat Completions; nil leaves /v1/responses to native providers only.
	Translate func(name string, next http.RoundTripper) http.RoundTripper
	// Health is required.
	Health *Health
	// Getenv resolves env:NAME keys. Default os.Getenv.
	Getenv func(string) string
}

// ProviderPrefix starts the name Deps is given for a gateway provider.
const ProviderPrefix = "gateway/"

// Snapshot is the compiled configuration: presets, providers, model
// routes and client credentials. It is never changed once built; a reload
// builds a new one and swaps it whole, and requests in flight keep theirs.
type Snapshot struct {
	presets      map[string]*Provider // by name and alias
	presetList   []*Provider
	providers    map[string]*Provider
	providerList []*Provider
	routes       map[string]*Route // literal names
	patterns     []*Route          // * patterns, most specific first
	routeList    []*Route
	generic      *Provider
	keys         *access.Keys
	health       *Health
	maxAttempts  int
	strategy     Strategy  // for models without a route
	implicit     *sync.Map // provider names → *Route: round-robin state of implicit routes

	// Warnings are things the operator should know, logged at start and
	// on reload.
	Warnings []string
}

var validProviderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Compile builds a snapshot from a configuration. Errors are
// *config.SettingError naming the setting.
func Compile(cfg *config.Config, deps Deps) (*Snapshot, error) {
	getenv := deps.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s := &Snapshot{
		presets:     make(map[string]*Provider),
		providers:   make(map[string]*Provider),
		routes:      make(map[string]*Route),
		implicit:    new(sync.Map),
		health:      deps.Health,
		maxAttempts: cmp.Or(cfg.Gateway.MaxAttempts, 3),
	}
	if cfg.Gateway.MaxAttempts < 0 || cfg.Gateway.MaxAttempts > 20 {
		return nil, settingErr("gateway.max_attempts", "must be from 1 to 20")
	}
	var ok bool
	if s.strategy, ok = parseStrategy(cfg.Gateway.Strategy); !ok {
		return nil, settingErr("gateway.strategy", "must be one of %s", strategyNames())
	}
	if h := cfg.Gateway.AuthHeader; h != "" && (!httpguts.ValidHeaderFieldName(h) || privacy.Classify(h) == privacy.Never) {
		return nil, settingErr("gateway.auth_header", "must be a valid header name that may reach llmproxy (not a hop-by-hop, forwarding or browser header)")
	}

	set, err := cfg.PresetSet()
	if err != nil {
		return nil, settingErr("presets", "%v", err)
	}
	for _, p := range set.All() {
		prov, err := s.compilePreset(cfg, p, deps, getenv)
		if err != nil {
			return nil, err
		}
		s.presetList = append(s.presetList, prov)
		for _, name := range append([]string{p.Name}, p.Aliases...) {
			s.presets[name] = prov
		}
	}
	// Generic mode forwards any header not known to identify the client
	// (an arbitrary API may need it): the denylist, not an allowlist.
	s.generic = &Provider{
		Name: "generic", Kind: KindOpenAI, Origin: "generic",
		policy:    privacy.New(privacy.Options{Fingerprint: cfg.ForwardSDKHeaders, Secret: cfg.AuthToken}),
		transport: deps.Guarded, raw: deps.Guarded, breaker: deps.Health.breaker("\x00generic"),
	}
	s.generic.targets = []*target{{provider: s.generic, weight: 1, bal: &Balance{}}}

	for _, pc := range cfg.ProviderList() {
		prov, err := s.compileProvider(cfg, pc, set, deps, getenv)
		if err != nil {
			return nil, err
		}
		s.providers[prov.Name] = prov
		s.providerList = append(s.providerList, prov)
	}
	for _, mc := range cfg.ModelList() {
		r, err := s.compileRoute(mc)
		if err != nil {
			return nil, err
		}
		s.routeList = append(s.routeList, r)
		if r.pattern.Literal() {
			s.routes[r.Name] = r
		} else {
			s.patterns = append(s.patterns, r)
		}
	}
	// More literal characters first; configuration order among equals.
	slices.SortStableFunc(s.patterns, func(a, b *Route) int {
		return cmp.Compare(b.pattern.Specificity(), a.pattern.Specificity())
	})

	s.keys, err = access.Compile(cfg.ClientKeys, access.Options{
		OperatorToken: cfg.AuthToken, AuthHeader: cfg.Gateway.AuthHeader, Public: cfg.Gateway.Public, Getenv: getenv,
	})
	if err != nil {
		return nil, err
	}
	s.warn(cfg)
	return s, nil
}

// isVariable reports whether an origin is a seed variable's name
// (ROUTES_CONFIG, …): its errors are named after the variable; entries
// from the file or the admin store are named by their keys.
func isVariable(origin string) bool {
	return origin != "" && strings.ToUpper(origin) == origin
}

func settingErr(setting, format string, args ...any) error {
	return &config.SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
}

func strategyNames() string {
	names := make([]string, len(Strategies))
	for i, st := range Strategies {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// presetKind is the API a preset speaks.
func presetKind(p *preset.Preset) Kind {
	switch p.Key {
	case preset.KeyXAPIKey:
		return KindAnthropic
	case preset.KeyGoog:
		return KindGemini
	}
	return KindOpenAI
}

func (s *Snapshot) compilePreset(cfg *config.Config, p *preset.Preset, deps Deps, getenv func(string) string) (*Provider, error) {
	setting := "presets." + p.Name
	prov := &Provider{
		Name: p.Name, Kind: presetKind(p), Origin: "preset", preset: p, style: p.Key, defaults: p.Defaults,
		weight: 1, breaker: deps.Health.breaker("preset/" + p.Name),
	}
	for _, raw := range p.URLs() {
		u, err := preset.ParseBaseURL(raw)
		if err != nil {
			return nil, settingErr(setting, "%v", err)
		}
		prov.bases = append(prov.bases, u)
	}
	for b, u := range prov.bases {
		prov.targets = append(prov.targets, &target{provider: prov, base: b, weight: 1,
			bal: deps.Health.balance("preset/"+p.Name, u.String())})
	}
	allow := append(slices.Clone(privacy.PresetHeaders), p.Headers...)
	prov.policy = privacy.New(privacy.Options{Allow: allow, Fingerprint: cfg.ForwardSDKHeaders, Secret: cfg.AuthToken})
	prov.transport = deps.Transport(p.Name, p.Transport)
	prov.raw = prov.transport
	if p.Resume && deps.Resume != nil {
		prov.transport = deps.Resume(p.Name, prov.transport)
	}
	if len(p.Keys) > 0 {
		if p.Key == preset.KeyPath {
			return nil, settingErr(setting+".keys", "%s takes its key in the path: server-side keys cannot be injected", p.Name)
		}
		keys, err := compileKeys("preset/"+p.Name, p.Keys, deps.Health, getenv)
		if err != nil {
			return nil, settingErr(setting+".keys", "%v", err)
		}
		prov.keys = keys
		prov.prepareKeys()
	}
	return prov, nil
}

func (s *Snapshot) compileProvider(cfg *config.Config, pc config.Provider, set *preset.Set, deps Deps, getenv func(string) string) (*Provider, error) {
	setting := "providers." + pc.Name
	if isVariable(pc.Origin) {
		setting = pc.Origin + ": provider " + pc.Name
	}
	if !validProviderName.MatchString(pc.Name) {
		return nil, settingErr(setting, "a provider name is letters, digits, '.', '_' and '-'")
	}
	prov := &Provider{Name: pc.Name, Origin: pc.Origin, weight: cmp.Or(pc.Weight, 1), apiVersion: pc.APIVersion}
	if pc.Weight < 0 {
		return nil, settingErr(setting+".weight", "must not be negative")
	}
	var allow []string
	mode := pc.Transport
	switch {
	case pc.Preset != "" && pc.BaseURL != "":
		return nil, settingErr(setting, "give either base_url or preset, not both")
	case pc.Preset != "":
		p := set.Lookup(pc.Preset)
		if p == nil {
			return nil, settingErr(setting+".preset", "no preset is called %q (llmproxy presets lists them)", pc.Preset)
		}
		if p.Key == preset.KeyPath || p.Key == preset.KeyBot {
			return nil, settingErr(setting+".preset", "%s is not an LLM API", pc.Preset)
		}
		prov.preset = p
		prov.Kind = presetKind(p)
		prov.defaults = p.Defaults
		for _, raw := range p.URLs() {
			u, err := preset.ParseBaseURL(strings.TrimSuffix(raw, "/") + p.ClientPath)
			if err != nil {
				return nil, settingErr(setting, "%v", err)
			}
			prov.bases = append(prov.bases, u)
		}
		allow = p.Headers
		mode = cmp.Or(mode, p.Transport)
	case pc.BaseURL != "":
		u, err := preset.ParseBaseURL(strings.TrimSuffix(pc.BaseURL, "/"))
		if err != nil {
			return nil, settingErr(setting+".base_url", "%v", err)
		}
		prov.bases = []*url.URL{u}
	default:
		return nil, settingErr(setting, "needs a base_url (in the SDK convention, e.g. https://api.openai.com/v1) or a preset")
	}
	if pc.Kind != "" {
		if pc.Preset != "" && Kind(pc.Kind) != prov.Kind {
			return nil, settingErr(setting+".kind", "preset %s speaks %s, not %s", pc.Preset, prov.Kind, pc.Kind)
		}
		prov.Kind = Kind(pc.Kind)
	}
	prov.Kind = cmp.Or(prov.Kind, KindOpenAI)
	switch prov.Kind {
	case KindOpenAI, KindAnthropic, KindGemini, KindAzure:
	default:
		return nil, settingErr(setting+".kind", "must be openai, anthropic, gemini or azure")
	}
	prov.style = styleOf(prov.Kind)
	if prov.Kind == KindAnthropic && prov.defaults == nil {
		prov.defaults = map[string]string{"Anthropic-Version": "2023-06-01"}
	}
	switch mode {
	case "", "auto", "socket", "fetch":
	default:
		return nil, settingErr(setting+".transport", "must be auto, socket or fetch")
	}

	switch pc.Responses {
	case "":
		// OpenAI itself (and Azure's v1 API) have the Responses API;
		// every other OpenAI-compatible provider gets it translated.
		prov.native = prov.Kind == KindAzure || prov.bases[0].Host == "api.openai.com"
	case "native":
		prov.native = true
	case "translate":
	default:
		return nil, settingErr(setting+".responses", "must be native or translate")
	}
	if pc.Responses != "" && prov.Kind != KindOpenAI && prov.Kind != KindAzure {
		return nil, settingErr(setting+".responses", "only openai and azure providers serve /v1/responses")
	}

	var err error
	if prov.models, err = access.CompilePatterns(pc.Models); err != nil {
		return nil, settingErr(setting+".models", "%v", err)
	}
	if pc.Models == nil {
		prov.models = access.Patterns{} // serves only what routes send it
	}
	if len(pc.Headers) > 0 {
		prov.headers = make(http.Header, len(pc.Headers))
		for name, value := range pc.Headers {
			if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
				return nil, settingErr(setting+".headers", "header %q has an invalid name or value", name)
			}
			if privacy.Classify(name) == privacy.Never {
				return nil, settingErr(setting+".headers", "%q is a header llmproxy never sends (hop-by-hop, forwarding, browser or tracing)", name)
			}
			prov.headers[textproto.CanonicalMIMEHeaderKey(name)] = []string{value}
		}
	}
	if prov.keys, err = compileKeys(pc.Name, pc.Keys, deps.Health, getenv); err != nil {
		return nil, settingErr(setting+".keys", "%v", err)
	}
	for i, name := range pc.KeyNames {
		if i < len(prov.keys) && name != "" {
			prov.keys[i].Name = name
		}
	}
	// Logs, statistics and usage tell keys apart by name: a name given
	// may not be one another key has by default (key-2, a variable's).
	for i, k := range prov.keys {
		for _, other := range prov.keys[:i] {
			if other.Name == k.Name {
				return nil, settingErr(setting+".keys", "two keys are called %s: name one of them otherwise ({name: NAME, key: KEY})", k.Name)
			}
		}
	}
	prov.prepareKeys()
	prov.unusable = pc.Unusable
	allow = append(slices.Clone(privacy.PresetHeaders), allow...)
	prov.policy = privacy.New(privacy.Options{Allow: allow, Fingerprint: cfg.ForwardSDKHeaders, Secret: cfg.AuthToken})
	prov.breaker = deps.Health.breaker(pc.Name)
	prov.transport = deps.Transport(ProviderPrefix+pc.Name, mode)
	prov.raw = prov.transport
	if prov.Kind == KindGemini && deps.Resume != nil {
		prov.transport = deps.Resume(ProviderPrefix+pc.Name, prov.transport)
	}
	if !prov.native && (prov.Kind == KindOpenAI || prov.Kind == KindAzure) && deps.Translate != nil {
		prov.translated = deps.Translate(pc.Name, prov.transport)
	}
	return prov, nil
}

// compileKeys resolves key specs (a literal or env:NAME each).
func compileKeys(provider string, specs []string, h *Health, getenv func(string) string) ([]*Key, error) {
	var keys []*Key
	seen := map[string]bool{}
	for i, spec := range specs {
		spec = strings.TrimSpace(spec)
		name := fmt.Sprintf("key-%d", i+1)
		secret := spec
		if env, ok := strings.CutPrefix(spec, "env:"); ok {
			name = env
			secret = strings.TrimSpace(getenv(env))
			if secret == "" {
				return nil, fmt.Errorf("environment variable %s is not set", env)
			}
		}
		if secret == "" {
			return nil, fmt.Errorf("key %d is empty", i+1)
		}
		// A key file with a trailing newline is the usual mistake; the
		// name is safe to print, the value never.
		if !httpguts.ValidHeaderFieldValue(secret) || strings.ContainsAny(secret, " \t") {
			return nil, fmt.Errorf("key %s holds whitespace or a control character", name)
		}
		if seen[secret] {
			return nil, fmt.Errorf("key %s is listed twice", name)
		}
		seen[secret] = true
		keys = append(keys, &Key{Name: name, Masked: mask(secret), secret: secret, health: h.key(provider, fingerprint(provider, secret))})
	}
	return keys, nil
}

func (s *Snapshot) compileRoute(mc config.Model) (*Route, error) {
	setting := "models." + mc.Name
	if isVariable(mc.Origin) {
		setting = mc.Origin + ": model " + mc.Name
	}
	pat, err := access.CompilePattern(mc.Name)
	if err != nil {
		return nil, settingErr(setting, "%v", err)
	}
	st, ok := parseStrategy(mc.Strategy)
	if !ok {
		return nil, settingErr(setting+".strategy", "must be one of %s", strategyNames())
	}
	if len(mc.Targets) == 0 {
		return nil, settingErr(setting+".targets", "a model needs at least one target")
	}
	r := &Route{Name: mc.Name, Origin: mc.Origin, Strategy: st, pattern: pat, pricing: compilePricing(mc.Pricing)}
	if mc.Pricing != nil && (mc.Pricing.InputPer1M < 0 || mc.Pricing.OutputPer1M < 0 || mc.Pricing.CachedPer1M != nil && *mc.Pricing.CachedPer1M < 0) {
		return nil, settingErr(setting+".pricing", "prices must not be negative")
	}
	for i, tc := range mc.Targets {
		prov := s.providers[tc.Provider]
		if prov == nil {
			return nil, settingErr(fmt.Sprintf("%s.targets[%d].provider", setting, i), "no provider is called %q", tc.Provider)
		}
		if tc.Weight < 0 {
			return nil, settingErr(fmt.Sprintf("%s.targets[%d].weight", setting, i), "must not be negative")
		}
		for b := range prov.bases {
			r.targets = append(r.targets, &target{
				provider: prov, base: b, model: tc.Model, weight: cmp.Or(tc.Weight, prov.weight),
				bal: s.health.balance(prov.Name, prov.bases[b].String()),
			})
		}
	}
	r.Info = ModelInfo{
		ID: mc.Name, DisplayName: mc.DisplayName, Description: mc.Description,
		ContextWindow: mc.ContextWindow, MaxInputTokens: mc.MaxInputTokens, MaxOutputTokens: mc.MaxOutputTokens,
		Pricing: mc.Pricing, Flags: mc.Flags, Metadata: mc.Metadata, OwnedBy: r.targets[0].provider.Name,
	}
	return r, nil
}

func (s *Snapshot) warn(cfg *config.Config) {
	if len(s.providerList) > 0 && !s.keys.HasCredentials() && !s.keys.Public() {
		s.Warnings = append(s.Warnings, "the gateway has providers but no client credential: every request to /v1/… will get 401; "+
			"add client_keys, set PROXY_AUTH_TOKEN or an auth token, or set gateway.public: true")
	}
	for _, p := range s.presetList {
		if p.Keyed() && !s.keys.HasCredentials() {
			s.Warnings = append(s.Warnings, fmt.Sprintf("preset %s holds server-side keys but there is no client credential: its requests will get 401", p.Name))
		}
	}
	for _, k := range s.keys.List() {
		if k.Budget == nil {
			continue
		}
		for _, r := range s.routeList {
			if r.pricing != nil && r.pricing.Currency != k.Budget.Currency && (r.pattern.Literal() && k.AllowsModelName(r.Name)) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("client key %s has a budget in %s, but model %s is priced in %s: its cost does not count toward the budget",
					k.Name, k.Budget.Currency, r.Name, r.pricing.Currency))
			}
		}
	}
}

// On reports whether the gateway has providers.
func (s *Snapshot) On() bool { return len(s.providerList) > 0 }

// Keys returns the client credentials.
func (s *Snapshot) Keys() *access.Keys { return s.keys }

// WithoutKeys returns a snapshot that is s less the client keys drop
// picks, and how many it took: nothing is compiled again (a revocation
// takes effect even when the configuration cannot be rebuilt), and the
// two share everything else, round-robin state included. s itself is
// returned when drop picks none.
func (s *Snapshot) WithoutKeys(drop func(*access.Key) bool) (*Snapshot, int) {
	keys, n := s.keys.Without(drop)
	if n == 0 {
		return s, 0
	}
	out := *s
	out.keys = keys
	return &out, n
}

// Preset returns the preset reached by a first path segment, or nil.
func (s *Snapshot) Preset(segment string) *Provider { return s.presets[segment] }

// Presets returns the presets in table order.
func (s *Snapshot) Presets() []*Provider { return s.presetList }

// Providers returns the gateway's providers in configuration order.
func (s *Snapshot) Providers() []*Provider { return s.providerList }

// Routes returns the model routes in configuration order.
func (s *Snapshot) Routes() []*Route { return s.routeList }

// Generic returns generic mode's provider.
func (s *Snapshot) Generic() *Provider { return s.generic }

// Health returns the health registry.
func (s *Snapshot) Health() *Health { return s.health }
