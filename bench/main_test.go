package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"testing"

	"github.com/llmproxy/llmproxy/internal/leaktest"
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
	leaktest.Main(m)
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

// TestInTurn: even rounds take the table's order, odd rounds the reverse,
// and the table itself is left as it is.
func TestInTurn(t *testing.T) {
	a, b, c := &target{name: "a"}, &target{name: "b"}, &target{name: "c"}
	table := []*target{a, b, c}
	names := func(ts []*target) (s string) {
		for _, t := range ts {
			s += t.name
		}
		return s
	}
	for round, want := range []string{"abc", "cba", "abc", "cba"} {
		if got := names(inTurn(table, round)); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if got := names(table); got != "abc" {
		t.Errorf("the table became %s", got)
	}
}
