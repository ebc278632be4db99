package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startLLMProxyConfig against the test binary standing in for llmproxy
// (main_test.go): the configuration reaches --config, the environment
// reaches the process, and a fresh instance keeps the row's headers.
func TestStartLLMProxyConfig(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	const yaml = "providers:\n  - name: bench\n    base_url: https://127.0.0.1:1\n"
	env := []string{"BENCH_FAKE_LLMPROXY=1", "BENCH_TEST_KEY=sk-upstream-1"}
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	get := func(tg *target, path string) string {
		t.Helper()
		resp, err := c.Do(tg.request("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	tg := startLLMProxyConfig(work, os.Args[0], "llmproxy gateway", yaml, env, "/gw")
	defer tg.stop()
	tg.headers = map[string]string{"Authorization": "Bearer sk-client-1"}
	tg.chatOnly = true
	if !strings.HasSuffix(tg.base, "/gw") || !tg.proxy {
		t.Errorf("target %+v", tg)
	}
	host, _ := tg.hostPath()
	if got := get(&target{base: "http://" + host}, "/config"); got != yaml {
		t.Errorf("--config held %q, want %q", got, yaml)
	}
	if got := get(&target{base: "http://" + host}, "/env"); got != "sk-upstream-1" {
		t.Errorf("environment gave %q", got)
	}
	if got := get(tg, "/v1/chat/completions"); got != "Bearer sk-client-1" {
		t.Errorf("the row's headers sent %q", got)
	}
	if _, err := os.Stat(filepath.Join(work, "llmproxy-gateway.yaml")); err != nil {
		t.Error(err)
	}
	if len(tg.pids()) != 1 {
		t.Errorf("pids %v", tg.pids())
	}

	f := tg.fresh()
	defer f.stop()
	if f.base == tg.base || !f.chatOnly || f.headers["Authorization"] != "Bearer sk-client-1" {
		t.Errorf("fresh instance %+v", f)
	}
	if got := get(f, "/v1/chat/completions"); got != "Bearer sk-client-1" {
		t.Errorf("the fresh instance's headers sent %q", got)
	}
	_, _, goroutines := goRuntime(f.metrics)
	if goroutines < 1 {
		t.Errorf("metrics gave %d goroutines", goroutines)
	}
}
