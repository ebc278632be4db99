package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
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
	{"admin-password", "ADMIN_PASSWORD", "admin_password"},
	{"data-dir", "LLMPROXY_DATA_DIR", "data_dir"},
	{"redis-url", "LLMPROXY_REDIS_URL", "redis_url"},
	{"database-url", "LLMPROXY_DATABASE_URL", "database_url"},
}

// keyOf is a flag's config-file key.
func keyOf(flag string) string {
	for _, s := range settings {
		if s.flag == flag {
			return s.key
		}
	}
	return flag
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
// app and each command get their own. The flags carry no EnvVars:
// loadConfig reads the variables itself, after every flag given before or
// after the command (urfave/cli would let a command's variable hide a flag
// given before the command); the help names each variable.
func serveFlags() []cli.Flag {
	flags := allFlags()
	for _, f := range flags {
		switch f := f.(type) {
		case *boolFlag:
			f.Usage += " [$" + envOf(f.Name)[0] + ": true/false, yes/no, on/off, 1/0]"
		case *cli.StringFlag:
			f.Usage += " [$" + envOf(f.Name)[0] + "]"
		case *cli.StringSliceFlag:
			f.Usage += " [$" + envOf(f.Name)[0] + "]"
		}
	}
	return flags
}

func allFlags() []cli.Flag {
	def := config.Default()
	return []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: def.Listen, Usage: "address to serve on"},
		&cli.StringFlag{Name: "config", Usage: "YAML `FILE` with any setting and per-preset settings"},
		&cli.StringFlag{Name: "auth-token", Usage: "the operator's `TOKEN` (path prefix /<token>/…), at least 16 characters"},
		&boolFlag{&cli.BoolFlag{Name: "preset-auth", Usage: "presets answer only under /<token>/<preset>/…"}},
		&cli.StringFlag{Name: "transport", Value: def.Transport, Usage: "auto (socket, else fetch), socket, or fetch; a preset may override it"},
		&boolFlag{&cli.BoolFlag{Name: "aggressive-fallback", Usage: "also fall back to fetch after the request was sent but before response headers (body buffered)"}},
		&cli.StringSliceFlag{Name: "preset", Usage: "`NAME=URL`: point a preset at another base URL, or add one (repeatable; env: comma-separated)"},
		&cli.StringFlag{Name: "upstream-ca", Usage: "PEM `FILE` of extra roots trusted for upstream TLS, besides the system's"},
		&cli.StringFlag{Name: "egress-proxy", Usage: "send all upstream traffic through this socks5:// or http:// `URL`"},
		&boolFlag{&cli.BoolFlag{Name: "debug", Usage: "debug logging (still redacted)"}},
		&cli.StringFlag{Name: "log-format", Value: def.LogFormat, Usage: "text (coloured on a terminal), json, or auto"},
		&boolFlag{&cli.BoolFlag{Name: "allow-private", Usage: "let generic mode reach private and internal addresses (the proxy itself stays blocked)"}},
		&boolFlag{&cli.BoolFlag{Name: "gemini-resume", Value: def.Gemini.Resume, Usage: "resume Gemini answers that were cut off mid-stream"}},
		&cli.StringFlag{Name: "gemini-prompt-zh", Usage: "the Chinese request to continue a cut-off Gemini answer"},
		&cli.StringFlag{Name: "gemini-prompt-en", Usage: "the English request to continue a cut-off Gemini answer"},
		&cli.StringFlag{Name: "admin-password", Usage: "turns the admin panel on at /admin, behind this `PASSWORD` (at least 12 characters)"},
		&cli.StringFlag{Name: "data-dir", Value: "./llmproxy-data", Usage: "`DIR` of the admin panel's store (created when the panel is on)"},
		&cli.StringFlag{Name: "redis-url", Usage: "share limits, key health and balancing between replicas through Redis at this `URL` (redis:// or rediss://)"},
		&cli.StringFlag{Name: "database-url", Usage: "keep the admin store in PostgreSQL at this `URL` (postgres://…), shared by every replica"},
	}
}

// parseBool reads a boolean setting.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true/false, yes/no, on/off or 1/0", v)
}

// boolFlag is a BoolFlag whose value takes parseBool's spellings
// (--debug=yes, --gemini-resume=off), as the variables and the file do;
// --debug alone still means true.
type boolFlag struct{ *cli.BoolFlag }

func (f *boolFlag) Apply(set *flag.FlagSet) error {
	for _, name := range f.Names() {
		set.Var(&boolValue{f.Value}, name, f.Usage)
	}
	return nil
}

// boolValue is boolFlag's flag.Value.
type boolValue struct{ b bool }

func (v *boolValue) Set(s string) error {
	b, err := parseBool(s)
	if err != nil {
		return errors.New("use true/false, yes/no, on/off or 1/0")
	}
	v.b = b
	return nil
}

func (v *boolValue) String() string   { return strconv.FormatBool(v.b) }
func (v *boolValue) Get() any         { return v.b }
func (v *boolValue) IsBoolFlag() bool { return true } // --debug alone is --debug=true

// flagCtx returns the context in which a flag was given: the command's
// own, or the app's when it came before the command (urfave/cli looks
// only at the first context that defines a flag, which is the command's
// even when the value was given before it). The flags have no EnvVars, so
// IsSet means given on the command line.
func flagCtx(c *cli.Context, name string) *cli.Context {
	for _, ctx := range c.Lineage() {
		if ctx != nil && ctx.IsSet(name) {
			return ctx
		}
	}
	return c
}

// flagOrEnv returns a setting's flag value, given before or after the
// command, else its environment variable's; ok is false when neither is
// set (an empty value counts as unset).
func flagOrEnv(c *cli.Context, flag string) (v string, ok bool) {
	if fc := flagCtx(c, flag); fc.IsSet(flag) {
		if v := fc.String(flag); v != "" {
			return v, true
		}
	}
	v = os.Getenv(envOf(flag)[0])
	return v, v != ""
}

// loadConfig builds the configuration: defaults, then the config file, then
// environment variables, then flags (given before or after the command).
func loadConfig(c *cli.Context) (*config.Config, error) {
	file, _ := flagOrEnv(c, "config")
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	str := func(flag string, dst *string) {
		if v, ok := flagOrEnv(c, flag); ok {
			*dst = v
		}
	}
	var boolErr error
	boolean := func(flag string, dst *bool) {
		if fc := flagCtx(c, flag); fc.IsSet(flag) {
			*dst = fc.Bool(flag)
			return
		}
		env := envOf(flag)[0]
		if v := os.Getenv(env); strings.TrimSpace(v) != "" {
			b, err := parseBool(v)
			if err != nil && boolErr == nil {
				boolErr = &config.SettingError{Setting: keyOf(flag), Msg: err.Error()}
			}
			*dst = b
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
	if boolErr != nil {
		return nil, boolErr
	}
	for flag, lang := range map[string]string{"gemini-prompt-zh": "zh", "gemini-prompt-en": "en"} {
		if v, ok := flagOrEnv(c, flag); ok {
			if cfg.Gemini.Prompts == nil {
				cfg.Gemini.Prompts = make(map[string]string)
			}
			cfg.Gemini.Prompts[lang] = v
		}
	}
	str("admin-password", &cfg.AdminPassword)
	str("data-dir", &cfg.DataDir)
	str("redis-url", &cfg.RedisURL)
	str("database-url", &cfg.DatabaseURL)

	specs := flagCtx(c, "preset").StringSlice("preset")
	if v := os.Getenv(envOf("preset")[0]); len(specs) == 0 && v != "" {
		specs = strings.Split(v, ",") // as urfave/cli split it
	}
	for _, spec := range specs {
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
