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
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
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

const benchAnswer = `{"id":"chatcmpl-bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}`

func BenchmarkProxyChat(b *testing.B) {
	for _, transport := range []string{"socket", "fetch"} {
		b.Run(transport, func(b *testing.B) {
			url, stop := benchServer(b, transport, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, benchAnswer)
			}))
			defer stop()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			body := `{"model":"bench-1","messages":[{"role":"user","content":"Hello!"}]}`
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url+"/openai/v1/chat/completions", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer sk-bench")
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
// the cost of one event through the proxy (and the fake and the client).
func BenchmarkProxySSE(b *testing.B) {
	url, stop := benchServer(b, "socket", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for range b.N {
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"token\"}}]}\n\n")
			f.Flush()
		}
	}))
	defer stop()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	resp, err := client.Get(url + "/openai/v1/stream")
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
