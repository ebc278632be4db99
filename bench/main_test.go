package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// The floor proxy's tests start servers and goroutines: none may outlive
// them. Run with BENCH_FAKE_LLMPROXY=1, the test binary stands in for
// llmproxy (fakeLLMProxy) so that startLLMProxyConfig can be tested without
// building it.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_FAKE_LLMPROXY") == "1" {
		fakeLLMProxy(os.Args[1:])
		return
	}
	goleak.VerifyTestMain(m)
}

// fakeLLMProxy takes llmproxy's flags and tells what it got: /config the
// configuration file, /env the variable BENCH_TEST_KEY, /metrics the Go
// runtime figures, and any other path the Authorization it was sent.
func fakeLLMProxy(args []string) {
	fs := flag.NewFlagSet("llmproxy", flag.ExitOnError)
	config := fs.String("config", "", "")
	listen := fs.String("listen", "", "")
	fs.String("log-format", "", "")
	fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/config", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(*config)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, os.Getenv("BENCH_TEST_KEY")) })
	mux.HandleFunc("/metrics", floorMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Header.Get("Authorization")) })
	log.Fatal(http.ListenAndServe(*listen, mux))
}
