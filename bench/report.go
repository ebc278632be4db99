package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is one run of the harness.
type results struct {
	When      time.Time
	Command   string
	Machine   string
	Duration  time.Duration
	Conns     int
	Rounds    int
	Targets   []string // in table order
	Notes     map[string]string
	Small     map[string]small
	Streaming map[string]streaming
	Reuse     map[string]int // sequential
	ReuseConc map[string]int // 32 at a time
	Idle      map[string][]idle
	Events    int
	Gap       time.Duration
	Streams   int

	Proxy      map[string]bool       // targets with a proxy process
	CPU        map[string][]cpuRound // every wrk round, in order
	SSECPU     map[string][]sseRound // every SSE CPU round, in order
	SSEStreams int
	SSEEvents  int
	SSEGap     time.Duration
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s, %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func signedUS(d time.Duration) string {
	return fmt.Sprintf("%+.0f µs", float64(d)/float64(time.Microsecond))
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

// markdown writes the results as the tables the README quotes.
func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# llmproxy benchmark\n\n")
	w("- when: %s\n- machine: %s\n- command: `%s`\n", r.When.Format("2006-01-02 15:04 MST"), r.Machine, r.Command)
	w("- every target reaches the same fake TLS upstream (`bench upstream`, Go, HTTP/2 and HTTP/1.1) on loopback; load generator, proxy and upstream share the machine\n")
	w("- floor: the floor of our stack (`bench floor`, bench/floor.go), a net/http server whose handler writes the upstream request by hand on a pooled TLS connection (HTTP/1.1), parses the answer with `http.ReadResponse` and copies the body, flushing for SSE; no header policy, logging, statistics or timeouts\n\n")

	w("## Small requests\n\n")
	w("`wrk -t2 -c%d -d%ds` with a short JSON POST, keep-alive; best of %d rounds per target.\n\n", r.Conns, int(r.Duration.Seconds()), r.Rounds)
	w("| target | req/s | vs direct | vs nginx | p50 | p99 | errors |\n|---|---:|---:|---:|---:|---:|---:|\n")
	direct, nginx := r.Small["direct"], r.Small["nginx"]
	for _, name := range r.Targets {
		s, ok := r.Small[name]
		if !ok {
			continue
		}
		vsNginx := "–"
		if nginx.RPS > 0 {
			vsNginx = fmt.Sprintf("%.2f×", s.RPS/nginx.RPS)
		}
		vsDirect := "–"
		if direct.RPS > 0 {
			vsDirect = fmt.Sprintf("%.2f×", s.RPS/direct.RPS)
		}
		w("| %s | %.0f | %s | %s | %s | %s | %d |\n", name, s.RPS, vsDirect, vsNginx, ms(s.P50), ms(s.P99), s.Errors)
	}

	r.cpuTable(w)
	r.callsTable(w)

	w("\n## Streaming\n\n")
	w("%d SSE streams of %d events, %s apart, four at a time. Delay is from the upstream's send time (stamped in the event) to the client's receipt; \"added\" subtracts direct.\n\n", r.Streams, r.Events, r.Gap)
	w("| target | event delay p50 | p99 | added p50 | added p99 | first byte p50 | p99 | added first byte p50 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	d := r.Streaming["direct"]
	for _, name := range r.Targets {
		s, ok := r.Streaming[name]
		if !ok {
			continue
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, ms(s.DelayP50), ms(s.DelayP99),
			signedUS(s.DelayP50-d.DelayP50), signedUS(s.DelayP99-d.DelayP99), ms(s.TTFBP50), ms(s.TTFBP99), signedUS(s.TTFBP50-d.TTFBP50))
	}

	r.sseCPUTable(w)

	w("\n## Many idle streams\n\n")
	w("Slow SSE streams (one event a minute) held open through a fresh proxy process; cost per stream from the change in resident memory (`/proc`; nginx: master and workers summed), and for the Go proxies in Go heap and goroutine stacks in use and goroutines (llmproxy's `/metrics`, the floor's own). Heap and stacks are what the streams hold; RSS adds the garbage of their TLS handshakes that the runtime has not returned yet.\n\n")
	w("| target | streams | RSS per stream | heap per stream | stacks per stream | heap + stacks | goroutines per stream | note |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, name := range r.Targets {
		for _, i := range r.Idle[name] {
			if !i.GoRuntime {
				w("| %s | %d | %s | – | – | – | – | %s |\n", name, i.Streams, kib(i.RSSPerStream), i.Note)
				continue
			}
			w("| %s | %d | %s | %s | %s | %s | %.2f | %s |\n", name, i.Streams, kib(i.RSSPerStream), kib(i.HeapPerStream),
				kib(i.StackPerStream), kib(i.HeapPerStream+i.StackPerStream), i.GoroutinesPerStream, i.Note)
		}
	}

	w("\n## Connection reuse\n\nUpstream TLS handshakes for 1,000 requests through a freshly started target.\n\n")
	w("| target | sequential | 32 at a time |\n|---|---:|---:|\n")
	for _, name := range r.Targets {
		if n, ok := r.Reuse[name]; ok {
			w("| %s | %d | %d |\n", name, n, r.ReuseConc[name])
		}
	}
	if len(r.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, name := range r.Targets {
			if n := r.Notes[name]; n != "" {
				w("- %s: %s\n", name, n)
			}
		}
	}
	return b.String()
}

// cpuTable writes CPU per request, from the same wrk rounds as the
// small-request table.
func (r *results) cpuTable(w func(string, ...any)) {
	if len(r.CPU) == 0 {
		return
	}
	w("\n## CPU per request\n\n")
	w("The same wrk runs: CPU time (user + system, `/proc/<pid>/stat`) the proxy's processes used during a run, divided by the requests wrk completed; the upstream's likewise. ")
	w("%s; ×floor, ×nginx and ×preset (llmproxy socket, a preset: the gateway's figure) are the median of the ratios within each round (every round runs the targets one after the other, every other round in reverse order), with their range when there are several rounds.\n\n", medianOf(r.Rounds))
	w("User is the part of the proxy's CPU spent in user space (its own code and the Go runtime, not the kernel's work on its sockets and wake-ups), with its ratio to the floor's, round by round as above. ")
	w("+floor is what a target adds to the floor's CPU per request, in µs, round by round as the ratios: a ratio grows when the floor's cost falls (a quieter machine) though the addition stays the same.\n\n")
	w("| target | req/s | CPU µs/request (proxy) | ×floor | +floor µs | ×nginx | ×preset | user µs/request | user ×floor | user +floor µs | upstream CPU µs/request |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	const (
		proxyCPU = iota
		userCPU
		upstreamCPU
	)
	per := func(name string, which int) []float64 {
		var out []float64
		for _, c := range r.CPU[name] {
			cpu := c.Proxy
			switch which {
			case userCPU:
				cpu = c.ProxyUser
			case upstreamCPU:
				cpu = c.Upstream
			}
			out = append(out, perUnit(cpu, c.Requests))
		}
		return out
	}
	floor, nginx, preset := per("floor", proxyCPU), per("nginx", proxyCPU), per(presetTarget, proxyCPU)
	floorUser := per("floor", userCPU)
	for _, name := range r.Targets {
		rounds, ok := r.CPU[name]
		if !ok {
			continue
		}
		var rps []float64
		for _, c := range rounds {
			rps = append(rps, c.RPS)
		}
		proxy, user := "–", "–"
		vsFloor, vsNginx, vsPreset, userVsFloor := "–", "–", "–", "–"
		overFloor, userOverFloor := "–", "–"
		if r.isProxy(name) {
			p, u := per(name, proxyCPU), per(name, userCPU)
			proxy, user = us(median(p)), us(median(u))
			vsFloor, vsNginx, vsPreset = ratio(ratios(p, floor)), ratio(ratios(p, nginx)), ratio(ratios(p, preset))
			userVsFloor = ratio(ratios(u, floorUser))
			overFloor, userOverFloor = added(diffs(p, floor)), added(diffs(u, floorUser))
		}
		w("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, median(rps), proxy, vsFloor, overFloor, vsNginx, vsPreset, user, userVsFloor,
			userOverFloor, us(median(per(name, upstreamCPU))))
	}
}

// callsTable writes read and write calls per request, from the same runs.
func (r *results) callsTable(w func(string, ...any)) {
	if len(r.CPU) == 0 {
		return
	}
	w("\n## Read and write calls per request\n\n")
	w("From the same wrk runs: `syscr` and `syscw` of `/proc/<pid>/io`, divided by the requests wrk completed (median of the rounds). ")
	w("The kernel counts read, readv, write and writev (Go's sockets, log files), not recv, send, recvmsg or sendmsg, so nginx's reads (recv) are missing and its row is not comparable.\n\n")
	w("| target | proxy reads | proxy writes | upstream reads | upstream writes |\n|---|---:|---:|---:|---:|\n")
	perReq := func(rounds []cpuRound, f func(cpuRound) uint64) string {
		var xs []float64
		for _, c := range rounds {
			if c.Requests > 0 {
				xs = append(xs, float64(f(c))/float64(c.Requests))
			}
		}
		if len(xs) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", median(xs))
	}
	for _, name := range r.Targets {
		rounds, ok := r.CPU[name]
		if !ok {
			continue
		}
		pr, pw := "–", "–"
		if r.isProxy(name) {
			pr = perReq(rounds, func(c cpuRound) uint64 { return c.ProxyIO.Reads })
			pw = perReq(rounds, func(c cpuRound) uint64 { return c.ProxyIO.Writes })
		}
		w("| %s | %s | %s | %s | %s |\n", name, pr, pw,
			perReq(rounds, func(c cpuRound) uint64 { return c.UpstreamIO.Reads }), perReq(rounds, func(c cpuRound) uint64 { return c.UpstreamIO.Writes }))
	}
}

// sseCPUTable writes CPU per relayed SSE event.
func (r *results) sseCPUTable(w func(string, ...any)) {
	if len(r.SSECPU) == 0 {
		return
	}
	w("\n## CPU per SSE event\n\n")
	w("%d SSE streams of %d events, %s apart, all at once through each target; CPU time of the proxy's processes (and of the upstream) during the run divided by the events the client received. ", r.SSEStreams, r.SSEEvents, r.SSEGap)
	w("%s, ratios within each round as above. Events per core-second is 1 s / CPU per event: the events one core could relay for this proxy's own work.\n\n", medianOf(r.Rounds))
	w("| target | events | events/s | CPU µs/event (proxy) | ×floor | ×nginx | ×preset | upstream CPU µs/event | events per core-second |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	per := func(name string, upstream bool) []float64 {
		var out []float64
		for _, s := range r.SSECPU[name] {
			cpu := s.Proxy
			if upstream {
				cpu = s.Upstream
			}
			out = append(out, perUnit(cpu, s.Events))
		}
		return out
	}
	floor, nginx, preset := per("floor", false), per("nginx", false), per(presetTarget, false)
	for _, name := range r.Targets {
		rounds, ok := r.SSECPU[name]
		if !ok {
			continue
		}
		var events int
		var rate []float64
		for _, s := range rounds {
			events += s.Events
			rate = append(rate, float64(s.Events)/s.Elapsed.Seconds())
		}
		proxy, vsFloor, vsNginx, vsPreset, perCore := "–", "–", "–", "–", "–"
		if r.isProxy(name) {
			p := median(per(name, false))
			proxy = us(p)
			vsFloor, vsNginx = ratio(ratios(per(name, false), floor)), ratio(ratios(per(name, false), nginx))
			vsPreset = ratio(ratios(per(name, false), preset))
			if p > 0 {
				perCore = fmt.Sprintf("%.0f", 1e6/p)
			}
		}
		w("| %s | %d | %.0f | %s | %s | %s | %s | %s | %s |\n", name, events/len(rounds), median(rate), proxy, vsFloor, vsNginx,
			vsPreset, us(median(per(name, true))), perCore)
	}
}

// presetTarget is the target the gateway is compared with: llmproxy on a
// preset, the same transport without routing, key injection or metering.
const presetTarget = "llmproxy socket"

func medianOf(rounds int) string {
	if rounds == 1 {
		return "One round"
	}
	return fmt.Sprintf("Median of %d rounds", rounds)
}

// isProxy reports whether the named target has a proxy process (direct
// has none).
func (r *results) isProxy(name string) bool { return r.Proxy[name] }

// us formats microseconds, "–" for NaN.
func us(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// ratio formats the median of per-round ratios and, for several rounds,
// their range.
func ratio(rs []float64) string { return spread(rs, "%.2f×", " (%.2f–%.2f)") }

// added formats the median of per-round differences in µs, signed, and
// for several rounds their range.
func added(ds []float64) string { return spread(ds, "%+.1f", " (%+.1f to %+.1f)") }

// spread formats the median of per-round figures with mid and, for several
// rounds, their lowest and highest with span; "–" when there are none.
func spread(xs []float64, mid, span string) string {
	if len(xs) == 0 {
		return "–"
	}
	m := fmt.Sprintf(mid, median(xs))
	if len(xs) > 1 {
		m += fmt.Sprintf(span, slices.Min(xs), slices.Max(xs))
	}
	return m
}

// svg draws requests per second per target as horizontal bars.
func (r *results) svg() string {
	const width, left, barH, gap, top = 760, 190, 26, 12, 48
	var rows []string
	for _, name := range r.Targets {
		if _, ok := r.Small[name]; ok {
			rows = append(rows, name)
		}
	}
	height := top + len(rows)*(barH+gap) + 30
	var maxRPS float64
	for _, name := range rows {
		maxRPS = max(maxRPS, r.Small[name].RPS)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="16" y="24" font-size="15" font-weight="600">Small requests: req/s (wrk -c%d, %s)</text>`+"\n", r.Conns, html.EscapeString(r.Machine))
	for i, name := range rows {
		s := r.Small[name]
		y := top + i*(barH+gap)
		w := int(float64(width-left-220) * s.RPS / maxRPS)
		color := "#9aa4b4"
		if strings.HasPrefix(name, "llmproxy") {
			color = "#2f6fe4"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-10, y+barH/2+5, html.EscapeString(name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="%s"/>`+"\n", left, y, w, barH, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%.0f req/s · p99 %s</text>`+"\n", left+w+8, y+barH/2+5, s.RPS, html.EscapeString(ms(s.P99)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
