package config

import (
	"crypto/x509"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmproxy/llmproxy/egress"
	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/preset"
)

// MinTokenLength is the shortest auth token llmproxy accepts.
const MinTokenLength = 16

// placeholders are tokens copied from examples (the seeds' own among them).
// Anyone who read the same README could guess them.
var placeholders = []string{
	"your-auth-token", "your_auth_token", "your-token", "your-secret-token", "your-secret",
	"changeme", "change-me", "change_me", "replace-me", "replaceme", "placeholder",
	"my-secret-password-123", "my-secret-token", "secret-token", "auth-token",
	"example-token", "token", "password", "client", "secret", "test-token", "my-custom-key-001",
}

// Validate checks every setting and returns the first bad one as a
// *SettingError.
func (c *Config) Validate() error {
	if err := checkListen(c.Listen); err != nil {
		return err
	}
	if err := checkToken(c.AuthToken); err != nil {
		return err
	}
	if err := checkAdminPassword(c.AdminPassword); err != nil {
		return err
	}
	if c.PresetAuth && c.AuthToken == "" {
		return settingErr("preset_auth", "needs an auth token: presets would answer to no one")
	}
	if _, err := fallback.ParseMode(c.Transport); err != nil {
		return settingErr("transport", "must be auto, socket or fetch")
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return settingErr("log_format", "must be auto, text or json")
	}
	if _, err := c.RootCAs(); err != nil {
		return err
	}
	if _, err := egress.New(egress.Options{Proxy: c.EgressProxy}); err != nil {
		return settingErr("egress_proxy", "%v", err)
	}
	for _, o := range c.CORSOrigins {
		if !validOrigin(o) {
			return settingErr("cors_origins", "each origin must be * or scheme://host[:port]")
		}
	}
	if c.MaxBodyBytes <= 0 {
		return settingErr("max_body_bytes", "must be positive")
	}
	if c.MaxHeaderBytes < 4<<10 {
		return settingErr("max_header_bytes", "must be at least 4096")
	}
	for name, d := range map[string]int64{
		"timeouts.dial": int64(c.Timeouts.Dial), "timeouts.tls_handshake": int64(c.Timeouts.TLSHandshake),
		"timeouts.response_header": int64(c.Timeouts.ResponseHeader), "timeouts.upstream_idle": int64(c.Timeouts.UpstreamIdle),
		"timeouts.read_header": int64(c.Timeouts.ReadHeader), "timeouts.client_idle": int64(c.Timeouts.ClientIdle),
		"timeouts.shutdown":    int64(c.Timeouts.Shutdown),
		"websocket.read_limit": c.WebSocket.ReadLimit, "websocket.idle_timeout": int64(c.WebSocket.IdleTimeout),
		"websocket.ping_interval": int64(c.WebSocket.PingInterval), "websocket.handshake_timeout": int64(c.WebSocket.HandshakeTimeout),
		"gemini.max_resumes": int64(c.Gemini.MaxResumes), "gemini.resume_delay": int64(c.Gemini.ResumeDelay),
		"gemini.attempt_idle_timeout": int64(c.Gemini.AttemptIdleTimeout), "gemini.total_timeout": int64(c.Gemini.TotalTimeout),
	} {
		if d <= 0 {
			return settingErr(name, "must be a positive duration such as 30s or 5m")
		}
	}
	for lang := range c.Gemini.Prompts {
		switch lang {
		case "zh", "en", "ja", "ko", "es", "fr", "de", "ru", "default":
		default:
			return settingErr("gemini.prompts", "languages are zh, en, ja, ko, es, fr, de, ru and default, not %q", lang)
		}
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return settingErr("redis_url", "must be redis://[user:password@]host:port[/db] or rediss://… for TLS")
		} else if pw, ok := u.User.Password(); ok && pw != "" && isPlaceholder(pw) {
			return settingErr("redis_url", "holds a well-known placeholder password; set the one Redis has")
		}
	}
	switch c.RedisFail {
	case "", "open", "closed":
	default:
		return settingErr("redis_fail", "must be open (serve on local counters while Redis is away) or closed (refuse limited keys)")
	}
	if c.RedisSlotTTL != 0 && c.RedisSlotTTL < time.Second {
		return settingErr("redis_slot_ttl", "must be at least 1s (0 means 30s)")
	}
	if c.DatabaseURL != "" {
		// A host, or a Unix socket directory as libpq writes it
		// (postgres:///llmproxy?host=/run/postgresql).
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") ||
			(u.Host == "" && u.Query().Get("host") == "") {
			return settingErr("database_url", "must be postgres://user:password@host:port/db")
		} else if pw, ok := u.User.Password(); ok && pw != "" && isPlaceholder(pw) {
			return settingErr("database_url", "holds a well-known placeholder password; set the one PostgreSQL has")
		}
	}
	switch c.Responses.Store {
	case "", "memory":
	default:
		return settingErr("responses.store", "must be memory (kept in memory for responses.ttl, never on disk) or left out")
	}
	if c.Responses.TTL < 0 || c.Responses.MaxEntries < 0 {
		return settingErr("responses", "ttl and max_entries must not be negative")
	}
	if _, _, err := c.Destinations(); err != nil {
		return err
	}
	if _, err := c.PresetSet(); err != nil {
		return settingErr("presets", "%v", err)
	}
	return nil
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return settingErr("listen", "must be host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return settingErr("listen", "port must be a number from 0 to 65535")
	}
	if strings.ContainsAny(host, " /") {
		return settingErr("listen", "must be host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	return nil
}

// MinAdminPassword is the shortest admin password accepted, in
// characters (not bytes).
const MinAdminPassword = 12

func checkAdminPassword(pw string) error {
	if pw == "" {
		return nil // the panel is off
	}
	return CheckAdminPassword(pw)
}

// adminPlaceholders are passwords copied from READMEs and examples (seed
// 001 suggests 123456); anyone who read the same page could guess them.
var adminPlaceholders = []string{
	"123456", "12345678", "123456789", "1234567890", "123456789012", "password", "password123", "password1234",
	"admin", "admin123", "admin123456", "administrator", "changeme", "change-me", "change_me", "changeme123",
	"letmein", "qwerty", "qwertyuiop", "secret", "placeholder", "replace-me", "replaceme", "your-password",
	"your_password", "yourpassword", "your-admin-password", "your_admin_password", "my-secret-password",
	"my-secret-password-123", "admin-password", "admin_password", "adminpassword", "llmproxy", "llmproxy-admin",
}

// CheckAdminPassword says why pw may not guard the admin panel, as a
// *SettingError naming admin_password, or nil: Validate and the panel
// (admin.New) both use it, so that llmproxy check and serve agree.
func CheckAdminPassword(pw string) error {
	lower := strings.ToLower(pw)
	first, _ := utf8.DecodeRuneInString(pw)
	if pw != "" && (isPlaceholder(pw) || slices.Contains(adminPlaceholders, lower) || strings.Trim(pw, string(first)) == "") {
		return settingErr("admin_password", "is a well-known placeholder; choose a long random one, e.g. openssl rand -base64 18")
	}
	if utf8.RuneCountInString(pw) < MinAdminPassword {
		return settingErr("admin_password", "is shorter than %d characters; choose a long random one, e.g. openssl rand -base64 18", MinAdminPassword)
	}
	return nil
}

// isPlaceholder recognises values copied from examples, whatever their
// length.
func isPlaceholder(v string) bool {
	lower := strings.ToLower(v)
	for _, p := range placeholders {
		if lower == p {
			return true
		}
	}
	return strings.HasPrefix(lower, "your-") || strings.HasPrefix(lower, "your_") ||
		strings.Contains(lower, "changeme") || strings.Contains(lower, "change-me") || strings.Contains(lower, "placeholder") ||
		strings.Count(v, v[:1]) == len(v) || lower == "123456" || lower == "admin" || lower == "12345678" ||
		lower == "123456789012" || lower == "adminpassword" || lower == "admin-password"
}

func checkToken(token string) error {
	if token == "" {
		return nil
	}
	// A placeholder is named as one, however short: the user copied it.
	if isPlaceholder(token) {
		return settingErr("auth_token", "is a well-known placeholder; generate one with: openssl rand -hex 24")
	}
	if len(token) < MinTokenLength {
		return settingErr("auth_token", "is shorter than %d characters; generate one with: openssl rand -hex 24", MinTokenLength)
	}
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return settingErr("auth_token", "may hold only letters, digits and - . _ ~ (it is a URL path segment)")
		}
	}
	return nil
}

func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.User == nil
}

// RootCAs returns the system roots plus UpstreamCA's certificates, or nil
// (meaning the system roots) when no extra file is set.
func (c *Config) RootCAs() (*x509.CertPool, error) {
	if c.UpstreamCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.UpstreamCA)
	if err != nil {
		return nil, settingErr("upstream_ca", "cannot read the file")
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, settingErr("upstream_ca", "holds no PEM certificate")
	}
	return pool, nil
}

// Destinations splits AllowedDestinations into networks and host names.
func (c *Config) Destinations() ([]netip.Prefix, []string, error) {
	var prefixes []netip.Prefix
	var hosts []string
	for _, d := range c.AllowedDestinations {
		switch {
		case strings.Contains(d, "/"):
			p, err := netip.ParsePrefix(d)
			if err != nil {
				return nil, nil, settingErr("allowed_destinations", "%q is not a valid CIDR", d)
			}
			prefixes = append(prefixes, p.Masked())
		default:
			if a, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
				prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if d == "" || strings.ContainsAny(d, " :@") {
				return nil, nil, settingErr("allowed_destinations", "%q is neither a CIDR, an IP address nor a host name", d)
			}
			hosts = append(hosts, strings.ToLower(strings.TrimSuffix(d, ".")))
		}
	}
	return prefixes, hosts, nil
}

// PresetSet resolves the preset table with the configured overrides.
func (c *Config) PresetSet() (*preset.Set, error) {
	return preset.NewSet(preset.Builtin(), c.Presets)
}
