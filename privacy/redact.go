package privacy

import (
	"log/slog"
	"regexp"
	"strings"
)

// Placeholder replaces every secret the proxy would otherwise print.
const Placeholder = "[REDACTED]"

// secretPatterns match credentials wherever they appear in a string: query
// parameters that carry keys, bearer credentials, and the key formats of the
// common providers. Go's *url.Error prints whole URLs, so an error string may
// hold any of them. Each pattern has a cheap test that must pass before its
// regular expression runs: most strings logged (routes, reasons) hold none.
var secretPatterns = []struct {
	maybe func(string) bool
	re    *regexp.Regexp
}{
	{func(s string) bool { return strings.IndexByte(s, '=') >= 0 },
		regexp.MustCompile(`(?i)\b((?:api[_-]?key|key|token|access_token|auth|password|secret|client_secret|signature|sig)=)[^&\s"'#]+`)},
	{func(s string) bool { return containsFold(s, "bearer") },
		regexp.MustCompile(`(?i)\b(bearer\s+)[^\s"',;]+`)},
	{func(s string) bool { return containsFold(s, "bot") },
		regexp.MustCompile(`(?i)\b(bot\s+)[A-Za-z0-9._-]{20,}`)},
	{func(s string) bool { return strings.Contains(s, "sk-") },
		regexp.MustCompile(`()\bsk-[A-Za-z0-9_-]{8,}`)},
	{func(s string) bool { return strings.Contains(s, "AIza") },
		regexp.MustCompile(`()\bAIza[0-9A-Za-z_-]{20,}`)},
	{func(s string) bool { return strings.Contains(s, "/bot") }, // Telegram bot tokens live in the path
		regexp.MustCompile(`(/bot)\d+:[A-Za-z0-9_-]+`)},
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// sensitiveKeys are log attribute and header names whose values are secrets.
var sensitiveKeys = map[string]bool{
	"authorization": true, "x-api-key": true, "x-goog-api-key": true, "api-key": true,
	"token": true, "auth_token": true, "key": true, "password": true, "secret": true,
	"cookie": true, "proxy-authorization": true,
}

// Redactor removes secrets from strings before they are logged.
type Redactor struct {
	secrets []string
}

// NewRedactor returns a Redactor that, besides the known credential formats,
// replaces each of the given literal secrets (empty ones are ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// String returns s with every secret replaced by Placeholder.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, secret := range r.secrets {
			s = strings.ReplaceAll(s, secret, Placeholder)
		}
	}
	for _, p := range secretPatterns {
		if p.maybe(s) {
			s = p.re.ReplaceAllString(s, "${1}"+Placeholder)
		}
	}
	return s
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that redacts attributes
// named like credentials and scrubs secrets from every string and error value,
// so that not even debug logging can print a token or key.
func (r *Redactor) ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if sensitiveKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, Placeholder)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			return slog.String(a.Key, r.String(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			return slog.String(a.Key, r.String(err.Error()))
		}
	}
	return a
}
