package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadYAML(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
listen: 0.0.0.0:9000
transport: socket
cors_origins: ["https://app.example"]
timeouts:
  response_header: 90s
  shutdown: 1m
presets:
  openai:
    url: https://openai.internal
    headers: [X-Team]
  local:
    upstreams: [https://a.lan, https://b.lan]
`), 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.Transport != "socket" || cfg.Timeouts.ResponseHeader != 90*time.Second ||
		cfg.Timeouts.Shutdown != time.Minute || cfg.Timeouts.Dial != 10*time.Second {
		t.Errorf("loaded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set, _ := cfg.PresetSet()
	if set.Lookup("openai").BaseURL != "https://openai.internal" || len(set.Lookup("local").URLs()) != 2 {
		t.Error("preset overrides not applied")
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(path, nil, 0o600)
	cfg, err := Load(path)
	if err != nil || cfg.Listen != Default().Listen {
		t.Fatalf("%+v %v", cfg, err)
	}
}

// A PostgreSQL URL may name a host or a Unix socket directory.
func TestDatabaseURLForms(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"postgres://llmproxy:pw@db.internal:5432/llmproxy?sslmode=require": true,
		"postgresql://db.internal/llmproxy":                                true,
		"postgres:///llmproxy?host=/run/postgresql":                        true,
		"postgres:///llmproxy":                                             false,
		"postgres://llmproxy:change-me@db.internal/llmproxy":               false,
		"mysql://db.internal/llmproxy":                                     false,
		"db.internal:5432":                                                 false,
	} {
		cfg := Default()
		cfg.DatabaseURL = url
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// The admin password check, the one the panel makes too: characters
// counted (not bytes), placeholders refused however long.
func TestCheckAdminPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		password string
		ok       bool
	}{
		{"", false},
		{"abcdefghijk", false},
		{"abcdefghijkl", true},
		{"пароль-длин", false}, // 11 characters, 21 bytes
		{"пароль-длинн", true},
		{"这是一个很长的中文管理密码啊", true},
		{"密密密密密密密密密密密密", false},
		{"administrator", false},
		{"My-Secret-Password-123", false},
		{"your-very-own-password", false},
		{"changeme-changeme", false},
		{"Zq8-vL2pTx9wKr4m", true},
	} {
		err := CheckAdminPassword(tc.password)
		var se *SettingError
		if (err == nil) != tc.ok || err != nil && (!errors.As(err, &se) || se.Setting != "admin_password") {
			t.Errorf("CheckAdminPassword(%q) = %v, want ok=%v", tc.password, err, tc.ok)
		}
		cfg := Default()
		cfg.AdminPassword = tc.password
		if err := cfg.Validate(); (err == nil) != (tc.ok || tc.password == "") {
			t.Errorf("Validate with admin_password %q: %v", tc.password, err)
		}
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	for key, mutate := range map[string]func(*Config){
		"auth_token":       func(c *Config) { c.AuthToken = "aaaaaaaaaaaaaaaaaaaa" },
		"listen":           func(c *Config) { c.Listen = "localhost" },
		"cors_origins":     func(c *Config) { c.CORSOrigins = []string{"app.example"} },
		"max_body_bytes":   func(c *Config) { c.MaxBodyBytes = 0 },
		"timeouts.dial":    func(c *Config) { c.Timeouts.Dial = 0 },
		"upstream_ca":      func(c *Config) { c.UpstreamCA = "/dev/null" },
		"max_header_bytes": func(c *Config) { c.MaxHeaderBytes = 10 },
		"redis_url":        func(c *Config) { c.RedisURL = "http://redis.internal:6379" },
		"redis_fail":       func(c *Config) { c.RedisFail = "maybe" },
		"redis_slot_ttl":   func(c *Config) { c.RedisSlotTTL = 500 * time.Millisecond },
		"redis_url ":       func(c *Config) { c.RedisURL = "redis://:your-redis-password@redis.internal:6379" },
		"database_url":     func(c *Config) { c.DatabaseURL = "mysql://db.internal/llmproxy" },
	} {
		cfg := Default()
		mutate(cfg)
		var se *SettingError
		if err := cfg.Validate(); !errors.As(err, &se) || se.Setting != strings.TrimSpace(key) {
			t.Errorf("%s: got %v", key, err)
		}
	}
}
