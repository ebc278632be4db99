package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/logbuf"
)

func TestVersionSaysWhatBuiltIt(t *testing.T) {
	clearEnv(t)
	code, out, _ := runCLI(t, "version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "llmproxy ") || !strings.HasPrefix(lines[1], "commit ") ||
		!strings.Contains(lines[2], runtime.Version()) {
		t.Errorf("version: %d %q", code, out)
	}
}

// `llmproxy presets` shows the base URL --preset NAME=URL replaces and the
// SDK base URL through llmproxy in columns of their own, and honours
// --preset and --listen given before the command as well as after.
func TestPresetsTable(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"--preset", "openai=https://relay.example", "--listen", "10.0.0.5:9000", "presets"},
		{"presets", "--preset", "openai=https://relay.example", "--listen", "10.0.0.5:9000"},
	} {
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errs)
		}
		var row string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "openai ") {
				row = l
			}
		}
		if !strings.Contains(out, "BASE URL (--preset NAME=URL)") || !strings.Contains(row, "https://relay.example ") ||
			!strings.Contains(row, "http://10.0.0.5:9000/openai/v1") {
			t.Errorf("%v:\n%s", args, out)
		}
	}
}

// `llmproxy check` validates without serving and, for a preset or a
// model, shows exactly what a sample request sends upstream.
func TestCheck(t *testing.T) {
	clearEnv(t)
	t.Setenv("OPENAI_SERVER_KEY", "sk-server-side-key-0000009876")
	file := writeFile(t, `presets:
  openai:
    keys: [env:OPENAI_SERVER_KEY]
providers:
  glm:
    base_url: https://open.bigmodel.cn/api/paas/v4
    keys: [env:OPENAI_SERVER_KEY]
models:
  super-brain:
    targets: [{provider: glm, model: glm-4.7}]
client_keys:
  - name: me
    key: ck-check-client-key-000001
`)
	code, out, errs := runCLI(t, "check", "--config", file, "openai")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	upstream := out[strings.Index(out, "what reaches the upstream"):]
	for _, want := range []string{"configuration OK: 31 presets (1 with server-side keys), 1 providers, 1 model routes, 1 client keys",
		"https://api.openai.com/v1/chat/completions", "Authorization: Bearer …9876", "dropped: "} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, never := range []string{"X-Forwarded-For", "Cookie", "Traceparent", "User-Agent", "Cf-Connecting-Ip", "sk-server-side-key"} {
		if before, _, _ := strings.Cut(upstream, "dropped:"); strings.Contains(before, never) {
			t.Errorf("%s would reach the upstream:\n%s", never, upstream)
		}
	}
	if strings.Contains(out, "sk-server-side-key") {
		t.Error("the provider key was printed")
	}
	code, out, errs = runCLI(t, "check", "--config", file, "super-brain")
	if code != 0 || !strings.Contains(out, "https://open.bigmodel.cn/api/paas/v4/chat/completions") {
		t.Errorf("model: %d %s %s", code, out, errs)
	}
	bad := writeFile(t, "models:\n  x:\n    targets: [{provider: nobody}]\n")
	if code, _, errs := runCLI(t, "check", "--config", bad); code != exitSettings || !strings.Contains(errs, "nobody") {
		t.Errorf("a bad file: %d %s", code, errs)
	}
}

// `llmproxy check` refuses what serve refuses, with the same message: a
// malformed LLMPROXY_SECRET_KEY when the admin store is opened, an admin
// password the panel refuses (characters counted, not bytes).
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	clearEnv(t)
	t.Setenv("LLMPROXY_DATA_DIR", t.TempDir())
	t.Setenv(EnvSecretKey, "nothex")
	// The panel off and no store: serve never reads the key.
	if code, _, errs := runCLI(t, "check"); code != 0 {
		t.Errorf("no store: check exit %d: %s", code, errs)
	}
	for _, tc := range []struct{ password, secretKey, want string }{
		{"Zq8-vL2pTx9wKr4m", "nothex", EnvSecretKey},
		{"administrator", "", "placeholder"},
		{"пароль-длин", "", "shorter than 12 characters"}, // 11 characters, 21 bytes
	} {
		t.Setenv("ADMIN_PASSWORD", tc.password)
		t.Setenv(EnvSecretKey, tc.secretKey)
		code, _, errs := runCLI(t, "check")
		serveCode, _, serveErrs := runCLI(t, "serve", "--listen", "127.0.0.1:0")
		if serveCode != exitSettings || !strings.Contains(serveErrs, tc.want) {
			t.Fatalf("%q: serve: exit %d: %s", tc.password, serveCode, serveErrs)
		}
		if code != serveCode || errs != serveErrs {
			t.Errorf("%q: check: exit %d %q; serve: exit %d %q", tc.password, code, errs, serveCode, serveErrs)
		}
	}
}

// `llmproxy health` exits 0 against a healthy llmproxy and 1 when none
// answers: a container health check without a shell.
func TestHealthCommand(t *testing.T) {
	clearEnv(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if code, _, errs := runCLI(t, "health", "--listen", addr, "--timeout", "1s"); code != exitFailure || !strings.Contains(errs, "not answering") {
		t.Errorf("nothing listening: %d %s", code, errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"llmproxy", "--listen", addr, "--log-format", "json"}, &logbuf.Buffer{}, &logbuf.Buffer{})
	}()
	defer func() { cancel(); <-done }()
	// Wait for the port with a plain dial first: two run() calls parsing
	// flags at once race on urfave/cli's shared help flag (a test-only
	// concern: the binary runs one).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never listened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		code, out, _ := runCLI(t, "health", "--listen", addr)
		if code == 0 && strings.TrimSpace(out) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never ok: %d %s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Completion scripts name every command and flag, and bash (and zsh, when
// it is installed) accept the syntax.
func TestCompletion(t *testing.T) {
	clearEnv(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errs := runCLI(t, "completion", shell)
		if code != 0 {
			t.Fatalf("%s: %d %s", shell, code, errs)
		}
		for _, want := range []string{"serve", "presets", "check", "health", "version", "completion", "listen", "auth-token", "admin-password"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s script lacks %q", shell, want)
			}
		}
		if bin, err := exec.LookPath(shell); err == nil && shell != "fish" {
			path := filepath.Join(t.TempDir(), "llmproxy."+shell)
			os.WriteFile(path, []byte(out), 0o600)
			if msg, err := exec.Command(bin, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v %s", shell, err, msg)
			}
		}
	}
	if code, _, errs := runCLI(t, "completion", "powershell"); code != exitSettings || !strings.Contains(errs, "bash, zsh or fish") {
		t.Errorf("unknown shell: %d %s", code, errs)
	}
}

// Listening beyond loopback while open to anyone starts with one clear
// warning saying what anyone can do and how to close it; closed, none.
func TestExposureWarning(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--listen", "0.0.0.0:0"}, true},
		{[]string{"--listen", "0.0.0.0:0", "--auth-token", "operator-token-abcdef0123456789"}, true}, // presets stay open
		{[]string{"--listen", "0.0.0.0:0", "--auth-token", "operator-token-abcdef0123456789", "--preset-auth"}, false},
		{[]string{"--listen", "127.0.0.1:0"}, false},
	} {
		var errb logbuf.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"llmproxy", "--log-format", "json"}, tc.args...), &logbuf.Buffer{}, &errb)
		}()
		waitListening(&errb)
		cancel()
		<-done
		logs := errb.String()
		warned := strings.Contains(logs, "anyone who reaches the port can")
		if warned != tc.warn {
			t.Errorf("%v: warned %v, want %v:\n%s", tc.args, warned, tc.warn, logs)
		}
		if warned && (!strings.Contains(logs, "--preset-auth") || strings.Count(logs, "anyone who reaches") != 1) {
			t.Errorf("the warning must say how to close it, once:\n%s", logs)
		}
	}
}

func TestListenErrorsSayWhy(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errs := runCLI(t, "--listen", ln.Addr().String())
	if code != exitFailure || !strings.Contains(errs, "another program is using that port") {
		t.Errorf("port in use: %d %s", code, errs)
	}
}
