package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/internal/logbuf"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, "still waiting for "+what, cond)
}

// eventuallyWithin polls cond until it holds; once wait has passed it
// fails the test, saying what.
func eventuallyWithin(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", wait, what)
		}
	}
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, append([]string{"llmproxy"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "llmproxy.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearEnv unsets every variable llmproxy reads, for the duration of a test.
func clearEnv(t *testing.T) {
	for _, s := range settings {
		t.Setenv(s.env, "")
		os.Unsetenv(s.env)
	}
	for _, name := range []string{config.EnvRoutesConfig, config.EnvProxyAuthToken, config.EnvDefaultProvider,
		config.EnvDefaultToken, config.EnvAdditionalProviders, config.EnvLoadBalancing} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

func TestBadSettingsExit2NamingTheSetting(t *testing.T) {
	clearEnv(t)
	unknownKey := writeFile(t, "listen: 127.0.0.1:0\ntransprot: socket\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"short token", nil, []string{"--auth-token", "short"}, "--auth-token (AUTH_TOKEN"},
		{"placeholder token from env", map[string]string{"AUTH_TOKEN": "your-auth-token"}, nil, "AUTH_TOKEN"},
		{"placeholder token, long", map[string]string{"AUTH_TOKEN": "my-secret-password-123"}, nil, "placeholder"},
		{"token with a slash", nil, []string{"--auth-token", "abcdefghijklmnop/qrs"}, "--auth-token"},
		{"transport", nil, []string{"--transport", "pigeon"}, "--transport (LLMPROXY_TRANSPORT"},
		{"transport from env", map[string]string{"LLMPROXY_TRANSPORT": "pigeon"}, nil, "LLMPROXY_TRANSPORT"},
		{"bool from env", map[string]string{"PRESET_AUTH_ENABLED": "maybe"}, nil, "PRESET_AUTH_ENABLED"},
		{"bool from env 2", map[string]string{"AGGRESSIVE_FALLBACK": "yes please"}, nil, "AGGRESSIVE_FALLBACK"},
		{"listen", nil, []string{"--listen", "nonsense"}, "--listen (LLMPROXY_LISTEN"},
		{"upstream CA", nil, []string{"--upstream-ca", "/nonexistent/ca.pem"}, "--upstream-ca"},
		{"egress proxy", nil, []string{"--egress-proxy", "ftp://proxy:21"}, "--egress-proxy"},
		{"log format", nil, []string{"--log-format", "xml"}, "--log-format"},
		{"preset spec", nil, []string{"--preset", "openai"}, "--preset"},
		{"preset URL", nil, []string{"--preset", "openai=api.openai.com"}, "--preset"},
		{"preset auth without a token", nil, []string{"--preset-auth"}, "--preset-auth"},
		{"load balancing strategy", map[string]string{"DEFAULT_OPENAI_PROVIDER": "https://api.fireworks.ai/inference",
			"DEFAULT_OPENAI_TOKEN": "fw_abcdefabcdef", "LOAD_BALANCING_STRATEGY": "bogus"}, []string{"check"}, "LOAD_BALANCING_STRATEGY (environment variable)"},
		{"missing config file", nil, []string{"--config", "/nonexistent.yaml"}, "--config (LLMPROXY_CONFIG)"},
		{"unknown key in config file", nil, []string{"--config", unknownKey}, "transprot"},
		{"unknown flag", nil, []string{"--frobnicate"}, "frobnicate"},
		{"serve with a stray argument", nil, []string{"serve", "now"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t, tc.args...)
			if code != exitSettings {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitSettings, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not name %q", stderr, tc.want)
			}
			for _, v := range tc.env {
				if strings.HasPrefix(v, "your-") || strings.HasPrefix(v, "my-secret") {
					if strings.Contains(stderr, v) {
						t.Errorf("stderr repeats the token: %q", stderr)
					}
				}
			}
		})
	}
}

// A bad flag or flag value is one line and exit 2 on every command, not
// the whole help and exit 1.
func TestBadFlagsExit2OnEveryCommand(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"--debug=maybe"}, {"serve", "--debug=maybe"}, {"check", "--debug=maybe"}, {"presets", "--debug=maybe"},
		{"--debug=maybe", "presets"}, {"health", "--timeout=soon"}, {"export", "--with-secrets=maybe"},
		{"import", "--listen"}, {"presets", "--frobnicate"}, {"version", "--frobnicate"}, {"completion", "--frobnicate"},
	} {
		code, out, stderr := runCLI(t, args...)
		if code != exitSettings || out != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "llmproxy: ") {
			t.Errorf("llmproxy %v: exit %d, want %d and one line\nstdout %q\nstderr %q", args, code, exitSettings, out, stderr)
		}
	}
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "transport: fetch\npresets:\n  openai:\n    url: https://file.example\n")
	transportOf := func(args ...string) (string, string) {
		t.Helper()
		code, out, stderr := runCLI(t, append([]string{"presets"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && f[0] == "openai" { // NAME PATHS BASE-URL SDK-URL TRANSPORT KEY
				return f[4], f[2]
			}
		}
		t.Fatalf("no openai line in:\n%s", out)
		return "", ""
	}
	if mode, _ := transportOf(); mode != "auto" {
		t.Errorf("default transport = %s", mode)
	}
	if mode, url := transportOf("--config", file); mode != "fetch" || url != "https://file.example" {
		t.Errorf("file: %s %s", mode, url)
	}
	t.Setenv("LLMPROXY_CONFIG", file)
	t.Setenv("LLMPROXY_TRANSPORT", "socket")
	if mode, _ := transportOf(); mode != "socket" {
		t.Errorf("env over file: %s", mode)
	}
	if mode, _ := transportOf("--transport", "auto"); mode != "auto" {
		t.Errorf("flag over env: %s", mode)
	}
	t.Setenv("LLMPROXY_PRESETS", "openai=https://env.example,newone=https://new.example")
	if _, url := transportOf(); url != "https://env.example" {
		t.Errorf("env preset over file: %s", url)
	}
	if _, url := transportOf("--preset", "openai=https://flag.example"); url != "https://flag.example" {
		t.Errorf("flag preset over env: %s", url)
	}
}

// openaiRow runs llmproxy with args and returns the openai preset's
// transport and base URL from the preset table.
func openaiRow(t *testing.T, args ...string) (transport, url string) {
	t.Helper()
	code, out, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == "openai" { // NAME PATHS BASE-URL SDK-URL TRANSPORT KEY
			return f[4], f[2]
		}
	}
	t.Fatalf("%v: no openai line in:\n%s", args, out)
	return "", ""
}

// A flag beats its variable wherever it is given: before the command too,
// although every command declares the flags again.
func TestFlagBeforeTheCommandBeatsItsVariable(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "transport: socket\n")
	t.Setenv("LLMPROXY_TRANSPORT", "socket")
	t.Setenv("LLMPROXY_PRESETS", "openai=https://env.example")
	for _, args := range [][]string{
		{"--transport", "fetch", "--preset", "openai=https://flag.example", "presets"},
		{"presets", "--transport", "fetch", "--preset", "openai=https://flag.example"},
		{"--transport", "socket", "--preset", "openai=https://other.example", "presets", "--transport", "fetch", "--preset", "openai=https://flag.example"},
	} {
		if mode, url := openaiRow(t, args...); mode != "fetch" || url != "https://flag.example" {
			t.Errorf("%v with LLMPROXY_TRANSPORT=socket: transport %s, URL %s; want fetch, https://flag.example", args, mode, url)
		}
	}
	// An empty variable is unset: it hides neither a flag nor the file.
	t.Setenv("LLMPROXY_TRANSPORT", "")
	t.Setenv("LLMPROXY_PRESETS", "")
	if mode, url := openaiRow(t, "--transport", "fetch", "presets"); mode != "fetch" || url != "https://api.openai.com" {
		t.Errorf("empty variables, flag before the command: %s %s", mode, url)
	}
	if mode, _ := openaiRow(t, "--config", file, "presets"); mode != "socket" {
		t.Errorf("empty variable over the file: %s", mode)
	}
	// The variable still beats the default.
	t.Setenv("LLMPROXY_TRANSPORT", "fetch")
	if mode, _ := openaiRow(t, "presets"); mode != "fetch" {
		t.Errorf("variable over the default: %s", mode)
	}
}

func TestBooleansAcceptSeedSpellings(t *testing.T) {
	clearEnv(t)
	for _, v := range []string{"true", "false", "1", "0", "TRUE", "False"} {
		t.Setenv("DEBUG_MODE", v)
		t.Setenv("AGGRESSIVE_FALLBACK", v)
		if code, _, stderr := runCLI(t, "presets"); code != 0 {
			t.Errorf("%q: exit %d: %s", v, code, stderr)
		}
	}
}

// configFrom runs an app shaped as llmproxy's (the flags on the app and
// on a command) with args and returns the configuration loadConfig built.
func configFrom(t *testing.T, args ...string) *config.Config {
	t.Helper()
	var cfg *config.Config
	load := func(c *cli.Context) error {
		var err error
		cfg, err = loadConfig(c)
		return err
	}
	app := &cli.App{Flags: serveFlags(), Action: load, Writer: io.Discard, ErrWriter: io.Discard,
		Commands: []*cli.Command{{Name: "presets", Flags: serveFlags(), Action: load}}}
	if err := app.Run(append([]string{"llmproxy"}, args...)); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg
}

// Boolean flags take the variables' spellings; a flag alone means true.
func TestBooleanFlagsAcceptSeedSpellings(t *testing.T) {
	clearEnv(t)
	if cfg := configFrom(t, "--debug=yes", "presets"); !cfg.Debug {
		t.Error("--debug=yes: debug off")
	}
	if cfg := configFrom(t, "presets", "--gemini-resume=off"); cfg.Gemini.Resume {
		t.Error("--gemini-resume=off: resume on")
	}
	if cfg := configFrom(t, "--allow-private=ON", "--aggressive-fallback=1"); !cfg.AllowPrivate || !cfg.AggressiveFallback {
		t.Errorf("--allow-private=ON --aggressive-fallback=1: %v %v", cfg.AllowPrivate, cfg.AggressiveFallback)
	}
	if cfg := configFrom(t, "presets", "--debug"); !cfg.Debug {
		t.Error("--debug alone: debug off")
	}
	t.Setenv("DEBUG_MODE", "on")
	if cfg := configFrom(t, "--debug=false", "presets"); cfg.Debug {
		t.Error("--debug=false with DEBUG_MODE=on: debug on")
	}
	if cfg := configFrom(t, "presets", "--debug=no"); cfg.Debug {
		t.Error("--debug=no with DEBUG_MODE=on: debug on")
	}
	for _, args := range [][]string{{"--debug=yes", "presets"}, {"presets", "--gemini-resume=off"}, {"--preset-auth=no", "presets"}} {
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Errorf("llmproxy %v: exit %d: %s", args, code, stderr)
		}
	}
}

// waitListening waits up to 10 s for run's log to say it listens (within
// the log sink's flush), however long a busy machine takes to start it;
// the caller's own checks of the log say what is missing if it never does.
func waitListening(errb *logbuf.Buffer) {
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), "llmproxy listening") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeRunsAndStops(t *testing.T) {
	clearEnv(t)
	var out, errb logbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"llmproxy", "--listen", "127.0.0.1:0", "--log-format", "json",
			"--auth-token", "operator-token-abcdef0123456789"}, &out, &errb)
	}()
	waitListening(&errb)
	cancel() // what SIGINT/SIGTERM does through signal.NotifyContext
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := errb.String()
	if !strings.Contains(logs, "llmproxy listening") || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "operator-token-abcdef") {
		t.Errorf("the token was logged:\n%s", logs)
	}
}

func TestListenFailureIsNotASettingsError(t *testing.T) {
	clearEnv(t)
	code, _, stderr := runCLI(t, "--listen", "192.0.2.1:1") // not an address of this machine
	if code != exitFailure || !strings.Contains(stderr, "cannot listen") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestVersionAndPresets(t *testing.T) {
	clearEnv(t)
	code, out, _ := runCLI(t, "version")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "presets")
	if code != 0 || !strings.Contains(out, "https://api.openai.com ") || !strings.Contains(out, "/openai/v1") || strings.Count(out, "\n") < 26 {
		t.Errorf("presets: %d\n%s", code, out)
	}
}

func TestGeminiVariables(t *testing.T) {
	clearEnv(t)
	t.Setenv("GEMINI_RETRY_PROMPT_EN", "Please go on.")
	t.Setenv("GEMINI_RETRY_PROMPT_CN", "请继续。")
	t.Setenv("GEMINI_SPECIAL_HANDLING_ENABLED", "0")
	var cfg *config.Config
	app := &cli.App{Flags: serveFlags(), Action: func(c *cli.Context) error {
		var err error
		cfg, err = loadConfig(c)
		return err
	}}
	if err := app.Run([]string{"llmproxy"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Gemini.Prompts["en"] != "Please go on." || cfg.Gemini.Prompts["zh"] != "请继续。" || cfg.Gemini.Resume {
		t.Errorf("gemini settings: %+v", cfg.Gemini)
	}
}
