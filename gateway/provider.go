package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/privacy"
)

// Kind is the API a provider speaks.
type Kind string

const (
	KindOpenAI    Kind = "openai"    // any OpenAI-compatible API
	KindAnthropic Kind = "anthropic" // the Messages API
	KindGemini    Kind = "gemini"    // the Gemini API
	KindAzure     Kind = "azure"     // OpenAI-compatible, key in api-key
)

// api is the request format a provider of this kind takes.
func (k Kind) api() API {
	switch k {
	case KindAnthropic:
		return Anthropic
	case KindGemini:
		return Gemini
	}
	return OpenAI
}

// Provider is an upstream API with its keys: a configured provider, a
// preset (its upstreams are its base URLs), or generic mode's any-URL
// provider. Immutable once compiled; its health lives in Health, which
// outlives snapshots.
type Provider struct {
	Name   string
	Kind   Kind
	Origin string // config, a seed variable's name, store, preset

	bases    []*url.URL
	targets  []*target // presets and generic mode: one per base URL
	keys     []*Key
	weight   int
	models   access.Patterns
	headers  http.Header       // static headers, set on every request
	defaults map[string]string // set when the client sent none
	policy   *privacy.Policy
	style    preset.KeyStyle // how a key is sent
	// transport is socket, else fetch (and Gemini resume for presets and
	// providers that want it); translated wraps it with the Responses
	// translation for providers without that API.
	transport  http.RoundTripper
	raw        http.RoundTripper // socket, else fetch, without resume: WebSockets
	translated http.RoundTripper
	native     bool   // has the Responses API itself
	apiVersion string // ?api-version= (Azure)
	preset     *preset.Preset
	breaker    *Breaker
	next       atomic.Uint64 // round robin over keys
	nextBase   atomic.Uint64 // round robin over a preset's upstreams
	unusable   int           // keys it has that cannot be used here (config.Provider.Unusable)
}

// Keyed reports whether the provider holds server-side keys — usable ones,
// or only ones that cannot be used here, and then no request is sent.
func (p *Provider) Keyed() bool { return len(p.keys) > 0 || p.unusable > 0 }

// Keys returns the provider's keys.
func (p *Provider) Keys() []*Key { return p.keys }

// Hosts returns the hosts of its base URLs (no paths: they may be private).
func (p *Provider) Hosts() []string {
	out := make([]string, len(p.bases))
	for i, u := range p.bases {
		out[i] = u.Host
	}
	return out
}

// Breaker returns the provider's circuit breaker.
func (p *Provider) Breaker() *Breaker { return p.breaker }

// Preset returns the preset the provider stands for, or nil.
func (p *Provider) Preset() *preset.Preset { return p.preset }

// Key is one provider key. The secret is only ever written into the
// provider's own header on the way to that provider.
type Key struct {
	// Name names it in logs, stats and pages: the variable it came from
	// (env:NAME) or "key-N". Masked is "…" and its last four characters.
	Name, Masked string
	secret       string
	health       *KeyHealth
	header       string   // the header the key goes in (prepareKeys)
	value        []string // and its value there
}

// Health returns the key's health.
func (k *Key) Health() *KeyHealth { return k.health }

// fingerprint identifies a key's secret across reloads without holding it.
func fingerprint(provider, secret string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + secret))
	return hex.EncodeToString(sum[:8])
}

// mask shows the last four characters of a secret, as the privacy
// reference allows, and only when the secret is long enough that four
// characters give nothing away.
func mask(secret string) string {
	if len(secret) < 12 {
		return "…"
	}
	return "…" + secret[len(secret)-4:]
}

// styleOf is how a provider of a kind takes its key.
func styleOf(k Kind) preset.KeyStyle {
	switch k {
	case KindAnthropic:
		return preset.KeyXAPIKey
	case KindGemini:
		return preset.KeyGoog
	case KindAzure:
		return keyAzure
	}
	return preset.KeyBearer
}

// keyAzure: Azure OpenAI takes its key in api-key.
const keyAzure preset.KeyStyle = "api-key"

// inject writes the key into h the way the provider takes it: the header
// and value made once per key (prepareKeys), shared by every request (a
// header value is never changed in place; provider headers are shared
// the same way).
func (p *Provider) inject(h http.Header, k *Key) {
	name, value := k.header, k.value
	if value == nil {
		name, value = keyHeader(p.style, k.secret)
	}
	h[name] = value
}

// prepareKeys makes each key's header and value.
func (p *Provider) prepareKeys() {
	for _, k := range p.keys {
		k.header, k.value = keyHeader(p.style, k.secret)
	}
}

// keyHeader is the header a key goes in for a style, and its value.
func keyHeader(style preset.KeyStyle, secret string) (string, []string) {
	switch style {
	case preset.KeyXAPIKey:
		return "X-Api-Key", []string{secret}
	case preset.KeyGoog:
		return "X-Goog-Api-Key", []string{secret}
	case keyAzure:
		return "Api-Key", []string{secret}
	case preset.KeyBot:
		return "Authorization", []string{"Bot " + secret}
	}
	return "Authorization", []string{"Bearer " + secret}
}

// pickKey chooses a key for the next attempt: the next available one in
// turn, skipping those tried already; with coolingOK, when every untried
// key is cooling down, the one that comes back soonest (a last resort:
// better than failing outright). Disabled keys are never chosen. nil when
// none is left.
func (p *Provider) pickKey(now time.Time, tried func(*Key) bool, coolingOK bool) *Key {
	n := len(p.keys)
	if n == 0 {
		return nil
	}
	start := int(p.next.Add(1)-1) % n
	var soonest *Key
	var soonestAt time.Time
	for i := range n {
		k := p.keys[(start+i)%n]
		if tried != nil && tried(k) {
			continue
		}
		ok, until := k.health.available(now)
		if ok {
			return k
		}
		if !until.IsZero() && (soonest == nil || until.Before(soonestAt)) {
			soonest, soonestAt = k, until
		}
	}
	if !coolingOK {
		return nil
	}
	return soonest
}

// base returns the index of the base URL to start with.
func (p *Provider) firstBase() int {
	if len(p.bases) == 1 {
		return 0
	}
	return int(p.nextBase.Add(1)-1) % len(p.bases)
}
