package access

import (
	"errors"
	"strings"
)

// Patterns is a list of names and * patterns (model names, preset names).
// A nil list matches everything; an empty non-nil list matches nothing.
type Patterns []Pattern

// Pattern is a name, or a glob in which * stands for any run of
// characters, '/' included (model names hold slashes:
// accounts/fireworks/models/…, meta-llama/…).
type Pattern struct {
	raw   string
	parts []string // split at '*'; one part means no wildcard
}

// CompilePattern checks and compiles one pattern.
func CompilePattern(s string) (Pattern, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Pattern{}, errors.New("empty name or pattern")
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		return Pattern{}, errors.New("control character in a name or pattern")
	}
	return Pattern{raw: s, parts: strings.Split(s, "*")}, nil
}

// CompilePatterns compiles a list; nil stays nil (everything).
func CompilePatterns(list []string) (Patterns, error) {
	if list == nil {
		return nil, nil
	}
	out := make(Patterns, 0, len(list))
	for _, s := range list {
		p, err := CompilePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.raw }

// Literal reports whether the pattern is a plain name.
func (p Pattern) Literal() bool { return len(p.parts) == 1 }

// Specificity orders patterns: more literal characters match more
// narrowly, so they are tried first.
func (p Pattern) Specificity() int { return len(p.raw) - (len(p.parts) - 1) }

// Match reports whether name matches the pattern (case-sensitive: model
// names are).
func (p Pattern) Match(name string) bool {
	if len(p.parts) == 1 {
		return name == p.raw
	}
	first, last := p.parts[0], p.parts[len(p.parts)-1]
	if len(name) < len(first)+len(last) || !strings.HasPrefix(name, first) || !strings.HasSuffix(name, last) {
		return false
	}
	rest := name[len(first) : len(name)-len(last)]
	for _, mid := range p.parts[1 : len(p.parts)-1] {
		i := strings.Index(rest, mid)
		if i < 0 {
			return false
		}
		rest = rest[i+len(mid):]
	}
	return true
}

// Match reports whether any pattern matches; a nil list matches all.
func (ps Patterns) Match(name string) bool {
	if ps == nil {
		return true
	}
	for _, p := range ps {
		if p.Match(name) {
			return true
		}
	}
	return false
}

// Strings returns the patterns as written; nil for nil.
func (ps Patterns) Strings() []string {
	if ps == nil {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.raw
	}
	return out
}
