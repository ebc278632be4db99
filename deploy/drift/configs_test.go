package drift_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/gateway"
)

// mountedConfigs are the configuration files the replicas read: the
// compose one and the ConfigMap's.
func mountedConfigs(t *testing.T) []mounted {
	t.Helper()
	c := loadCompose(t)
	return []mounted{c.config(t, c.replicas[0]), loadManifests(t).config(t)}
}

// TestConfigsCompile: each configuration compiles into a gateway, with
// the keys it names set, and without a warning (a configuration that
// warns teaches a mistake).
func TestConfigsCompile(t *testing.T) {
	t.Parallel()
	for _, m := range mountedConfigs(t) {
		env := map[string]string{}
		for _, n := range m.envRefs(t) {
			env[n] = "fake-" + strings.ToLower(n) + "-0123456789abcdef"
		}
		snap, err := gateway.Compile(m.cfg, gateway.Deps{
			Transport: func(string, string) http.RoundTripper { return refuse{t} },
			Guarded:   refuse{t},
			Health:    gateway.NewHealth(),
			Getenv:    func(k string) string { return env[k] },
		})
		if err != nil {
			t.Errorf("%s: %v", m.where, err)
			continue
		}
		for _, w := range snap.Warnings {
			t.Errorf("%s: warning: %s", m.where, w)
		}
		if !snap.On() || len(snap.Keys().List()) == 0 {
			t.Errorf("%s: no gateway, or no client key to reach it", m.where)
		}
	}
}

// TestConfigsHoldNoSecret: the configuration files are world-readable
// (a ConfigMap, a bind mount): keys are env:NAME (or a client key's
// sha256: digest), and the settings that hold secrets are left to the
// environment.
func TestConfigsHoldNoSecret(t *testing.T) {
	t.Parallel()
	for _, m := range mountedConfigs(t) {
		cfg := m.cfg
		for setting, v := range map[string]string{"auth_token": cfg.AuthToken, "admin_password": cfg.AdminPassword,
			"redis_url": cfg.RedisURL, "database_url": cfg.DatabaseURL} {
			if v != "" {
				t.Errorf("%s: %s is set in the file; it holds a secret, give it as a variable", m.where, setting)
			}
		}
		var keys []string
		for _, p := range cfg.Providers {
			keys = append(keys, p.Keys...)
		}
		for _, p := range cfg.Presets {
			keys = append(keys, p.Keys...)
		}
		for _, k := range cfg.ClientKeys {
			if !strings.HasPrefix(k.Key, "sha256:") {
				keys = append(keys, k.Key)
			}
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "env:") {
				t.Errorf("%s: a key is written in the file; use env:NAME", m.where)
			}
		}
	}
}
