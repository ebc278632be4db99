package preset

import (
	"net/url"
	"strings"
	"testing"
)

// decodeOnce percent-decodes every valid %XX of s, leaving the rest: the
// most a server could decode.
func decodeOnce(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// stripParams removes ";…" from every segment, as Tomcat does.
func stripParams(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// removeDotSegments is RFC 3986 §5.2.4, written from the RFC's steps.
func removeDotSegments(in string) string {
	var out []string // output buffer, as segments each starting with "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			i := strings.IndexByte(in[1:], '/')
			if i < 0 {
				out, in = append(out, in), ""
			} else {
				out, in = append(out, in[:i+1]), in[i+1:]
			}
		}
	}
	return strings.Join(out, "")
}

// readings returns the ways a server may read an escaped path: decoded up
// to three times, parameters stripped before or after any round, '\' taken
// as '/', trailing dots and spaces trimmed from segments (Windows), in any
// order.
func readings(path string) map[string]bool {
	seen := map[string]bool{path: true}
	frontier := []string{path}
	for range 5 {
		var next []string
		for _, p := range frontier {
			for _, q := range []string{decodeOnce(p), stripParams(p), strings.ReplaceAll(p, `\`, "/"), trimSegments(p)} {
				if !seen[q] {
					seen[q] = true
					next = append(next, q)
				}
			}
		}
		frontier = next
	}
	return seen
}

func trimSegments(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if t := strings.TrimRight(s, ". "); t == "" && s != "" {
			segs[i] = strings.Repeat(".", min(len(s), 2)) // "..." and ".. " read as ".."
		}
	}
	return strings.Join(segs, "/")
}

// FuzzJoin: whatever Join accepts stays under the base path however an
// upstream reads it — decoded, its ";" parameters stripped, its dot
// segments removed by RFC 3986 §5.2.4 — and carries the base's host.
func FuzzJoin(f *testing.F) {
	for _, s := range []string{
		"/v1/chat/completions", "/..;/admin", "/%2e%2e%3b/x", "/a;b/../c", "/a/%252e%252e/b", "/files/100%25",
		"/x/.%2e/y", "/;/x", "/a%5c..%5cb", "/..%c0%af", "/%2e%2e%2f", "/a/..", "/a/./b/", "//x", "/a%2520b",
		"/", "//", "/a//b", "/a/", "/.../x", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "/a/.", "/@:~/b",
	} {
		f.Add(s, "")
	}
	f.Add("/v1/models", "a=1&b=%zz")
	bases := []string{"https://api.deepinfra.com/v1/openai", "https://dashscope.aliyuncs.com/compatible-mode/v1/", "https://x.example/a"}
	f.Fuzz(func(t *testing.T, rest, query string) {
		for _, b := range bases {
			base, err := ParseBaseURL(b)
			if err != nil {
				t.Fatal(err)
			}
			u, err := Join(base, rest, query)
			if rest != "" && rest[0] == '/' && plainPath(rest) {
				// The plain fast path answers as the general one.
				if plain, escaped := checkPlain(rest), checkEscaped(rest); plain != escaped {
					t.Fatalf("%q: checkPlain says %v, checkEscaped %v", rest, plain, escaped)
				}
				if err == nil && base.RawPath == "" && plainPath(base.Path) {
					slow, serr := joinEscaped(base, rest, query)
					if serr != nil || slow.String() != u.String() || slow.RawPath != u.RawPath || slow.Path != u.Path {
						t.Fatalf("Join(%s, %q): plain %#v, escaped %#v (%v)", b, rest, u, slow, serr)
					}
				}
			}
			if err != nil {
				continue
			}
			if u.Host != base.Host || u.Scheme != base.Scheme || u.User != nil {
				t.Fatalf("Join(%s, %q) = %s: another origin", b, rest, u)
			}
			basePath := strings.TrimSuffix(base.EscapedPath(), "/")
			escaped := u.EscapedPath()
			if !strings.HasPrefix(escaped, basePath) {
				t.Fatalf("Join(%s, %q) = %s: not under the base", b, rest, u)
			}
			for reading := range readings(escaped) {
				if !strings.HasPrefix(reading, "/") {
					t.Fatalf("Join(%s, %q) = %s, read as %q: not absolute", b, rest, u, reading)
				}
				got := removeDotSegments(reading)
				if got != basePath && !strings.HasPrefix(got, basePath+"/") {
					t.Fatalf("Join(%s, %q) = %s, read as %q, normalises to %q: out of %q", b, rest, u, reading, got, basePath)
				}
			}
			if strings.ContainsAny(u.RawQuery, "#\r\n ") {
				t.Fatalf("Join(%s, %q, %q) keeps %q in the query", b, rest, query, u.RawQuery)
			}
		}
	})
}

func TestRemoveDotSegments(t *testing.T) {
	t.Parallel()
	// RFC 3986 §5.2.4's own examples, and the climb this test guards against.
	for in, want := range map[string]string{
		"/a/b/c/./../../g": "/a/g", "mid/content=5/../6": "mid/6", "/v1/openai/../../admin": "/admin",
		"/v1/openai/x/..": "/v1/openai/", "/..": "/",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}
