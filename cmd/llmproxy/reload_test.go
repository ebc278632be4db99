//go:build unix

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/logbuf"
	"github.com/llmproxy/llmproxy/providertest"
)

// SIGHUP re-reads the configuration file: a new model route is served at
// once; a bad file keeps the running configuration and the log says why.
func TestSIGHUPReloadsTheConfigFile(t *testing.T) {
	clearEnv(t)
	fake := providertest.NewOpenAI(t, nil, nil)
	t.Setenv("PROVIDER_KEY", "sk-provider-key-000000000001")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := writeFile(t, "")
	write := func(model string) {
		yaml := "listen: " + addr + "\nupstream_ca: " + providertest.CA(t).CAFile + "\n" +
			"providers:\n  alpha:\n    base_url: " + fake.URL + "/v1\n    keys: [env:PROVIDER_KEY]\n" +
			"models:\n  " + model + ":\n    targets: [{provider: alpha, model: gpt-4o-mini}]\n" +
			"client_keys:\n  - name: me\n    key: ck-reload-test-0000000001\n"
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	var errb logbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"llmproxy", "--config", file, "--log-format", "json"}, &bytes.Buffer{}, &errb)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	status := func(model string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer ck-reload-test-0000000001")
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, errb.String())
			}
		}
	}
	eventually("the first model", func() bool { return status("first") == 200 })

	write("second")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually("the reloaded model", func() bool { return status("second") == 200 })
	if code := status("first"); code != 404 {
		t.Errorf("the removed model answers %d, want 404", code)
	}

	if err := os.WriteFile(file, []byte("listen: "+addr+"\nmodels:\n  third:\n    targets: [{provider: nobody}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually("the failed reload in the log", func() bool { return strings.Contains(errb.String(), "reload failed") })
	if code := status("second"); code != 200 {
		t.Errorf("after a bad file the running model answers %d, want 200", code)
	}
	if logs := errb.String(); !strings.Contains(logs, "nobody") || strings.Contains(logs, "sk-provider-key") {
		t.Errorf("the log should say why, and hold no key:\n%s", logs)
	}
}
