package preset

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Override changes a built-in preset or defines a new one. Empty fields keep
// the built-in value; for a new preset URL (or Upstreams) is required.
type Override struct {
	URL        string   `yaml:"url"`
	Upstreams  []string `yaml:"upstreams"`
	Transport  string   `yaml:"transport"`
	Headers    []string `yaml:"headers"` // added to the preset's allowlist
	Aliases    []string `yaml:"aliases"`
	Title      string   `yaml:"title"`
	ClientPath string   `yaml:"client_path"`
	// GeminiResume turns the Gemini stream resume on or off for this preset
	// (on by default for gemini only).
	GeminiResume *bool `yaml:"gemini_resume"`
	// Keys are server-side provider keys (each a literal or env:NAME). With
	// keys, the preset injects one and demands a client credential.
	Keys []string `yaml:"keys"`
}

// Reserved are first path segments that belong to llmproxy itself.
var Reserved = []string{"health", "stats", "metrics", "http", "https", "ws", "wss", "assets", "favicon.ico", "robots.txt",
	"v1", "v1beta", "models", "admin"}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// Set is a resolved preset table: built-ins with the operator's overrides.
type Set struct {
	list   []*Preset
	byName map[string]*Preset
}

// NewSet applies overrides (by preset name) to base and validates the result:
// every name and alias unique and not reserved, every URL an absolute http or
// https URL with no user info, query or fragment.
func NewSet(base []Preset, overrides map[string]Override) (*Set, error) {
	presets := slices.Clone(base)
	index := make(map[string]int, len(presets))
	for i, p := range presets {
		index[p.Name] = i
	}
	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic order for new presets
	for _, name := range names {
		o := overrides[name]
		i, ok := index[name]
		if !ok {
			if o.URL == "" && len(o.Upstreams) == 0 {
				return nil, fmt.Errorf("preset %q: a new preset needs a url", name)
			}
			presets = append(presets, Preset{Name: name, Title: name, Key: KeyBearer})
			i = len(presets) - 1
			index[name] = i
		}
		p := &presets[i]
		if o.URL != "" {
			p.BaseURL = o.URL
			p.Upstreams = nil
		}
		if len(o.Upstreams) > 0 {
			p.Upstreams = slices.Clone(o.Upstreams)
		}
		if o.Transport != "" {
			p.Transport = o.Transport
		}
		p.Headers = append(slices.Clone(p.Headers), o.Headers...)
		p.Aliases = append(slices.Clone(p.Aliases), o.Aliases...)
		if o.Title != "" {
			p.Title = o.Title
		}
		if o.ClientPath != "" {
			p.ClientPath = o.ClientPath
		}
		if o.GeminiResume != nil {
			p.Resume = *o.GeminiResume
		}
		if o.Keys != nil {
			p.Keys = slices.Clone(o.Keys)
		}
	}

	s := &Set{byName: make(map[string]*Preset)}
	for i := range presets {
		p := &presets[i]
		if err := p.validate(); err != nil {
			return nil, err
		}
		for _, name := range append([]string{p.Name}, p.Aliases...) {
			if !validName.MatchString(name) || slices.Contains(Reserved, name) {
				return nil, fmt.Errorf("preset %q: %q cannot be a preset path (lower-case letters, digits, '.', '_', '-'; not one of %s)", p.Name, name, strings.Join(Reserved, ", "))
			}
			if other, dup := s.byName[name]; dup {
				return nil, fmt.Errorf("preset %q: path /%s is already used by preset %q", p.Name, name, other.Name)
			}
			s.byName[name] = p
		}
		s.list = append(s.list, p)
	}
	return s, nil
}

func (p *Preset) validate() error {
	switch p.Transport {
	case "", "auto", "socket", "fetch":
	default:
		return fmt.Errorf("preset %q: transport must be auto, socket or fetch", p.Name)
	}
	for _, raw := range p.URLs() {
		if _, err := ParseBaseURL(raw); err != nil {
			return fmt.Errorf("preset %q: %w", p.Name, err)
		}
	}
	return nil
}

// ParseBaseURL parses and checks a preset base URL.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("base URL must look like https://host[:port][/path]")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("base URL must not carry user info, a query or a fragment")
	}
	// Host is sent as written here by both transports: drop a default port
	// so that neither sends "host:443".
	u.Host = strings.ToLower(u.Host)
	if port := u.Port(); u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		u.Host = strings.TrimSuffix(u.Host, ":"+port)
	}
	return u, nil
}

// URLs returns the preset's base URLs: Upstreams when set, else BaseURL.
func (p *Preset) URLs() []string {
	if len(p.Upstreams) > 0 {
		return p.Upstreams
	}
	return []string{p.BaseURL}
}

// Lookup returns the preset reached by a first path segment, or nil.
func (s *Set) Lookup(segment string) *Preset { return s.byName[segment] }

// All returns the presets in table order.
func (s *Set) All() []*Preset { return s.list }
