package stats

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproxy/llmproxy/meter"
)

// UsageKey names a row of gateway usage: the client key, the model asked
// for, the provider and the provider key that served it. Names only: a
// client key's name, a provider key's variable name or "key-N".
type UsageKey struct {
	Client, Model, Provider, Key string
}

type usageCounters struct {
	requests, input, cached, cacheWrite, output, reasoning atomic.Int64

	mu   sync.Mutex
	cost map[string]int64 // by currency, in nano-units
}

type usageTable struct {
	mu      sync.RWMutex
	rows    map[UsageKey]*usageCounters
	limited map[[2]string]*atomic.Int64 // client, limit → refusals
}

// Usage counts one answered gateway request: its tokens and what they
// cost (nanos of currency; currency "" when the model has no pricing).
func (s *Stats) Usage(client, model, provider, key string, u meter.Usage, cost int64, currency string) {
	// The model is the client's word, and a Prometheus label must be
	// UTF-8: one invalid name would fail every scrape of /metrics.
	if !utf8.ValidString(model) {
		model = strings.ToValidUTF8(model, "\uFFFD")
	}
	c := s.usageRow(UsageKey{client, model, provider, key})
	c.requests.Add(1)
	// Counters shared by every request of the row: one that would not
	// move is not written (most answers read no cache and no reasoning).
	add(&c.input, u.Input)
	add(&c.cached, u.CachedInput)
	add(&c.cacheWrite, u.CacheWrite)
	add(&c.output, u.Output)
	add(&c.reasoning, u.Reasoning)
	if currency != "" && cost > 0 {
		c.mu.Lock()
		if c.cost == nil {
			c.cost = make(map[string]int64)
		}
		c.cost[currency] += cost
		c.mu.Unlock()
	}
}

func add(c *atomic.Int64, n int64) {
	if n != 0 {
		c.Add(n)
	}
}

func (s *Stats) usageRow(k UsageKey) *usageCounters {
	t := &s.usage
	t.mu.RLock()
	c := t.rows[k]
	t.mu.RUnlock()
	if c != nil {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows == nil {
		t.rows = make(map[UsageKey]*usageCounters)
	}
	if c = t.rows[k]; c == nil {
		c = &usageCounters{}
		t.rows[k] = c
	}
	return c
}

// Limited counts a request refused by a client key's limit (rpm, tpm,
// max_parallel, budget).
func (s *Stats) Limited(client, limit string) {
	t := &s.usage
	k := [2]string{client, limit}
	t.mu.Lock()
	if t.limited == nil {
		t.limited = make(map[[2]string]*atomic.Int64)
	}
	n := t.limited[k]
	if n == nil {
		n = &atomic.Int64{}
		t.limited[k] = n
	}
	t.mu.Unlock()
	n.Add(1)
}

// UsageRow is one row of /stats "usage".
type UsageRow struct {
	Client         string           `json:"client"`
	Model          string           `json:"model"`
	Provider       string           `json:"provider"`
	Key            string           `json:"provider_key"`
	Requests       int64            `json:"requests"`
	InputTokens    int64            `json:"input_tokens"`
	CachedTokens   int64            `json:"cached_input_tokens"`
	CacheWrite     int64            `json:"cache_write_tokens"`
	OutputTokens   int64            `json:"output_tokens"`
	ReasoningToken int64            `json:"reasoning_tokens"`
	Cost           map[string]int64 `json:"cost_nanos,omitempty"`
}

// LimitRow counts a client key's refusals by limit.
type LimitRow struct {
	Client string `json:"client"`
	Limit  string `json:"limit"`
	Count  int64  `json:"refused"`
}

// UsageRows returns the usage table, sorted.
func (s *Stats) UsageRows() []UsageRow {
	t := &s.usage
	t.mu.RLock()
	keys := slices.Collect(maps.Keys(t.rows))
	rows := make([]UsageRow, 0, len(keys))
	for _, k := range keys {
		c := t.rows[k]
		r := UsageRow{Client: k.Client, Model: k.Model, Provider: k.Provider, Key: k.Key,
			Requests: c.requests.Load(), InputTokens: c.input.Load(), CachedTokens: c.cached.Load(),
			CacheWrite: c.cacheWrite.Load(), OutputTokens: c.output.Load(), ReasoningToken: c.reasoning.Load()}
		c.mu.Lock()
		if len(c.cost) > 0 {
			r.Cost = maps.Clone(c.cost)
		}
		c.mu.Unlock()
		rows = append(rows, r)
	}
	t.mu.RUnlock()
	slices.SortFunc(rows, func(a, b UsageRow) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Model, b.Model),
			cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Key, b.Key))
	})
	return rows
}

// LimitRows returns the refusals by limit, sorted.
func (s *Stats) LimitRows() []LimitRow {
	t := &s.usage
	t.mu.RLock()
	rows := make([]LimitRow, 0, len(t.limited))
	for k, n := range t.limited {
		rows = append(rows, LimitRow{Client: k[0], Limit: k[1], Count: n.Load()})
	}
	t.mu.RUnlock()
	slices.SortFunc(rows, func(a, b LimitRow) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Limit, b.Limit))
	})
	return rows
}

var (
	descGatewayRequests = prometheus.NewDesc("llmproxy_gateway_requests_total",
		"Gateway requests answered, by client key, model, provider and provider key (names, never secrets).",
		[]string{"client", "model", "provider", "provider_key"}, nil)
	descTokens = prometheus.NewDesc("llmproxy_gateway_tokens_total",
		"Tokens used, by client key, model, provider, provider key and type (input, cached_input, cache_write, output, reasoning).",
		[]string{"client", "model", "provider", "provider_key", "type"}, nil)
	descCost = prometheus.NewDesc("llmproxy_gateway_cost_total",
		"Cost of the tokens used, priced from the models' pricing, in units of the currency.",
		[]string{"client", "model", "provider", "provider_key", "currency"}, nil)
	descLimited = prometheus.NewDesc("llmproxy_client_limited_total",
		"Requests refused because a client key reached a limit (rpm, tpm, max_parallel, budget).",
		[]string{"client", "limit"}, nil)
)

func (c *collector) collectUsage(ch chan<- prometheus.Metric) {
	for _, r := range c.s.UsageRows() {
		l := []string{r.Client, r.Model, r.Provider, r.Key}
		ch <- prometheus.MustNewConstMetric(descGatewayRequests, prometheus.CounterValue, float64(r.Requests), l...)
		for typ, v := range map[string]int64{"input": r.InputTokens, "cached_input": r.CachedTokens,
			"cache_write": r.CacheWrite, "output": r.OutputTokens, "reasoning": r.ReasoningToken} {
			ch <- prometheus.MustNewConstMetric(descTokens, prometheus.CounterValue, float64(v), append(l, typ)...)
		}
		for cur, nanos := range r.Cost {
			ch <- prometheus.MustNewConstMetric(descCost, prometheus.CounterValue, float64(nanos)/1e9, append(l, cur)...)
		}
	}
	for _, r := range c.s.LimitRows() {
		ch <- prometheus.MustNewConstMetric(descLimited, prometheus.CounterValue, float64(r.Count), r.Client, r.Limit)
	}
}
