package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A new user's first hour with the config file: a typo names the key
// meant, a duration without its unit asks for one, a boolean may be
// yes/no/on/off, and a file that cannot be read names its path and why.
func TestConfigFileFriendliness(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"top-level typo", "transprot: socket\n", `unknown key "transprot" at the top level (did you mean "transport"?)`},
		{"nested typo", "timeouts:\n  upstrem_idle: 5m\n", `unknown key "upstrem_idle" in timeouts (did you mean "upstream_idle"?)`},
		{"typo in a provider", "providers:\n  a:\n    base_url: https://x/v1\n    kindd: openai\n", `in providers.a (did you mean "kind"?)`},
		{"typo in a client key", "client_keys:\n  - name: a\n    rmp: 3\n", `(did you mean "rpm"?)`},
		{"dash for underscore", "max-body-bytes: 10\n", `(did you mean "max_body_bytes"?)`},
		{"nothing near", "zzzzzzzzzz: 1\n", `unknown key "zzzzzzzzzz" at the top level`},
		{"duration without a unit", "timeouts:\n  upstream_idle: 10\n", "line 2: timeouts.upstream_idle: a duration needs a unit: write 10s"},
		{"line of the error", "listen: :8080\ngemini:\n  resume_delay: 500\n", "line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.name == "nothing near" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("a suggestion for a key like no other: %v", err)
			}
		})
	}
	_, err := Parse([]byte("debug: yes\nallow_private: on\ndashboard: off\ngemini:\n  resume: no\n  resume_delay: 2s\ntitle_is_not_bool: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "title_is_not_bool") {
		t.Fatalf("unknown key after booleans: %v", err)
	}
	cfg, err := Parse([]byte("debug: yes\nallow_private: on\ndashboard: off\ngemini:\n  resume: no\n  resume_delay: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Debug || !cfg.AllowPrivate || cfg.Dashboard || cfg.Gemini.Resume || cfg.Gemini.ResumeDelay != 2*time.Second {
		t.Errorf("booleans as words: %+v", cfg)
	}
	// A string that reads "yes" stays a string.
	cfg, err = Parse([]byte("presets:\n  x:\n    url: https://x.example\n    title: yes\n"))
	if err != nil || cfg.Presets["x"].Title != "yes" {
		t.Errorf("a string field holding yes: %v %q", err, cfg.Presets["x"].Title)
	}

	dir := t.TempDir()
	unreadable := filepath.Join(dir, "llmproxy.yaml")
	os.WriteFile(unreadable, []byte("debug: true\n"), 0o000)
	missing := filepath.Join(dir, "nope.yaml")
	for path, why := range map[string]string{missing: "no such file"} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), why) {
			t.Errorf("Load(%s) = %v", path, err)
		}
	}
	if os.Getuid() != 0 { // root reads anything
		if _, err := Load(unreadable); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"transport", "transport", 0}, {"transprot", "transport", 1}, {"listn", "listen", 1},
		{"", "abc", 3}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"ab", "ba", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
