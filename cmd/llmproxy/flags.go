package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
)

// setting ties a flag to its environment variable and its config-file key.
// These names are an interface other tools rely on: keep them.
type setting struct {
	flag, env, key string
}

var settings = []setting{
	{"listen", "LLMPROXY_LISTEN", "listen"},
	{"config", "LLMPROXY_CONFIG", "config"},
	{"auth-token", "AUTH_TOKEN", "auth_token"},
	{"preset-auth", "PRESET_AUTH_ENABLED", "preset_auth"},
	{"transport", "LLMPROXY_TRANSPORT", "transport"},
	{"aggressive-fallback", "AGGRESSIVE_FALLBACK", "aggressive_fallback"},
	{"preset", "LLMPROXY_PRESETS", "presets"},
	{"upstream-ca", "LLMPROXY_UPSTREAM_CA", "upstream_ca"},
	{"egress-proxy", "LLMPROXY_EGRESS_PROXY", "egress_proxy"},
	{"debug", "DEBUG_MODE", "debug"},
	{"log-format", "LLMPROXY_LOG_FORMAT", "log_format"},
	{"allow-private", "LLMPROXY_ALLOW_PRIVATE", "allow_private"},
	{"gemini-resume", "GEMINI_SPECIAL_HANDLING_ENABLED", "gemini.resume"},
	{"gemini-prompt-zh", "GEMINI_RETRY_PROMPT_CN", "gemini.prompts.zh"},
	{"gemini-prompt-en", "GEMINI_RETRY_PROMPT_EN", "gemini.prompts.en"},
}

func envOf(flag string) []string {
	for _, s := range settings {
		if s.flag == flag {
			return []string{s.env}
		}
	}
	panic("no setting for flag " + flag)
}

// describe names a setting by all its spellings, for error messages.
func describe(key string) string {
	for _, s := range settings {
		if s.key == key {
			if s.key == "config" {
				return fmt.Sprintf("--%s (%s)", s.flag, s.env)
			}
			return fmt.Sprintf("--%s (%s, or %s in the config file)", s.flag, s.env, s.key)
		}
	}
	if name, _, _ := strings.Cut(key, ":"); isEnvName(name) {
		return key + " (environment variable)"
	}
	return key + " (config file)"
}

// isEnvName reports whether s looks like an environment variable name
// (the seed systems' settings are named by their variable).
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// serveFlags returns fresh flag values: urfave/cli flags hold state, so the
// app and each command get their own.
func serveFlags() []cli.Flag {
	def := config.Default()
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", EnvVars: envOf("listen"), Value: def.Listen, Usage: "address to serve on"},
		&cli.StringFlag{Name: "config", EnvVars: envOf("config"), Usage: "YAML `FILE` with any setting and per-preset settings"},
		&cli.StringFlag{Name: "auth-token", EnvVars: envOf("auth-token"), Usage: "the operator's `TOKEN` (path prefix /<token>/…), at least 16 characters"},
		&cli.BoolFlag{Name: "preset-auth", EnvVars: envOf("preset-auth"), Usage: "presets answer only under /<token>/<preset>/…"},
		&cli.StringFlag{Name: "transport", EnvVars: envOf("transport"), Value: def.Transport, Usage: "auto (socket, else fetch), socket, or fetch; a preset may override it"},
		&cli.BoolFlag{Name: "aggressive-fallback", EnvVars: envOf("aggressive-fallback"), Usage: "also fall back to fetch after the request was sent but before response headers (body buffered)"},
		&cli.StringSliceFlag{Name: "preset", EnvVars: envOf("preset"), Usage: "`NAME=URL`: point a preset at another base URL, or add one (repeatable; env: comma-separated)"},
		&cli.StringFlag{Name: "upstream-ca", EnvVars: envOf("upstream-ca"), Usage: "PEM `FILE` of extra roots trusted for upstream TLS, besides the system's"},
		&cli.StringFlag{Name: "egress-proxy", EnvVars: envOf("egress-proxy"), Usage: "send all upstream traffic through this socks5:// or http:// `URL`"},
		&cli.BoolFlag{Name: "debug", EnvVars: envOf("debug"), Usage: "debug logging (still redacted)"},
		&cli.StringFlag{Name: "log-format", EnvVars: envOf("log-format"), Value: def.LogFormat, Usage: "text (coloured on a terminal), json, or auto"},
		&cli.BoolFlag{Name: "allow-private", EnvVars: envOf("allow-private"), Usage: "let generic mode reach private and internal addresses (the proxy itself stays blocked)"},
		&cli.BoolFlag{Name: "gemini-resume", EnvVars: envOf("gemini-resume"), Value: def.Gemini.Resume, Usage: "resume Gemini answers that were cut off mid-stream"},
		&cli.StringFlag{Name: "gemini-prompt-zh", EnvVars: envOf("gemini-prompt-zh"), Usage: "the Chinese request to continue a cut-off Gemini answer"},
		&cli.StringFlag{Name: "gemini-prompt-en", EnvVars: envOf("gemini-prompt-en"), Usage: "the English request to continue a cut-off Gemini answer"},
	}
}

// loadConfig builds the configuration: defaults, then the config file, then
// environment variables and flags (urfave/cli already lets a flag beat its
// environment variable).
func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return nil, err
	}
	str := func(flag string, dst *string) {
		if c.IsSet(flag) && c.String(flag) != "" { // an empty variable means unset
			*dst = c.String(flag)
		}
	}
	boolean := func(flag string, dst *bool) {
		if c.IsSet(flag) {
			*dst = c.Bool(flag)
		}
	}
	str("listen", &cfg.Listen)
	str("auth-token", &cfg.AuthToken)
	boolean("preset-auth", &cfg.PresetAuth)
	str("transport", &cfg.Transport)
	boolean("aggressive-fallback", &cfg.AggressiveFallback)
	str("upstream-ca", &cfg.UpstreamCA)
	str("egress-proxy", &cfg.EgressProxy)
	boolean("debug", &cfg.Debug)
	str("log-format", &cfg.LogFormat)
	boolean("allow-private", &cfg.AllowPrivate)
	boolean("gemini-resume", &cfg.Gemini.Resume)
	for flag, lang := range map[string]string{"gemini-prompt-zh": "zh", "gemini-prompt-en": "en"} {
		if c.IsSet(flag) && c.String(flag) != "" {
			if cfg.Gemini.Prompts == nil {
				cfg.Gemini.Prompts = make(map[string]string)
			}
			cfg.Gemini.Prompts[lang] = c.String(flag)
		}
	}

	for _, spec := range c.StringSlice("preset") {
		name, rawURL, ok := strings.Cut(strings.TrimSpace(spec), "=")
		if !ok || name == "" || rawURL == "" {
			return nil, &config.SettingError{Setting: "presets", Msg: "each --preset must be NAME=URL, e.g. openai=https://api.openai.com"}
		}
		if cfg.Presets == nil {
			cfg.Presets = make(map[string]preset.Override)
		}
		o := cfg.Presets[name]
		o.URL, o.Upstreams = rawURL, nil
		cfg.Presets[name] = o
	}
	// The seed Workers' own variables (ROUTES_CONFIG, PROXY_AUTH_TOKEN,
	// DEFAULT_OPENAI_PROVIDER, ADDITIONAL_PROVIDERS, …).
	if err := cfg.ApplySeedEnv(os.Getenv); err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}
