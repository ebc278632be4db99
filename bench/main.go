// Command bench measures what llmproxy adds between a client and a provider,
// side by side with what users would otherwise pick, in one run on one
// machine: direct to the upstream (the limit), llmproxy with the socket and
// the fetch transports, a minimal httputil.ReverseProxy, and nginx.
//
//	go run ./bench              # or: make bench
//	go run ./bench -quick       # a short run, to check the harness
//
// It writes bench/results/latest.md and latest.svg. Subcommands run the
// pieces it starts as processes: `bench upstream` (the fake TLS provider)
// and `bench httputil` (the minimal reverse proxy).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
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
		}
	}

	duration := flag.Duration("d", 10*time.Second, "wrk duration per round")
	conns := flag.Int("c", 32, "wrk connections")
	rounds := flag.Int("rounds", 2, "wrk rounds per target (the best counts)")
	events := flag.Int("events", 200, "events per SSE stream")
	gap := flag.Duration("gap", 2*time.Millisecond, "time between SSE events")
	streams := flag.Int("streams", 20, "SSE streams per target")
	idleCounts := flag.String("idle", "1000,10000", "idle stream counts for the memory test")
	out := flag.String("out", "bench/results", "where to write latest.md and latest.svg")
	quick := flag.Bool("quick", false, "short run: 2s wrk, 1 round, 200 idle streams")
	skipNginx := flag.Bool("skip-nginx", false, "do not run nginx")
	flag.Parse()
	if *quick {
		*duration, *rounds, *streams, *idleCounts = 2*time.Second, 1, 4, "200"
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

	res := &results{
		When: time.Now(), Command: "go run ./bench " + strings.Join(os.Args[1:], " "), Machine: machine(),
		Duration: *duration, Conns: *conns, Rounds: *rounds, Events: *events, Gap: *gap, Streams: *streams,
		Notes: map[string]string{}, Small: map[string]small{}, Streaming: map[string]streaming{},
		Reuse: map[string]int{}, ReuseConc: map[string]int{}, Idle: map[string][]idle{},
	}
	targets := []*target{{name: "direct", base: upstream}}
	targets = append(targets,
		startLLMProxy(work, bin, "llmproxy socket", "socket", upstream, caFile),
		startLLMProxy(work, bin, "llmproxy fetch", "fetch", upstream, caFile),
		startHTTPUtil(work, self, upstream, caFile))
	if !*skipNginx {
		if t, note := startNginx(work, upAddr, caFile); t != nil {
			targets = append(targets, t)
		} else {
			res.Notes["nginx"] = note
		}
	}
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, t := range targets {
		res.Targets = append(res.Targets, t.name)
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
		runWrk(work, wrk, t.url("/v1/chat/completions"), *conns, 2*time.Second)
	}
	for round := range *rounds {
		for _, t := range targets {
			s := runWrk(work, wrk, t.url("/v1/chat/completions"), *conns, *duration)
			log.Printf("%s: round %d: %.0f req/s, p50 %s, p99 %s", t.name, round+1, s.RPS, ms(s.P50), ms(s.P99))
			if best, ok := res.Small[t.name]; !ok || s.RPS > best.RPS {
				res.Small[t.name] = s
			}
		}
	}
	for _, t := range targets {
		warm(c, t, 4)
		res.Streaming[t.name] = measureStreams(c, t, *streams, *events, *gap)
		s := res.Streaming[t.name]
		log.Printf("%s: SSE delay p50 %s p99 %s, first byte p50 %s", t.name, ms(s.DelayP50), ms(s.DelayP99), ms(s.TTFBP50))
	}

	// Idle streams, each count through a fresh proxy process, so that its
	// resident memory holds nothing but the streams.
	limit := maxStreams()
	for _, transport := range []string{"socket", "fetch"} {
		name := "llmproxy " + transport
		for _, f := range strings.Split(*idleCounts, ",") {
			var n int
			fmt.Sscan(f, &n)
			note := ""
			if n > limit {
				note = fmt.Sprintf("%d asked for; the open-file limit (%d) allows %d here", n, limit*2+256, limit)
				n = limit
			}
			t := startLLMProxy(work, bin, "idle-"+transport, transport, upstream, caFile)
			i := measureIdle(t, n)
			t.stop()
			i.Note = note
			res.Idle[name] = append(res.Idle[name], i)
			log.Printf("%s: %d idle streams: %s RSS, %s heap, %.2f goroutines per stream", name, i.Streams,
				kib(i.RSSPerStream), kib(i.HeapPerStream), i.GoroutinesPerStream)
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
