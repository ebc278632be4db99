package privacy

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
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
		// A name that ends in one of these words counts too: auth_token,
		// x_api_key, refresh_token, client_secret, db_password.
		regexp.MustCompile(`(?i)\b(\w*?(?:api[_-]?key|key|token|auth|password|passwd|secret|signature|sig)=)[^&\s"'#]+`)},
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

// hasFoldAt reports whether s holds the lower-case ASCII word sub at i,
// ignoring case.
func hasFoldAt(s string, i int, sub string) bool {
	return i+len(sub) <= len(s) && strings.EqualFold(s[i:i+len(sub)], sub)
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring case, without allocating.
func containsFold(s, sub string) bool {
	first := sub[0] // a lower-case letter: |0x20 folds its upper case to it
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == first && strings.EqualFold(s[i:i+len(sub)], sub) {
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
	secrets  []string
	shortest int // the length of the shortest secret
}

// NewRedactor returns a Redactor that, besides the known credential formats,
// replaces each of the given literal secrets (empty ones are ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, s)
			if r.shortest == 0 || len(s) < r.shortest {
				r.shortest = len(s)
			}
		}
	}
	return r
}

// cue holds the bytes without which a string holds no credential format:
// one byte of every pattern's fixed text ('=', b and B, '/', the k of sk-,
// the I of AIza; mayHold checks the word a letter starts or the neighbours
// it needs), and '%', without
// which nothing is encoded. Most logged strings (routes, methods, model
// names) hold none of them; they are only searched for the literal
// secrets, as they stand.
var cue = [256]bool{'=': true, 'b': true, 'B': true, '/': true, 'k': true, 'I': true, '%': true}

// mayHold reports whether s may hold a secret: a byte a credential format
// or an encoding needs (see cue), or a literal secret as it stands.
func (r *Redactor) mayHold(s string) bool {
	for i := 0; i < len(s); i++ {
		if !cue[s[i]] {
			continue
		}
		// A letter counts with the neighbours its patterns need: "bearer"
		// or "bot" in any case, "sk-", "AIz".
		switch s[i] {
		case 'b', 'B':
			if hasFoldAt(s, i, "bearer") || hasFoldAt(s, i, "bot") {
				return true
			}
		case 'k':
			if i > 0 && s[i-1] == 's' && i+1 < len(s) && s[i+1] == '-' {
				return true
			}
		case 'I':
			if i > 0 && s[i-1] == 'A' && i+1 < len(s) && s[i+1] == 'z' {
				return true
			}
		default:
			return true
		}
	}
	if r == nil || len(s) < r.shortest {
		return false // no literal secrets, or none that fits in s
	}
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			return true
		}
	}
	return false
}

// maxDecodeRounds is how many rounds of percent-decoding String looks
// through: a URL inside a query value is encoded twice, and one more round
// covers a client or a framework that encoded it once more.
const maxDecodeRounds = 3

// span is a range of bytes of the string being redacted.
type span struct{ lo, hi int }

// String returns s with every secret replaced by Placeholder: the literal
// secrets given to NewRedactor and the credentials secretPatterns find, in
// every spelling percent-encoding gives them — any subset of the characters
// encoded, upper or lower case hex, encoded again (%2541 for A, %%34%31
// too), up to maxDecodeRounds deep — because a server decodes a path or a
// query before comparing, and so would anyone reading the log. key= style
// values are found the same way, with '=' and '&' encoded or not.
//
// It decodes s round by round, keeping for each decoded byte the bytes of
// s it came from, looks for secrets in every round's text, and cuts the
// bytes of s they came from.
func (r *Redactor) String(s string) string {
	if !r.mayHold(s) {
		return s
	}
	return r.redact(s)
}

// redact is String without the look for a cue.
func (r *Redactor) redact(s string) string {
	var cut []span
	view, origin := s, []span(nil) // origin nil: view is s itself
	for round := 0; ; round++ {
		cut = r.find(view, origin, cut)
		if round == maxDecodeRounds || strings.IndexByte(view, '%') < 0 {
			break
		}
		var changed bool
		if view, origin, changed = decodeRound(view, origin); !changed {
			break
		}
	}
	if len(cut) == 0 {
		return s
	}
	return replaceSpans(s, cut)
}

// find appends to cut the bytes of the original string behind every secret
// in view.
func (r *Redactor) find(view string, origin []span, cut []span) []span {
	mapBack := func(lo, hi int) span {
		if origin == nil {
			return span{lo, hi}
		}
		return span{origin[lo].lo, origin[hi-1].hi}
	}
	if r != nil {
		for _, secret := range r.secrets {
			for from := 0; ; {
				i := strings.Index(view[from:], secret)
				if i < 0 {
					break
				}
				i += from
				cut = append(cut, mapBack(i, i+len(secret)))
				from = i + 1
			}
		}
	}
	for _, p := range secretPatterns {
		if !p.maybe(view) {
			continue
		}
		for _, m := range p.re.FindAllStringSubmatchIndex(view, -1) {
			// Group 1 is what stays (key=, Bearer ); the rest is the secret.
			if lo, hi := m[3], m[1]; hi > lo {
				cut = append(cut, mapBack(lo, hi))
			}
		}
	}
	return cut
}

// decodeRound percent-decodes view once, leaving a '%' that starts no valid
// escape as it is (as lenient decoders do), and maps each decoded byte to
// the bytes of the original string it came from.
func decodeRound(view string, origin []span) (string, []span, bool) {
	at := func(i int) span {
		if origin == nil {
			return span{i, i + 1}
		}
		return origin[i]
	}
	out := make([]byte, 0, len(view))
	spans := make([]span, 0, len(view))
	changed := false
	for i := 0; i < len(view); {
		if view[i] == '%' && i+2 < len(view) && ishex(view[i+1]) && ishex(view[i+2]) {
			out = append(out, unhex(view[i+1])<<4|unhex(view[i+2]))
			spans = append(spans, span{at(i).lo, at(i + 2).hi})
			i += 3
			changed = true
			continue
		}
		out = append(out, view[i])
		spans = append(spans, at(i))
		i++
	}
	return string(out), spans, changed
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// replaceSpans returns s with each span (merged where they overlap or
// touch) replaced by Placeholder.
func replaceSpans(s string, cut []span) string {
	slices.SortFunc(cut, func(a, b span) int { return a.lo - b.lo })
	var b strings.Builder
	b.Grow(len(s))
	next := 0
	for i := 0; i < len(cut); {
		lo, hi := cut[i].lo, cut[i].hi
		for i++; i < len(cut) && cut[i].lo <= hi; i++ {
			hi = max(hi, cut[i].hi)
		}
		b.WriteString(s[next:lo])
		b.WriteString(Placeholder)
		next = hi
	}
	b.WriteString(s[next:])
	return b.String()
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that redacts attributes
// named like credentials and scrubs secrets from every string and error value,
// so that not even debug logging can print a token or key.
func (r *Redactor) ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if SensitiveKey(a.Key) {
		return slog.String(a.Key, Placeholder)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			return slog.String(a.Key, r.String(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, r.String(v.Error()))
		case fmt.Stringer:
			// A *url.URL prints whole: token, path and query.
			if s := v.String(); r.String(s) != s {
				return slog.String(a.Key, r.String(s))
			}
		}
	}
	return a
}

// SensitiveKey reports whether a log attribute or header of this name
// holds a secret as a whole (Authorization, x-api-key, token, …). It runs
// for every attribute of every log line, so it compares against the names
// of the same length instead of lowering the name into a map key.
func SensitiveKey(name string) bool {
	if len(name) >= len(sensitiveByLen) {
		return false
	}
	for _, k := range sensitiveByLen[len(name)] {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

// sensitiveByLen holds sensitiveKeys by length.
var sensitiveByLen = func() (t [25][]string) {
	for k := range sensitiveKeys {
		t[len(k)] = append(t[len(k)], k)
	}
	return t
}()
