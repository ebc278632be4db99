package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// client is the HTTP/1.1 keep-alive client the Go-side tests use for every
// target, trusting the test CA for the direct one.
func client(caFile string, conns int) *http.Client {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost"},
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}}
}

// streaming is the result of the SSE test for one target.
type streaming struct {
	Events             int
	DelayP50, DelayP99 time.Duration // upstream send → client receive, per event
	TTFBP50, TTFBP99   time.Duration // request start → first event
}

// measureStreams runs `streams` SSE streams of `events` events `gap` apart,
// four at a time, and measures when each event arrives against the send
// time the upstream stamped into it.
func measureStreams(c *http.Client, t *target, streams, events int, gap time.Duration) streaming {
	var mu sync.Mutex
	var delays, ttfbs []time.Duration
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, first := oneStream(c, t.sseRequest(events, gap))
			mu.Lock()
			delays = append(delays, d...)
			ttfbs = append(ttfbs, first)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return streaming{
		Events:   len(delays),
		DelayP50: pct(delays, 50), DelayP99: pct(delays, 99),
		TTFBP50: pct(ttfbs, 50), TTFBP99: pct(ttfbs, 99),
	}
}

var stampKey = []byte(`"t":`)

func oneStream(c *http.Client, req *http.Request) ([]time.Duration, time.Duration) {
	url := req.URL.String()
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		log.Fatalf("stream %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		log.Fatalf("stream %s: status %d", url, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	var delays []time.Duration
	var first time.Duration
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if i := bytes.Index(line, stampKey); i >= 0 {
			rest := line[i+len(stampKey):]
			end := bytes.IndexByte(rest, ',')
			sent, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
			if first == 0 {
				first = now.Sub(start)
			}
			delays = append(delays, now.Sub(time.Unix(0, sent)))
		}
		if err != nil {
			if err != io.EOF {
				log.Fatalf("stream %s: %v", url, err)
			}
			return delays, first
		}
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}

// handshakes counts the upstream connections (TLS handshakes) that 1,000
// requests through t cost, sent by `concurrency` clients at a time. The
// upstream counts them; its own counter's connection is opened first.
func handshakes(c *http.Client, t *target, upstream string, concurrency int) int {
	before := upstreamConns(c, upstream)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1000; i += concurrency {
				req := t.request("POST", "/v1/chat/completions", strings.NewReader(`{"model":"bench-1"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					log.Fatalf("%s: %v", t.name, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return upstreamConns(c, upstream) - before
}

func upstreamConns(c *http.Client, upstream string) int {
	resp, err := c.Get(upstream + "/_conns")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, _ := strconv.Atoi(string(b))
	return n
}

// warm opens the client's connections to t before anything is timed.
func warm(c *http.Client, t *target, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); oneStream(c, t.sseRequest(1, 0)) }()
	}
	wg.Wait()
}

// idle is the memory and goroutine cost of open, idle streams in one proxy.
type idle struct {
	Streams             int
	RSSPerStream        int64
	HeapPerStream       int64 // with StackPerStream and GoroutinesPerStream: Go proxies only
	StackPerStream      int64
	GoroutinesPerStream float64
	BaseRSS, BaseHeap   int64
	BaseGoroutines      int
	GoRuntime           bool // the heap, stack and goroutine figures were read
	Note                string
}

// goRuntime reads heap and stack bytes in use and goroutines from a
// Prometheus text page (llmproxy's /metrics, the floor's own).
func goRuntime(url string) (heap, stack int64, goroutines int) {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Fatalf("%s: status %d (an operator token guards it?)", url, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "go_memstats_heap_inuse_bytes":
			heap = int64(v)
		case "go_memstats_stack_inuse_bytes":
			stack = int64(v)
		case "go_goroutines":
			goroutines = int(v)
		}
	}
	return heap, stack, goroutines
}

// measureIdle opens n slow SSE streams through t (raw connections, as many
// cheap clients would) and reads the proxy's memory before and after: the
// resident memory of its processes from /proc (for nginx, master and
// workers), and for a Go proxy its heap, stacks and goroutines from its
// metrics page.
func measureIdle(t *target, n int) idle {
	res := idle{Streams: n, GoRuntime: t.metrics != ""}
	addr, prefix := t.hostPath()
	var head strings.Builder
	fmt.Fprintf(&head, "GET %s/slow HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n", prefix)
	for k, v := range t.headers {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	open := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatalf("opening stream: %v", err)
		}
		io.WriteString(c, head.String())
		buf := make([]byte, 512)
		got := 0
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for !bytes.Contains(buf[:got], []byte("alive")) {
			if got == len(buf) {
				log.Fatalf("%s: no event in the first %d bytes of a stream: %q", t.name, got, buf)
			}
			m, err := c.Read(buf[got:])
			if err != nil {
				log.Fatalf("reading stream: %v", err)
			}
			got += m
		}
		c.SetReadDeadline(time.Time{})
		return c
	}
	open().Close() // warm up the upstream pool and the code paths
	time.Sleep(500 * time.Millisecond)
	pids := t.pids()
	res.BaseRSS = rss(pids...)
	var baseStack int64
	if res.GoRuntime {
		res.BaseHeap, baseStack, res.BaseGoroutines = goRuntime(t.metrics)
	}

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); conns[i] = open() }()
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // let the streams settle into idleness
	res.RSSPerStream = (rss(pids...) - res.BaseRSS) / int64(n)
	if res.GoRuntime {
		heap, stack, goroutines := goRuntime(t.metrics)
		res.HeapPerStream = (heap - res.BaseHeap) / int64(n)
		res.StackPerStream = (stack - baseStack) / int64(n)
		res.GoroutinesPerStream = float64(goroutines-res.BaseGoroutines) / float64(n)
	}
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(time.Second)
	return res
}
