package privacy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestConnectionNames(t *testing.T) {
	t.Parallel()
	header := func(listed int) http.Header {
		h := http.Header{"Authorization": {"Bearer k"}, "Content-Type": {"application/json"}, "X-Kept": {"1"}}
		var names []string
		for i := range listed {
			name := fmt.Sprintf("X-Hop-%d", i)
			h[name] = []string{"v"}
			// Listed in odd cases and spacing, over two Connection lines.
			names = append(names, " "+strings.ToLower(name)+"\t")
		}
		half := len(names) / 2
		h["Connection"] = []string{strings.Join(names[:half], ","), strings.Join(names[half:], ",") + ", ,keep-alive"}
		return h
	}
	tests := []struct {
		name   string
		listed int // plus keep-alive
		want   []string
	}{
		{"a few names", 3, []string{"Authorization", "Content-Type", "X-Kept"}},
		{"more than the small set", 20, []string{"Authorization", "Content-Type", "X-Kept"}},
		{"exactly the limit", MaxConnectionTokens - 1, []string{"Authorization", "Content-Type", "X-Kept"}},
		{"one past the limit: every header counts as named", MaxConnectionTokens, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := header(tc.listed)
			if over := ConnectionOverLimit(in); over != (tc.want == nil) {
				t.Errorf("ConnectionOverLimit = %v", over)
			}
			p := New(Options{})
			for _, got := range []http.Header{p.Outbound(in), p.Filter(in.Clone())} {
				var names []string
				for name := range got {
					names = append(names, name)
				}
				slices.Sort(names)
				if !slices.Equal(names, tc.want) {
					t.Errorf("forwarded %v, want %v", names, tc.want)
				}
			}
		})
	}
}

func TestCleanResponseConnectionLimit(t *testing.T) {
	t.Parallel()
	h := http.Header{"Content-Type": {"text/event-stream"}, "X-Hop": {"1"}, "Connection": {"x-HOP"}}
	CleanResponse(h, false)
	if _, ok := h["X-Hop"]; ok || h.Get("Content-Type") == "" {
		t.Errorf("named header kept or other dropped: %v", h)
	}
	var names []string
	for i := range MaxConnectionTokens + 1 {
		names = append(names, fmt.Sprint("x-", i))
	}
	h = http.Header{"Content-Type": {"text/event-stream"}, "Connection": {strings.Join(names, ",")}}
	CleanResponse(h, false)
	if len(h) != 0 {
		t.Errorf("an upstream listing %d names kept %v", len(names), h)
	}
}

func TestSecretInAnySpelling(t *testing.T) {
	t.Parallel()
	const token = "operator-token-0123456789"
	p := New(Options{Secret: token})
	for _, v := range []string{
		"Bearer " + token,
		"https://proxy.example/operator%2Dtoken-0123456789/https/x",
		"https%3A%2F%2Fproxy.example%2F%6Fperator-token-0123456789",
		"%256Fperator-token-0123456789",
	} {
		out := p.Outbound(http.Header{"X-Url": {v}, "X-Other": {"1"}})
		if _, ok := out["X-Url"]; ok || out.Get("X-Other") != "1" {
			t.Errorf("value %q: forwarded %v", v, out)
		}
	}
	if out := p.Outbound(http.Header{"X-Url": {"https://x.example/a%20b"}}); out.Get("X-Url") == "" {
		t.Error("a harmless encoded value was dropped")
	}
}
