package drift_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/store"
)

// placeholder reports whether llmproxy's configuration refuses v as a
// well-known placeholder. Its check is unexported: Validate is asked
// through auth_token, which runs it first.
func placeholder(v string) bool {
	if v == "" {
		return false
	}
	c := config.Default()
	c.AuthToken = v
	var se *config.SettingError
	return errors.As(c.Validate(), &se) && se.Setting == "auth_token" && strings.Contains(se.Msg, "placeholder")
}

// refusal says what refuses value as the variable name when llmproxy (or
// compose) starts with it, "" when nothing does. m is the configuration
// the variable goes with; composeVars are the variables compose expands,
// true for those it requires.
func refusal(t *testing.T, name, value string, m mounted, composeVars map[string]bool) string {
	t.Helper()
	switch {
	case name == "AUTH_TOKEN" || name == "ADMIN_PASSWORD":
		c := config.Default()
		setting := "auth_token"
		if name == "AUTH_TOKEN" {
			c.AuthToken = value
		} else {
			c.AdminPassword, setting = value, "admin_password"
		}
		var se *config.SettingError
		if errors.As(c.Validate(), &se) && se.Setting == setting {
			return "config: " + se.Error()
		}
	case name == "LLMPROXY_SECRET_KEY":
		// cmd/llmproxy/store.go ignores an empty one (then the panel
		// refuses literal keys): only a value is refused.
		if strings.TrimSpace(value) != "" {
			if _, err := store.ParseSecretKey(value); err != nil {
				return "store.ParseSecretKey: " + err.Error()
			}
		}
	case name == "LLMPROXY_REDIS_URL" || name == "LLMPROXY_DATABASE_URL":
		return urlPlaceholder(t, name, value)
	case slices.Contains(m.envRefs(t), name):
		return compileRefusal(t, m, name, value)
	case composeVars[name]:
		if value == "" {
			return "docker compose: ${" + name + ":?…} is empty"
		}
	}
	return ""
}

// urlPlaceholder: a Redis or PostgreSQL URL placeholder is one llmproxy
// refuses for its placeholder password, and its host is under .invalid,
// which never resolves (RFC 6761 §6.4): even past the check it would reach
// nobody's server.
func urlPlaceholder(t *testing.T, name, value string) string {
	t.Helper()
	c := config.Default()
	setting := "redis_url"
	if name == "LLMPROXY_REDIS_URL" {
		c.RedisURL = value
	} else {
		c.DatabaseURL, setting = value, "database_url"
	}
	u, err := url.Parse(value)
	if err != nil || !strings.HasSuffix(u.Hostname(), ".invalid") {
		t.Errorf("%s: want a host under .invalid", name)
		return ""
	}
	var se *config.SettingError
	if errors.As(c.Validate(), &se) && se.Setting == setting && strings.Contains(se.Msg, "placeholder") {
		return "config: " + se.Error()
	}
	return ""
}

// refuse is the transport of compiled configurations: compiling must send
// nothing.
type refuse struct{ t *testing.T }

var _ http.RoundTripper = refuse{}

func (r refuse) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("compiling sent a request to %s", req.URL.Host)
	return nil, errors.New("no network in this test")
}

// compileRefusal compiles m's gateway with every env:NAME set to a fake
// key, then again with name set to value alone: the second must fail.
func compileRefusal(t *testing.T, m mounted, name, value string) string {
	t.Helper()
	env := map[string]string{}
	for _, n := range m.envRefs(t) {
		env[n] = "fake-" + strings.ToLower(n) + "-0123456789abcdef"
	}
	compile := func() error {
		_, err := gateway.Compile(m.cfg, gateway.Deps{
			Transport: func(string, string) http.RoundTripper { return refuse{t} },
			Guarded:   refuse{t},
			Health:    gateway.NewHealth(),
			Getenv:    func(k string) string { return env[k] },
		})
		return err
	}
	if err := compile(); err != nil {
		t.Fatalf("%s does not compile even with every env: key set: %v", m.where, err)
	}
	env[name] = value
	if err := compile(); err != nil {
		return "gateway.Compile: " + err.Error()
	}
	return ""
}

// keyPrefixes begin providers' keys and common tokens.
var keyPrefixes = []string{"sk-", "sk-ant-", "sk-proj-", "AIza", "ghp_", "github_pat_", "gsk_", "hf_", "xai-", "xoxb-", "AKIA", "pplx-", "r8_"}

// looksLikeKey reports whether v could be a real credential: a URL whose
// password is no placeholder, a known key prefix followed by enough
// characters, or a run of 20 or more key-alphabet characters (hex,
// base64, base64url) mixing letters and digits that is no placeholder.
func looksLikeKey(v string) bool {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" && !placeholder(pw) {
			return true
		}
	}
	keyChar := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+/=", r)
	}
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return !keyChar(r) }) {
		for _, p := range keyPrefixes {
			if strings.HasPrefix(tok, p) && len(tok) >= len(p)+16 {
				return true
			}
		}
		letters := strings.IndexFunc(tok, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
		digits := strings.IndexFunc(tok, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0
		if len(tok) >= 20 && letters && digits && !placeholder(tok) {
			return true
		}
	}
	return false
}

func TestLooksLikeKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, v string
		want    bool
	}{
		{name: "openai project key", v: "sk-proj-Ab3dEf0123456789GhIjKl", want: true},
		{name: "anthropic key", v: "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", want: true},
		{name: "gemini key", v: "AIzaSyA1b2C3d4E5f6G7h8I9j0", want: true},
		{name: "hex secret", v: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", want: true},
		{name: "base64 secret", v: "q8Zt3Xb1/7yP0KfV9sLw2mN4cR6hJ8aE", want: true},
		{name: "redis url with a password", v: "redis://:hunter2hunter2@redis:6379/0", want: true},
		{name: "postgres url with a password", v: "postgres://llmproxy:S3cretPass@db:5432/llmproxy", want: true},
		{name: "placeholder", v: "change-me"},
		{name: "empty", v: ""},
		{name: "url with a placeholder password", v: "redis://:change-me@redis.example.invalid:6379/0"},
		{name: "url without a password", v: "postgres://llmproxy:@postgres:5432/llmproxy?sslmode=disable"},
		{name: "path", v: "/etc/llmproxy/config.yaml"},
		{name: "listen address", v: ":8080"},
		{name: "memory limit", v: "450MiB"},
		{name: "long words without digits", v: "registry.example.com/llmproxy-gateway-frontend"},
		{name: "short prefix", v: "sk-short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := looksLikeKey(tc.v); got != tc.want {
				t.Errorf("looksLikeKey(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

// TestPlaceholderOracle keeps the question asked of config meaningful: if
// its message changed, every placeholder check here would go blind.
func TestPlaceholderOracle(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"change-me": true, "CHANGEME": true, "your-token": true,
		"": false, "3q7ZpL0xW9vB2nK8": false, "redis.example.invalid": false} {
		if placeholder(v) != want {
			t.Errorf("placeholder(%q) = %v, want %v", v, !want, want)
		}
	}
}
