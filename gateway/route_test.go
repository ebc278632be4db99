package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/config"
)

// strategyRoute compiles the model m over providers a, b, c with a
// strategy and per-target weights (0: the provider's default of 1).
func strategyRoute(t *testing.T, strategy string, weights ...int) *Route {
	t.Helper()
	m := config.Model{Name: "m", Strategy: strategy}
	cfg := newConfig(t, openaiProvider("a", "ka"), openaiProvider("b", "kb"), openaiProvider("c", "kc"))
	for i, w := range weights {
		m.Targets = append(m.Targets, config.Target{Provider: string(rune('a' + i)), Weight: w})
	}
	if err := cfg.AddModel(m); err != nil {
		t.Fatal(err)
	}
	return newWorld(t).compile(cfg).routes["m"]
}

func firsts(r *Route, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(r.order(time.Now(), nil)[0].provider.Name)
	}
	return b.String()
}

func TestFallbackKeepsOrder(t *testing.T) {
	t.Parallel()
	r := strategyRoute(t, "fallback", 1, 5, 1)
	for range 5 {
		if got := providerNames(r.order(time.Now(), nil)); !equalStrings(got, []string{"a", "b", "c"}) {
			t.Fatalf("order %v", got)
		}
	}
	// Into the caller's room when they fit, leaving the route's own
	// order alone.
	var room [3]*target
	if got := providerNames(r.order(time.Now(), room[:0])); !equalStrings(got, []string{"a", "b", "c"}) || room[0] != r.targets[0] {
		t.Fatalf("order into room %v", got)
	}
	if r := strategyRoute(t, "", 1, 1, 1); r.Strategy != Fallback {
		t.Errorf("default strategy %s", r.Strategy)
	}
}

// Round robin by weight is nginx's smooth weighted round robin: weights
// 5, 1, 1 give a a b a c a a, and the rest follow the first in turn.
func TestRoundRobinSmoothWeighted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "aabacaa" + "aabacaa"},
		{[]int{1, 1, 1}, "abcabcabc"},
		{[]int{0, 0, 0}, "abcabc"}, // 0 takes the provider's weight, 1
		{[]int{2, 1}, "abaaba"},
		{[]int{1, 3}, "babb" + "babb"},
	} {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			t.Parallel()
			r := strategyRoute(t, "round_robin", tc.weights...)
			if got := firsts(r, len(tc.want)); got != tc.want {
				t.Errorf("first picks %s, want %s", got, tc.want)
			}
		})
	}
	// The whole order is the pick, then the others in configured order
	// from there (a rotation), so failover still reaches every target.
	r := strategyRoute(t, "round_robin", 5, 1, 1)
	var orders []string
	for range 7 {
		orders = append(orders, strings.Join(providerNames(r.order(time.Now(), nil)), ""))
	}
	want := []string{"abc", "abc", "bca", "abc", "cab", "abc", "abc"}
	if !equalStrings(orders, want) {
		t.Errorf("orders %v, want %v", orders, want)
	}
}

// Random and weighted over many draws. The bounds are loose on purpose:
// each is more than ten standard deviations from the expected count, so
// the test cannot fail by chance in practice, while a strategy that
// ignores its weights or always picks the same target fails it.
func TestRandomStrategies(t *testing.T) {
	t.Parallel()
	const draws = 3000
	t.Run("random", func(t *testing.T) {
		t.Parallel()
		r := strategyRoute(t, "random", 5, 1, 1) // weights do not matter
		counts := map[string]int{}
		for range draws {
			order := providerNames(r.order(time.Now(), nil))
			counts[order[0]]++
			sorted := slices.Clone(order)
			slices.Sort(sorted)
			if !equalStrings(sorted, []string{"a", "b", "c"}) {
				t.Fatalf("order %v is not a permutation", order)
			}
		}
		// Expected 1000 each; σ ≈ 26.
		for _, name := range []string{"a", "b", "c"} {
			if counts[name] < 700 || counts[name] > 1300 {
				t.Errorf("%s first %d times of %d, want about a third", name, counts[name], draws)
			}
		}
	})
	t.Run("weighted", func(t *testing.T) {
		t.Parallel()
		r := strategyRoute(t, "weighted", 3, 1)
		firstA := 0
		for range draws {
			if r.order(time.Now(), nil)[0].provider.Name == "a" {
				firstA++
			}
		}
		// Expected 2250 (3/4); σ ≈ 24.
		if firstA < 1950 || firstA > 2550 {
			t.Errorf("a first %d times of %d, want about three quarters", firstA, draws)
		}
	})
	t.Run("weighted uses the provider's weight", func(t *testing.T) {
		t.Parallel()
		cfg := newConfig(t, openaiProvider("a", "ka"), openaiProvider("b", "kb"))
		p := cfg.Providers["b"]
		p.Weight = 9
		cfg.Providers["b"] = p
		if err := cfg.AddModel(config.Model{Name: "m", Strategy: "weighted", Targets: []config.Target{{Provider: "a"}, {Provider: "b"}}}); err != nil {
			t.Fatal(err)
		}
		r := newWorld(t).compile(cfg).routes["m"]
		firstB := 0
		for range draws {
			if r.order(time.Now(), nil)[0].provider.Name == "b" {
				firstB++
			}
		}
		// Expected 2700 (9/10); σ ≈ 16.
		if firstB < 2500 || firstB > 2900 {
			t.Errorf("b first %d times of %d, want about nine in ten", firstB, draws)
		}
	})
}

// least_used, least_inflight and latency read the targets' Balance.
func TestBalanceStrategies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		strategy string
		set      func(a, b, c *Balance)
		want     string
	}{
		{"least_used", func(a, b, c *Balance) { a.Used.Store(5); b.Used.Store(1); c.Used.Store(3) }, "bca"},
		{"least_used", func(a, b, c *Balance) { a.Used.Store(2); b.Used.Store(2); c.Used.Store(1) }, "cab"}, // ties keep order
		{"least_inflight", func(a, b, c *Balance) { a.Inflight.Store(2); b.Inflight.Store(0); c.Inflight.Store(1) }, "bca"},
		{"least_inflight", func(a, b, c *Balance) { a.Used.Store(0); b.Used.Store(9); c.Inflight.Store(1) }, "abc"},        // reads in-flight, not used
		{"latency", func(a, b, c *Balance) { a.observe(100 * time.Millisecond); c.observe(50 * time.Millisecond) }, "bca"}, // untried first
		{"latency", func(a, b, c *Balance) {
			a.observe(300 * time.Millisecond)
			b.observe(200 * time.Millisecond)
			c.observe(100 * time.Millisecond)
		}, "cba"},
	} {
		t.Run(tc.strategy+"/"+tc.want, func(t *testing.T) {
			t.Parallel()
			r := strategyRoute(t, tc.strategy, 1, 1, 1)
			tc.set(r.targets[0].bal, r.targets[1].bal, r.targets[2].bal)
			if got := strings.Join(providerNames(r.order(time.Now(), nil)), ""); got != tc.want {
				t.Errorf("order %s, want %s", got, tc.want)
			}
		})
	}
}

// The latency average moves a fifth of the way to each new sample.
func TestLatencyAverage(t *testing.T) {
	t.Parallel()
	var b Balance
	if b.Latency() != 0 {
		t.Fatal("unknown latency is not 0")
	}
	b.observe(100 * time.Millisecond)
	b.observe(200 * time.Millisecond)
	if got := b.Latency(); got < 120*time.Millisecond-time.Microsecond || got > 120*time.Millisecond+time.Microsecond {
		t.Errorf("average %v, want 120ms", got)
	}
}

// Least used through the loop: each request goes where fewer went.
func TestLeastUsedThroughTheLoop(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := newConfig(t, openaiProvider("A", "a1"), openaiProvider("B", "b1"))
	if err := cfg.AddModel(config.Model{Name: "m", Strategy: "least_used", Targets: []config.Target{{Provider: "A"}, {Provider: "B"}}}); err != nil {
		t.Fatal(err)
	}
	snap := w.compile(cfg)
	for range 4 {
		w.do(snap, chatRequest("m"), nil)
	}
	if got := w.attempts(); !equalStrings(got, []string{"A/a1", "B/b1", "A/a1", "B/b1"}) {
		t.Errorf("attempts %v", got)
	}
}

// Resolution: the exact name, then the most specific pattern (ties in
// configuration order), then an implicit route over the providers whose
// models match, in configuration order.
func TestResolve(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t,
		openaiProvider("A", "a1"), openaiProvider("B", "b1"), openaiProvider("C", "c1"),
		openaiProvider("D", "d1"), openaiProvider("E", "e1"),
		route("gpt-4o", "A"), route("gpt-*", "B"), route("gpt-4*", "C"), route("*-mini", "D"),
		route("*", "E"), route("x*y*z", "A"))
	snap := newWorld(t).compile(cfg)
	for _, tc := range []struct{ model, route string }{
		{"gpt-4o", "gpt-4o"},
		{"gpt-4o-mini", "gpt-4*"}, // gpt-4* and *-mini are as specific: the first configured
		{"gpt-4", "gpt-4*"},
		{"gpt-3.5-turbo", "gpt-*"},
		{"o1-mini", "*-mini"},
		{"claude-sonnet", "*"},
		{"x1y2z", "x*y*z"},
		{"xyz", "x*y*z"},
		{"xzy", "*"},
		{"GPT-4O", "*"}, // names are case-sensitive
		{"", "*"},
	} {
		if r := snap.resolve(tc.model); r == nil || r.Name != tc.route {
			t.Errorf("%q resolves to %v, want %s", tc.model, r, tc.route)
		}
	}
}

func TestImplicitRoutes(t *testing.T) {
	t.Parallel()
	p := func(name string, models ...string) config.Provider {
		pr := openaiProvider(name, strings.ToLower(name)+"1")
		pr.Models = models
		return pr
	}
	cfg := newConfig(t, p("P2", "llama-3*", "qwen"), p("P1", "llama-*"), p("P3"), p("P4", "mistral-large"),
		route("mistral-large", "P1"))
	cfg.Gateway.Strategy = "round_robin"
	snap := newWorld(t).compile(cfg)
	for _, tc := range []struct {
		model string
		want  []string // the targets' providers; nil: no route
	}{
		{"llama-3-70b", []string{"P2", "P1"}}, // configuration order
		{"llama-2", []string{"P1"}},
		{"qwen", []string{"P2"}},
		{"qwen-2", nil},
		{"mistral-large", []string{"P1"}}, // the route wins over P4's models
		{"anything", nil},                 // P3 lists no models: it serves routes only
	} {
		r := snap.resolve(tc.model)
		if tc.want == nil {
			if r != nil {
				t.Errorf("%s: resolves to %s, want nothing", tc.model, r.Name)
			}
			continue
		}
		if r == nil {
			t.Errorf("%s: no route", tc.model)
			continue
		}
		if got := providerNames(r.targets); !equalStrings(got, tc.want) {
			t.Errorf("%s: targets %v, want %v", tc.model, got, tc.want)
		}
	}
	// One implicit route per set of providers, whose strategy is
	// gateway.strategy and whose state lasts.
	r1, r2 := snap.resolve("llama-3-8b"), snap.resolve("llama-3-70b")
	if r1 != r2 {
		t.Error("two implicit routes for the same providers")
	}
	if r1.Strategy != RoundRobin {
		t.Errorf("implicit strategy %s, want gateway.strategy", r1.Strategy)
	}
	if got := firsts(r1, 4); got != "P2P1P2P1" {
		t.Errorf("implicit round robin: %s", got)
	}
	// Through ModelPlan: a model nobody serves is 404 model_not_found.
	w := newWorld(t)
	res := w.do(w.compile(cfg), chatRequest("nobody-serves-me"), nil)
	if ge := gatewayError(t, res.err); ge.Status != 404 || ge.Code != "model_not_found" || ge.Param != "model" {
		t.Errorf("unknown model: %+v", ge)
	}
}

// A route's upstream model renames the request's; a target without one
// keeps the requested name.
func TestRouteTargetsRename(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("A", status(500, ""))
	cfg := newConfig(t, openaiProvider("A", "a1"), openaiProvider("B", "b1"),
		config.Model{Name: "super-brain", Targets: []config.Target{{Provider: "A", Model: "gpt-4.1"}, {Provider: "B"}}})
	snap := w.compile(cfg)
	res := w.do(snap, chatRequest("super-brain"), nil)
	if statusOf(res) != 200 {
		t.Fatal(res.err)
	}
	reqs := w.requests()
	if len(reqs) != 2 {
		t.Fatalf("attempts %v", w.attempts())
	}
	if !strings.Contains(string(reqs[0].body), `"model":"gpt-4.1"`) || !strings.Contains(string(reqs[1].body), `"model":"super-brain"`) {
		t.Errorf("bodies %q and %q", reqs[0].body, reqs[1].body)
	}
	if got := res.plan.Report(); got.Provider != "B" || got.Attempts != 2 || len(got.Failovers) != 1 || !strings.HasPrefix(got.Failovers[0], "A/key-1: 500") {
		t.Errorf("report %+v", got)
	}
	if res.plan.Result().Model != "super-brain" || res.plan.Result().Provider != "B" {
		t.Errorf("result %+v", res.plan.Result())
	}
	if info := snap.Routes()[0].Targets(); len(info) != 2 || info[0] != (TargetInfo{Provider: "A", Model: "gpt-4.1", Weight: 1}) {
		t.Errorf("targets %+v", info)
	}
}

// Pricing: per million tokens in the configuration, nanos per token in
// the snapshot; cached input at its own price when it has one.
func TestPricingCost(t *testing.T) {
	t.Parallel()
	cached := 0.5
	for _, tc := range []struct {
		name                              string
		pricing                           *config.Pricing
		input, cached, cacheWrite, output int64
		want                              int64
	}{
		{"unpriced", nil, 1000, 0, 0, 1000, 0},
		{"input and output", &config.Pricing{InputPer1M: 2, OutputPer1M: 8}, 1_000_000, 0, 0, 500_000, 6e9},
		{"cached at its price", &config.Pricing{InputPer1M: 2, CachedPer1M: &cached, OutputPer1M: 8}, 1_000_000, 400_000, 0, 0, 1.2e9 + 0.2e9},
		{"cached at the input price", &config.Pricing{InputPer1M: 2, OutputPer1M: 8}, 1_000_000, 400_000, 0, 0, 2e9},
		{"one token", &config.Pricing{InputPer1M: 0.15}, 1, 0, 0, 0, 150},
	} {
		p := compilePricing(tc.pricing)
		if got := p.Cost(tc.input, tc.cached, tc.cacheWrite, tc.output); got != tc.want {
			t.Errorf("%s: %d nanos, want %d", tc.name, got, tc.want)
		}
	}
	if p := compilePricing(&config.Pricing{InputPer1M: 1}); p.Currency != "usd" {
		t.Errorf("default currency %q", p.Currency)
	}
}
