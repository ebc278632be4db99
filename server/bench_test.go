package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// Benchmarks of the whole path, client → llmproxy → TLS upstream, all in
// this process on loopback. They report time and allocations per request;
// bench/ compares the running binary with nginx and others.

func benchServer(b *testing.B, transport string, h http.Handler) (string, func()) {
	b.Helper()
	fake := providertest.NewServer(b, h, nil)
	cfg := testConfigTB(b, fake.URL)
	cfg.Transport = transport
	return benchRun(b, cfg)
}

// benchGateway runs the gateway in front of h: a client key, a provider
// key injected, the model renamed, usage counted.
func benchGateway(b *testing.B, h http.Handler) (string, func()) {
	b.Helper()
	fake := providertest.NewServer(b, h, nil)
	cfg := gatewayConfig(b, func(cfg *config.Config) {
		cfg.Transport = "socket"
		mustAdd(b, cfg,
			config.Provider{Name: "alpha", BaseURL: fake.URL + "/v1", Keys: []string{"env:ALPHA_KEY_1", "env:ALPHA_KEY_2"}},
			config.Model{Name: "bench-1", Targets: []config.Target{{Provider: "alpha", Model: "upstream-bench-1"}},
				Pricing: &config.Pricing{Currency: "usd", InputPer1M: 1, OutputPer1M: 2}})
	})
	return benchRun(b, cfg)
}

func benchRun(b *testing.B, cfg *config.Config) (string, func()) {
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Getenv: getenvFrom(gwEnv)})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }
}

const benchAnswer = `{"id":"chatcmpl-bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`

func BenchmarkProxyChat(b *testing.B) {
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchAnswer)
	})
	for _, path := range []string{"socket", "fetch", "gateway"} {
		b.Run(path, func(b *testing.B) {
			var url string
			var stop func()
			endpoint, key := "/openai/v1/chat/completions", "sk-bench"
			if path == "gateway" {
				// Routing by model, the client key checked, the provider key
				// injected, the model renamed, usage counted.
				url, stop = benchGateway(b, answer)
				endpoint, key = "/v1/chat/completions", aliceKey
			} else {
				url, stop = benchServer(b, path, answer)
			}
			defer stop()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			body := `{"model":"bench-1","messages":[{"role":"user","content":"Hello!"}]}`
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url+endpoint, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkProxySSE relays one stream of b.N events; the time per op is
// the cost of one event through the proxy (and the fake and the client):
// on a preset, and through the gateway (usage asked for, metered and the
// extra chunk stripped).
func BenchmarkProxySSE(b *testing.B) {
	for _, path := range []string{"preset", "gateway"} {
		b.Run(path, func(b *testing.B) { benchSSE(b, path) })
	}
}

func benchSSE(b *testing.B, path string) {
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for range b.N {
			io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token\"}}],\"usage\":null}\n\n")
			f.Flush()
		}
		io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\ndata: [DONE]\n\n")
	})
	var url string
	var stop func()
	req, _ := http.NewRequest("POST", "", strings.NewReader(`{"model":"bench-1","stream":true,"messages":[{"role":"user","content":"Hello!"}]}`))
	if path == "gateway" {
		url, stop = benchGateway(b, stream)
		req.URL, _ = req.URL.Parse(url + "/v1/chat/completions")
		req.Header.Set("Authorization", "Bearer "+aliceKey)
	} else {
		url, stop = benchServer(b, "socket", stream)
		req.URL, _ = req.URL.Parse(url + "/openai/v1/chat/completions")
		req.Header.Set("Authorization", "Bearer sk-bench")
	}
	req.Host = req.URL.Host
	defer stop()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for n := 0; n < b.N; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(line) > 5 {
			n++
		}
	}
}
