package gateway

import (
	"cmp"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
)

// Strategy orders a route's targets for a request: the first is tried
// first, the rest are the failover order.
type Strategy string

const (
	Fallback      Strategy = "fallback"       // in the configured order
	RoundRobin    Strategy = "round_robin"    // in turn, by weight (smooth weighted round robin)
	Random        Strategy = "random"         // uniformly at random
	Weighted      Strategy = "weighted"       // at random, in proportion to weight
	LeastUsed     Strategy = "least_used"     // fewest requests so far first
	LeastInflight Strategy = "least_inflight" // fewest requests running first
	Latency       Strategy = "latency"        // lowest time to first byte first (untried first)
)

// Strategies lists every strategy, for validation and documentation.
var Strategies = []Strategy{Fallback, RoundRobin, Random, Weighted, LeastUsed, LeastInflight, Latency}

func parseStrategy(s string) (Strategy, bool) {
	if s == "" {
		return Fallback, true
	}
	st := Strategy(s)
	return st, slices.Contains(Strategies, st)
}

// Route is where a public model name (or pattern) goes.
type Route struct {
	Name     string // the public name or pattern
	Origin   string
	Strategy Strategy
	Info     ModelInfo

	pattern access.Pattern
	targets []*target
	pricing *Pricing

	mu sync.Mutex // guards cw
	cw []int      // smooth weighted round robin: current weights
}

// Targets returns the route's targets (provider name and upstream model).
func (r *Route) Targets() []TargetInfo {
	out := make([]TargetInfo, len(r.targets))
	for i, t := range r.targets {
		out[i] = TargetInfo{Provider: t.provider.Name, Model: t.model, Weight: t.weight}
	}
	return out
}

// TargetInfo describes a route's target for pages and exports.
type TargetInfo struct {
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	Weight   int    `json:"weight,omitempty"`
}

// target is one way to serve a route: a provider, which of its base URLs
// (presets may have several), the upstream model and a weight.
type target struct {
	provider *Provider
	base     int    // index into provider.bases
	model    string // upstream model; "" keeps the requested one
	weight   int
	bal      *Balance

	// lastURL is the upstream URL of this target's last call without a
	// query of its own, shared by the calls that follow for the same
	// endpoint (a URL sent upstream is never changed): see Plan.url.
	lastURL atomic.Pointer[targetURL]
}

// targetURL is a target's upstream URL for one path.
type targetURL struct {
	call  Call // API, Version and Endpoint
	model string
	u     *url.URL
}

// ModelInfo is what /v1/models shows of a model.
type ModelInfo struct {
	ID              string          `json:"id"`
	DisplayName     string          `json:"display_name,omitempty"`
	Description     string          `json:"description,omitempty"`
	ContextWindow   int             `json:"context_length,omitempty"`
	MaxInputTokens  int             `json:"max_input_tokens,omitempty"`
	MaxOutputTokens int             `json:"max_output_tokens,omitempty"`
	Pricing         *config.Pricing `json:"pricing,omitempty"`
	Flags           []string        `json:"flags,omitempty"`
	Metadata        map[string]any  `json:"metadata,omitempty"`
	OwnedBy         string          `json:"owned_by"`
}

// Pricing is a model's price in nano-units (1e-9) of Currency per token.
type Pricing struct {
	Currency                     string
	Input, CachedInput, Output   float64 // per token, in nanos
	hasCached                    bool
	InputPer1M, OutputPer1M, Raw float64
}

// order returns the route's targets in the order this request tries
// them: by strategy, then providers whose breaker is open moved to the end
// (a cooled provider is a last resort, not skipped). They are copied into
// buf's array when they fit (the plan's), else into a new one.
func (r *Route) order(now time.Time, buf []*target) []*target {
	ts := append(buf[:0], r.targets...)
	if len(ts) > 1 {
		switch r.Strategy {
		case RoundRobin:
			r.roundRobin(ts)
		case Random:
			rand.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		case Weighted:
			weightedShuffle(ts)
		case LeastUsed:
			slices.SortStableFunc(ts, func(a, b *target) int { return cmp.Compare(a.bal.used(), b.bal.used()) })
		case LeastInflight:
			slices.SortStableFunc(ts, func(a, b *target) int {
				return cmp.Compare(a.bal.inflight(), b.bal.inflight())
			})
		case Latency:
			slices.SortStableFunc(ts, func(a, b *target) int { return cmp.Compare(a.bal.Latency(), b.bal.Latency()) })
		}
	}
	cooled := 0
	for _, t := range ts {
		if t.provider.breaker.cooled(now) {
			cooled++
		}
	}
	if cooled > 0 && cooled < len(ts) {
		slices.SortStableFunc(ts, func(a, b *target) int {
			return cmp.Compare(openRank(a, now), openRank(b, now))
		})
	}
	return ts
}

func openRank(t *target, now time.Time) int {
	if t.provider.breaker.cooled(now) {
		return 1
	}
	return 0
}

// roundRobin puts the next target by smooth weighted round robin (as
// nginx does: each pick adds every weight to its current weight, takes
// the largest and subtracts the total from it) first, and the others
// after it in configured order.
func (r *Route) roundRobin(ts []*target) {
	r.mu.Lock()
	if len(r.cw) != len(r.targets) {
		r.cw = make([]int, len(r.targets))
	}
	total, best := 0, 0
	for i, t := range r.targets {
		r.cw[i] += t.weight
		total += t.weight
		if r.cw[i] > r.cw[best] {
			best = i
		}
	}
	r.cw[best] -= total
	r.mu.Unlock()
	// ts is a copy of r.targets in configured order: rotate it.
	rotated := append(slices.Clone(ts[best:]), ts[:best]...)
	copy(ts, rotated)
}

// weightedShuffle orders targets at random, each draw in proportion to
// weight (Efraimidis–Spirakis: sort by u^(1/w) descending).
func weightedShuffle(ts []*target) {
	keys := make(map[*target]float64, len(ts))
	for _, t := range ts {
		keys[t] = math.Pow(rand.Float64(), 1/float64(max(t.weight, 1)))
	}
	slices.SortStableFunc(ts, func(a, b *target) int { return cmp.Compare(keys[b], keys[a]) })
}

// Cost returns what u cost under p, in nanos of p.Currency; 0 without
// pricing.
func (p *Pricing) Cost(input, cached, cacheWrite, output int64) int64 {
	if p == nil {
		return 0
	}
	cachedPrice := p.Input
	if p.hasCached {
		cachedPrice = p.CachedInput
	}
	// input includes the cached tokens and the cache writes (meter.Usage);
	// cache writes are billed as input here, so providers that charge a
	// premium for them (Anthropic: 1.25×) are slightly under-counted.
	_ = cacheWrite
	c := float64(input-cached)*p.Input + float64(cached)*cachedPrice + float64(output)*p.Output
	return int64(math.Round(c))
}

func compilePricing(c *config.Pricing) *Pricing {
	if c == nil {
		return nil
	}
	p := &Pricing{
		// Budgets compare currencies lower-cased: USD is usd.
		Currency: strings.ToLower(cmp.Or(strings.TrimSpace(c.Currency), "usd")),
		// per 1M tokens → nanos per token: × 1e9 / 1e6
		Input: c.InputPer1M * 1e3, Output: c.OutputPer1M * 1e3,
		InputPer1M: c.InputPer1M, OutputPer1M: c.OutputPer1M,
	}
	if c.CachedPer1M != nil {
		p.CachedInput, p.hasCached = *c.CachedPer1M*1e3, true
	}
	return p
}
