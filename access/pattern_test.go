package access

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"gpt-4o", []string{"gpt-4o"}, []string{"gpt-4o-mini", "GPT-4o", "gpt-4", ""}},
		{"gpt-*", []string{"gpt-", "gpt-4o", "gpt-4o/mini"}, []string{"gpt", "xgpt-4o", "Gpt-4"}},
		{"*-mini", []string{"o1-mini", "-mini", "a/b-mini"}, []string{"o1-mini-2", "mini"}},
		{"*", []string{"", "anything", "a/b/c"}, nil},
		{"**", []string{"", "x"}, nil},
		{"a*b*c", []string{"abc", "aXbYc", "abbc", "a/b/c", "abcbc"}, []string{"acb", "ab", "bc", "abcd", "xabc"}},
		{"a*a", []string{"aa", "aba", "aaa"}, []string{"a", "ab"}},
		{"ab*ba", []string{"abba", "abXba", "ababa"}, []string{"aba", "abb"}},
		{"meta-llama/*", []string{"meta-llama/Llama-3-70b", "meta-llama/"}, []string{"meta-llama", "x/meta-llama/a"}},
		{"accounts/*/models/*", []string{"accounts/fireworks/models/llama-v3", "accounts/a/b/models/c"}, []string{"accounts/fireworks/llama", "accounts//model/x"}},
		{"*x*", []string{"x", "axb", "xx"}, []string{"", "abc"}},
		{"claude-*-4*", []string{"claude-sonnet-4", "claude-opus-4-1"}, []string{"claude-4", "claude-sonnet-3"}},
	} {
		p, err := CompilePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for _, name := range tc.yes {
			if !p.Match(name) {
				t.Errorf("%q does not match %q", tc.pattern, name)
			}
		}
		for _, name := range tc.no {
			if p.Match(name) {
				t.Errorf("%q matches %q", tc.pattern, name)
			}
		}
		if p.String() != tc.pattern || p.Literal() != !strings.Contains(tc.pattern, "*") {
			t.Errorf("%q: String %q Literal %v", tc.pattern, p.String(), p.Literal())
		}
	}
}

// nil matches everything; an empty list nothing.
func TestPatternsNilAndEmpty(t *testing.T) {
	t.Parallel()
	all, err := CompilePatterns(nil)
	if err != nil || all != nil || !all.Match("anything") || all.Strings() != nil {
		t.Errorf("nil: %v %v", all, err)
	}
	none, err := CompilePatterns([]string{})
	if err != nil || none == nil || none.Match("anything") || none.Match("") {
		t.Errorf("empty: %v %v", none, err)
	}
	some, err := CompilePatterns([]string{"gpt-*", " claude-3 "})
	if err != nil || !some.Match("gpt-4") || !some.Match("claude-3") || some.Match("claude-4") {
		t.Errorf("some: %v %v", some, err)
	}
	if got := some.Strings(); !equal(got, []string{"gpt-*", "claude-3"}) {
		t.Errorf("strings %v (patterns are trimmed)", got)
	}
}

func TestPatternErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "  ", "a\nb", "a\rb", "a\x00b"} {
		if _, err := CompilePattern(s); err == nil {
			t.Errorf("%q compiled", s)
		}
		if _, err := CompilePatterns([]string{"ok", s}); err == nil {
			t.Errorf("a list with %q compiled", s)
		}
	}
}

// More literal characters are more specific.
func TestPatternSpecificity(t *testing.T) {
	t.Parallel()
	order := []string{"gpt-4o-mini", "gpt-4o*", "gpt-4*", "*-mini", "gpt*", "*"}
	var prev = 1 << 30
	for _, s := range order {
		p, _ := CompilePattern(s)
		if p.Specificity() > prev {
			t.Errorf("%q (%d) is more specific than the one before it (%d)", s, p.Specificity(), prev)
		}
		prev = p.Specificity()
	}
	a, _ := CompilePattern("gpt-4*")
	b, _ := CompilePattern("*-mini")
	if a.Specificity() != b.Specificity() {
		t.Errorf("gpt-4* %d, *-mini %d: five literal characters each", a.Specificity(), b.Specificity())
	}
}

// Match agrees with a simple recursive glob on random inputs.
func FuzzPatternMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*b*c", "aXbYc"}, {"*", ""}, {"ab*ba", "aba"}, {"**x", "x"}, {"a*a", "a"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		if got, want := p.Match(name), glob(p.String(), name); got != want {
			t.Fatalf("%q on %q: %v, want %v", p.String(), name, got, want)
		}
	})
}

// glob is the reference: * matches any run of bytes (dynamic
// programming over prefixes).
func glob(pattern, name string) bool {
	dp := make([]bool, len(name)+1) // dp[j]: the pattern so far matches name[:j]
	dp[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(name)+1)
		if pattern[i] == '*' {
			seen := false
			for j := range next {
				seen = seen || dp[j]
				next[j] = seen
			}
		} else {
			for j := 1; j <= len(name); j++ {
				next[j] = dp[j-1] && name[j-1] == pattern[i]
			}
		}
		dp = next
	}
	return dp[len(name)]
}
