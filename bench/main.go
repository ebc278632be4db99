// Command bench measures what llmproxy adds between a client and a provider,
// side by side with what users would otherwise pick, in one run on one
// machine: direct to the upstream (the limit), llmproxy with the socket and
// the fetch transports, a minimal httputil.ReverseProxy, the floor of our
// stack (the least a net/http proxy can do) and nginx.
//
//	go run ./bench              # or: make bench
//	go run ./bench -quick       # a short run, to check the harness
//	go run ./bench -skip 'httputil.ReverseProxy,llmproxy fetch'
//
// It writes bench/results/latest.md and latest.svg. Subcommands run the
// pieces it starts as processes: `bench upstream` (the fake TLS provider),
// `bench httputil` (the minimal reverse proxy) and `bench floor` (floor.go).
//
// To add a row, add an entry to the list in rows() below; a row that
// runs llmproxy with a configuration file (the gateway) starts with
// startLLMProxyConfig.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	log.SetFlags(log.Ltime)
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "upstream":
			fs := flag.NewFlagSet("upstream", flag.ExitOnError)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			cert := fs.String("cert", "", "certificate PEM")
			key := fs.String("key", "", "key PEM")
			fs.Parse(os.Args[2:])
			runUpstream(*addr, *cert, *key)
			return
		case "httputil":
			fs := flag.NewFlagSet("httputil", flag.ExitOnError)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			up := fs.String("upstream", "", "upstream URL")
			ca := fs.String("ca", "", "CA PEM")
			fs.Parse(os.Args[2:])
			runHTTPUtil(*addr, *up, *ca)
			return
		case "floor":
			fs := flag.NewFlagSet("floor", flag.ExitOnError)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			metrics := fs.String("metrics", "", "listen address for Go runtime figures (none when empty)")
			up := fs.String("upstream", "", "upstream URL (https)")
			ca := fs.String("ca", "", "CA PEM")
			fs.Parse(os.Args[2:])
			runFloor(*addr, *metrics, *up, *ca)
			return
		}
	}

	duration := flag.Duration("d", 10*time.Second, "wrk duration per round")
	conns := flag.Int("c", 32, "wrk connections")
	rounds := flag.Int("rounds", 3, "rounds per target of the wrk and SSE CPU tests (req/s: the best counts; CPU: the median)")
	events := flag.Int("events", 200, "events per SSE stream (latency test)")
	gap := flag.Duration("gap", 2*time.Millisecond, "time between SSE events (latency test)")
	streams := flag.Int("streams", 20, "SSE streams per target (latency test)")
	cpuStreams := flag.Int("sse-cpu-streams", 20, "SSE streams per target, all at once (CPU per event test)")
	cpuEvents := flag.Int("sse-cpu-events", 5000, "events per SSE stream (CPU per event test)")
	cpuGap := flag.Duration("sse-cpu-gap", time.Millisecond, "time between SSE events (CPU per event test); 0 lets events pile up and be relayed in batches")
	idleCounts := flag.String("idle", "1000,10000", "idle stream counts for the memory test")
	out := flag.String("out", "bench/results", "where to write latest.md and latest.svg")
	quick := flag.Bool("quick", false, "short run: 2s wrk, 1 round, 4 latency streams, 10×1000 CPU events, 200 idle streams")
	skipNginx := flag.Bool("skip-nginx", false, "do not run nginx (same as -skip nginx)")
	skipList := flag.String("skip", "", "comma-separated target names not to run: direct, 'llmproxy socket', 'llmproxy fetch', 'llmproxy gateway', 'llmproxy socket 1P', httputil.ReverseProxy, floor, nginx")
	flag.Parse()
	if *quick {
		*duration, *rounds, *streams, *idleCounts = 2*time.Second, 1, 4, "200"
		*cpuStreams, *cpuEvents = 10, 1000
	}
	skip := map[string]bool{}
	for _, name := range strings.Split(*skipList, ",") {
		if name = strings.TrimSpace(name); name != "" {
			skip[strings.ToLower(name)] = true
		}
	}
	if *skipNginx {
		skip["nginx"] = true
	}

	work, err := os.MkdirTemp("", "llmproxy-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(work, "llmproxy")
	log.Print("building llmproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/llmproxy").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	wrk, err := wrkPath()
	if err != nil {
		log.Fatal("wrk is needed (apt-get install wrk)")
	}

	certFile, keyFile, caFile := writeCertificate(work)
	upAddr := freePort()
	upstream := "https://" + upAddr
	upCmd := start(work, "upstream", upAddr, self, "upstream", "-addr", upAddr, "-cert", certFile, "-key", keyFile)
	defer (&target{cmd: upCmd}).stop()
	up := upCmd.Process.Pid

	res := &results{
		When: time.Now(), Command: "go run ./bench " + strings.Join(os.Args[1:], " "), Machine: machine(),
		Duration: *duration, Conns: *conns, Rounds: *rounds, Events: *events, Gap: *gap, Streams: *streams,
		Notes: map[string]string{}, Small: map[string]small{}, Streaming: map[string]streaming{},
		Reuse: map[string]int{}, ReuseConc: map[string]int{}, Idle: map[string][]idle{},
		Proxy: map[string]bool{}, CPU: map[string][]cpuRound{}, SSECPU: map[string][]sseRound{},
		SSEStreams: *cpuStreams, SSEEvents: *cpuEvents, SSEGap: *cpuGap,
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, m := range rows(work, bin, self, upstream, upAddr, caFile) {
		if skip[strings.ToLower(m.name)] {
			continue
		}
		t, note := m.start()
		if t == nil {
			res.Notes[m.name] = note
			res.Targets = append(res.Targets, m.name)
			continue
		}
		targets = append(targets, t)
		res.Targets = append(res.Targets, t.name)
		res.Proxy[t.name] = t.proxy
		if t.note != "" {
			res.Notes[t.name] = t.note
		}
	}

	// Connection reuse first, while every target is fresh.
	c := client(caFile, 64)
	for _, t := range targets {
		res.Reuse[t.name] = handshakes(c, t, upstream, 1)
		res.ReuseConc[t.name] = handshakes(c, t, upstream, 32)
		log.Printf("%s: upstream handshakes per 1,000 requests: %d sequential, %d at 32 at a time", t.name, res.Reuse[t.name], res.ReuseConc[t.name])
	}
	for _, t := range targets {
		log.Printf("%s: warm-up", t.name)
		runWrk(work, wrk, t, *conns, 2*time.Second)
	}
	// Small requests: req/s (the best round) and CPU per request (every
	// round), the targets of a round one after the other (inTurn).
	for round := range *rounds {
		for _, t := range inTurn(targets, round) {
			r := measureWrk(work, wrk, t, up, *conns, *duration)
			res.CPU[t.name] = append(res.CPU[t.name], r)
			log.Printf("%s: round %d: %.0f req/s, p50 %s, p99 %s, CPU per request: proxy %s µs, upstream %s µs", t.name, round+1,
				r.RPS, ms(r.P50), ms(r.P99), us(perUnit(r.Proxy, r.Requests)), us(perUnit(r.Upstream, r.Requests)))
			if best, ok := res.Small[t.name]; !ok || r.RPS > best.RPS {
				res.Small[t.name] = r.small
			}
		}
	}
	for _, t := range targets {
		if t.chatOnly {
			continue
		}
		warm(c, t, 4)
		res.Streaming[t.name] = measureStreams(c, t, *streams, *events, *gap)
		s := res.Streaming[t.name]
		log.Printf("%s: SSE delay p50 %s p99 %s, first byte p50 %s", t.name, ms(s.DelayP50), ms(s.DelayP99), ms(s.TTFBP50))
	}
	for round := range *rounds {
		for _, t := range inTurn(targets, round) {
			if t.chatOnly {
				continue
			}
			s := measureSSECPU(c, t, up, *cpuStreams, *cpuEvents, *cpuGap)
			res.SSECPU[t.name] = append(res.SSECPU[t.name], s)
			log.Printf("%s: SSE CPU round %d: %d events in %s, CPU per event: proxy %s µs, upstream %s µs", t.name, round+1,
				s.Events, s.Elapsed.Round(time.Millisecond), us(perUnit(s.Proxy, s.Events)), us(perUnit(s.Upstream, s.Events)))
		}
	}

	// Idle streams, each count through a fresh proxy process, so that its
	// resident memory holds nothing but the streams.
	limit := maxStreams()
	for _, t := range targets {
		if t.fresh == nil || t.chatOnly || t.chatStream {
			continue
		}
		for _, f := range strings.Split(*idleCounts, ",") {
			var n int
			fmt.Sscan(f, &n)
			note := ""
			if n > limit {
				note = fmt.Sprintf("%d asked for; the open-file limit (%d) allows %d here", n, limit*2+256, limit)
				n = limit
			}
			fresh := t.fresh()
			i := measureIdle(fresh, n)
			fresh.stop()
			i.Note = note
			res.Idle[t.name] = append(res.Idle[t.name], i)
			if i.GoRuntime {
				log.Printf("%s: %d idle streams: %s RSS, %s heap, %s stacks, %.2f goroutines per stream", t.name, i.Streams,
					kib(i.RSSPerStream), kib(i.HeapPerStream), kib(i.StackPerStream), i.GoroutinesPerStream)
			} else {
				log.Printf("%s: %d idle streams: %s RSS per stream", t.name, i.Streams, kib(i.RSSPerStream))
			}
		}
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	md, svg := res.markdown(), res.svg()
	os.WriteFile(filepath.Join(*out, "latest.md"), []byte(md), 0o644)
	os.WriteFile(filepath.Join(*out, "latest.svg"), []byte(svg), 0o644)
	fmt.Print(md)
	log.Printf("wrote %s", filepath.Join(*out, "latest.md"))
}

// inTurn is the order of the targets in a round: the table's, and every
// other round the reverse, so that no target always follows the same one
// (a neighbour's garbage, a noisy moment at a round's start) — their
// ratios within a round are what the report keeps.
func inTurn(targets []*target, round int) []*target {
	if round%2 == 0 {
		return targets
	}
	r := slices.Clone(targets)
	slices.Reverse(r)
	return r
}

// row is one target of the benchmark: its name (what -skip matches) and how
// to start it; start returns nil and a note when it cannot run.
type row struct {
	name  string
	start func() (*target, string)
}

// rows lists the targets in table order.
//
// The gateway row goes after "llmproxy fetch" (see startLLMProxyConfig), for
// instance:
//
//	{"llmproxy gateway", func() (*target, string) {
//		yaml := fmt.Sprintf("upstream_ca: %s\nproviders:\n  bench:\n    base_url: %s/v1\n    keys: [env:BENCH_KEY]\n…", caFile, upstream)
//		t := startLLMProxyConfig(work, bin, "llmproxy gateway", yaml, []string{"BENCH_KEY=sk-upstream-0"}, "")
//		t.headers = map[string]string{"Authorization": "Bearer " + clientKey}
//		t.chatOnly = true // unless the configuration also serves /sse and /slow
//		return t, ""
//	}},
func rows(work, bin, self, upstream, upAddr, caFile string) []row {
	return []row{
		{"direct", func() (*target, string) { return &target{name: "direct", base: upstream}, "" }},
		{"llmproxy socket", func() (*target, string) {
			return startLLMProxy(work, bin, "llmproxy socket", "socket", upstream, caFile), ""
		}},
		{"llmproxy fetch", func() (*target, string) {
			return startLLMProxy(work, bin, "llmproxy fetch", "fetch", upstream, caFile), ""
		}},
		{"llmproxy gateway", func() (*target, string) {
			// The gateway path: a client key checked, routing by model (the
			// model renamed), a provider key injected, usage counted (asked
			// for and the extra chunk stripped on streams).
			yaml := fmt.Sprintf(`upstream_ca: %s
transport: socket
providers:
  bench:
    base_url: %s/v1
    keys: [env:BENCH_PROVIDER_KEY]
models:
  bench-1:
    targets: [{provider: bench, model: bench-upstream-1}]
    pricing: {currency: usd, input_per_1m: 1, output_per_1m: 2}
client_keys:
  - name: bench
    key: env:BENCH_CLIENT_KEY
`, caFile, upstream)
			t := startLLMProxyConfig(work, bin, "llmproxy gateway", yaml,
				[]string{"BENCH_PROVIDER_KEY=sk-upstream-bench-000000", "BENCH_CLIENT_KEY=ck-bench-client-key-000000"}, "")
			t.headers = map[string]string{"Authorization": "Bearer ck-bench-client-key-000000"}
			t.chatStream = true
			return t, ""
		}},
		{"llmproxy socket 1P", func() (*target, string) {
			// The socket preset held on one P (GOMAXPROCS=1, which also
			// turns llmproxy's own switching off): what one P costs at full
			// load, which is why llmproxy runs on one only while lightly
			// loaded (cmd/llmproxy/procs.go). Its memory is the socket
			// row's: the idle-stream test skips it.
			t := startLLMProxy(work, bin, "llmproxy socket 1P", "socket", upstream, caFile, "GOMAXPROCS=1")
			t.fresh = nil
			return t, ""
		}},
		{"httputil.ReverseProxy", func() (*target, string) { return startHTTPUtil(work, self, upstream, caFile), "" }},
		{"floor", func() (*target, string) { return startFloor(work, self, upstream, caFile), "" }},
		{"nginx", func() (*target, string) { return startNginx(work, upAddr, caFile) }},
	}
}
