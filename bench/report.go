package main

import (
	"fmt"
	"html"
	"os"
	"runtime"
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
	w("- every target reaches the same fake TLS upstream (`bench upstream`, Go, HTTP/2 and HTTP/1.1) on loopback; load generator, proxy and upstream share the machine\n\n")

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
		w("| %s | %.0f | %.2f× | %s | %s | %s | %d |\n", name, s.RPS, s.RPS/direct.RPS, vsNginx, ms(s.P50), ms(s.P99), s.Errors)
	}

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

	w("\n## Many idle streams\n\n")
	w("Slow SSE streams (one event a minute) held open through a fresh proxy process; cost per stream from the change in resident memory (`/proc`), and in Go heap and goroutine stacks in use and goroutines (`/metrics`). Heap and stacks are what the streams hold; RSS adds the garbage of their TLS handshakes that the runtime has not returned yet.\n\n")
	w("| target | streams | RSS per stream | heap per stream | stacks per stream | heap + stacks | goroutines per stream | note |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, name := range r.Targets {
		for _, i := range r.Idle[name] {
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
