package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedianAndRatios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("%s: median %v, want %v", tt.name, got, tt.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is a number")
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Error("median sorted its argument")
	}
	// Round by round; a round whose reference did no work is left out.
	got := ratios([]float64{2, 3, 4, 5}, []float64{1, 0, 2})
	if len(got) != 2 || got[0] != 2 || got[1] != 2 {
		t.Errorf("ratios %v, want [2 2]", got)
	}
	if got := ratio([]float64{1.6, 1.4, 1.5}); got != "1.50× (1.40–1.60)" {
		t.Errorf("ratio %q", got)
	}
	if got := ratio([]float64{1.25}); got != "1.25×" {
		t.Errorf("one round: %q", got)
	}
	if got := ratio(nil); got != "–" {
		t.Errorf("no round: %q", got)
	}
	if got := perUnit(3*time.Millisecond, 1000); got != 3 {
		t.Errorf("perUnit %v µs, want 3", got)
	}
	if !math.IsNaN(perUnit(time.Second, 0)) {
		t.Error("CPU per no request is a number")
	}
}

// The tables take each target's CPU per unit of work round by round and
// compare it with the floor's and nginx's of the same round.
func TestCPUTables(t *testing.T) {
	t.Parallel()
	// Of each round's proxy CPU, user space is half, but for the floor's
	// first round (40%): the user ratios differ from the totals there.
	wrkRounds := func(rps float64, proxyUS []float64, upstreamUS ...float64) []cpuRound {
		var out []cpuRound
		for i, p := range proxyUS {
			out = append(out, cpuRound{
				small: small{RPS: rps, Requests: 1000},
				Proxy: time.Duration(p * 1000 * float64(time.Microsecond)), Upstream: time.Duration(upstreamUS[i] * 1000 * float64(time.Microsecond)),
				ProxyUser: time.Duration(p / 2 * 1000 * float64(time.Microsecond)),
			})
		}
		return out
	}
	sse := func(proxyUS float64) []sseRound {
		return []sseRound{{Events: 10000, Elapsed: 2 * time.Second, Proxy: time.Duration(proxyUS * 10000 * float64(time.Microsecond)),
			Upstream: 10000 * 20 * time.Microsecond}}
	}
	r := &results{
		Rounds:  3,
		Targets: []string{"direct", "llmproxy socket", "llmproxy gateway", "floor", "nginx"},
		Proxy:   map[string]bool{"llmproxy socket": true, "llmproxy gateway": true, "floor": true, "nginx": true},
		CPU: map[string][]cpuRound{
			"direct":          wrkRounds(30000, []float64{0, 0, 0}, []float64{30, 31, 32}...),
			"llmproxy socket": wrkRounds(9000, []float64{72, 76, 80}, []float64{60, 70, 80}...),
			// The gateway's ratio to the preset is taken round by round:
			// 1.25, 1.10, 1.20 (its median CPU against the preset's median
			// would give 1.18).
			"llmproxy gateway": wrkRounds(8000, []float64{90, 83.6, 96}, []float64{60, 70, 80}...),
			"floor":            wrkRounds(12000, []float64{50, 50, 50}, []float64{50, 50, 50}...),
			"nginx":            wrkRounds(15000, []float64{40, 40, 40}, []float64{45, 45, 45}...),
		},
		SSECPU: map[string][]sseRound{"direct": sse(0), "llmproxy socket": sse(30), "llmproxy gateway": sse(31.5),
			"floor": sse(20), "nginx": sse(25)},
		SSEStreams: 20, SSEEvents: 500, SSEGap: time.Millisecond,
	}
	r.CPU["floor"][0].ProxyUser = 20 * 1000 * time.Microsecond
	for i := range r.CPU["llmproxy socket"] {
		c := &r.CPU["llmproxy socket"][i]
		c.ProxyIO = ioCalls{Reads: 3000 + uint64(i)*1000, Writes: 3000}
		c.UpstreamIO = ioCalls{Reads: 2500, Writes: 1000}
	}
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	r.cpuTable(w)
	r.callsTable(w)
	r.sseCPUTable(w)
	out := b.String()
	for _, want := range []string{
		"| direct | 30000 | – | – | – | – | – | – | – | – | 31.0 |",
		"| llmproxy socket | 9000 | 76.0 | 1.52× (1.44–1.60) | +26.0 (+22.0 to +30.0) | 1.90× (1.80–2.00) | 1.00× (1.00–1.00) | 38.0 | 1.60× (1.52–1.80) | +15.0 (+13.0 to +16.0) | 70.0 |",
		"| llmproxy gateway | 8000 | 90.0 | 1.80× (1.67–1.92) | +40.0 (+33.6 to +46.0) | 2.25× (2.09–2.40) | 1.20× (1.10–1.25) | 45.0 | 1.92× (1.67–2.25) | +23.0 (+16.8 to +25.0) | 70.0 |",
		"| floor | 12000 | 50.0 | 1.00× (1.00–1.00) | +0.0 (+0.0 to +0.0) | 1.25× (1.25–1.25) | 0.66× (0.62–0.69) | 25.0 | 1.00× (1.00–1.00) | +0.0 (+0.0 to +0.0) | 50.0 |",
		"| nginx | 15000 | 40.0 | 0.80× (0.80–0.80) | -10.0 (-10.0 to -10.0) | 1.00× (1.00–1.00) | 0.53× (0.50–0.56) | 20.0 | 0.80× (0.80–1.00) | -5.0 (-5.0 to +0.0) | 45.0 |",
		"| llmproxy socket | 4.00 | 3.00 | 2.50 | 1.00 |",
		"| direct | – | – | 0.00 | 0.00 |",
		"| direct | 10000 | 5000 | – | – | – | – | 20.0 | – |",
		"| llmproxy socket | 10000 | 5000 | 30.0 | 1.50× | 1.20× | 1.00× | 20.0 | 33333 |",
		"| llmproxy gateway | 10000 | 5000 | 31.5 | 1.57× | 1.26× | 1.05× | 20.0 | 31746 |",
		"| nginx | 10000 | 5000 | 25.0 | 1.25× | 1.00× | 0.83× | 20.0 | 40000 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}

	// Without a floor, nginx or the preset in the run, their columns are
	// empty.
	delete(r.CPU, "floor")
	delete(r.CPU, "nginx")
	delete(r.CPU, "llmproxy socket")
	b.Reset()
	r.cpuTable(w)
	if want := "| llmproxy gateway | 8000 | 90.0 | – | – | – | – | 45.0 | – | – | 70.0 |"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}
