package generic

import (
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rest, query string
		want        string // URL, or "" for an error
	}{
		{"/https/api.example.com/v1/chat/completions", "", "https://api.example.com/v1/chat/completions"},
		{"/https/api.ipify.org", "format=json", "https://api.ipify.org/?format=json"},
		{"/https://api.example.com/v1/models", "", "https://api.example.com/v1/models"},
		{"/https:/api.example.com/v1/models", "", "https://api.example.com/v1/models"},
		{"/http/Host.Example.COM:8080/p%2Fq;x", "a=%zz&b", "http://host.example.com:8080/p%2Fq;x?a=%zz&b"},
		{"/https/api.example.com:443/x", "", "https://api.example.com/x"},
		{"/wss/realtime.example.com/v1/realtime", "model=gpt", "wss://realtime.example.com/v1/realtime?model=gpt"},
		{"/ws/echo.example:9000/", "", "ws://echo.example:9000/"},
		{"/https/[2001:db8::1]:8443/x", "", "https://[2001:db8::1]:8443/x"},
		{"/HTTPS/api.example.com/a/../b", "", "https://api.example.com/a/../b"},
		{"/https/127.1/x", "", "https://127.1/x"}, // a name for the guard to refuse, after parsing
		{"/ftp/example.com/x", "", ""},
		{"/https", "", ""},
		{"/https/", "", ""},
		{"/https/user:pass@api.example.com/x", "", ""},
		{"/https/api.example.com@evil.example/x", "", ""},
		{"/https/ho%73t.example/x", "", ""},
		{"/https/host.example:0/x", "", ""},
		{"/https/host.example:99999/x", "", ""},
		{"/https/host.example:/x", "", ""},
		{"/https/host.example:08/x", "", ""},
		{"/https/host.example:+1/x", "", ""},
		{"/http/0:+1/", "", ""},
		{"/https/[::1]:+443/x", "", ""},
		{"/https/a..b/x", "", ""},
		{"/https/[::1/x", "", ""},
		{"/https/[127.0.0.1]/x", "", ""},
		{"/https/host\\evil/x", "", ""},
		{"/https/host.example/a\x00b", "", ""},
		{"/https/host.example/x", "a=1\r\nX: y", ""},
		{"/https/host.example/x", "a=1#frag", ""},
		{"/https/host.example/a b", "", ""},
		{"/https/host.example/100%", "", ""},
		{"https/host.example/x", "", ""},
	}
	for _, tc := range tests {
		got, err := Parse(tc.rest, tc.query)
		if tc.want == "" {
			if err == nil || !IsError(err) {
				t.Errorf("Parse(%q) = %+v, %v; want an error", tc.rest, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.rest, err)
			continue
		}
		if s := got.URL().String(); s != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.rest, s, tc.want)
		}
	}
}

// FuzzParse: any input gives a target or a clean error, never a panic, and
// a target's host is exactly the one the path names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/https/api.example.com/v1", "/https://h/x", "/wss/[::1]:1/", "/http/a@b/c", "/https:/x.y:443", "/ws/%41/"} {
		f.Add(s, "q=1")
	}
	f.Fuzz(func(t *testing.T, rest, query string) {
		got, err := Parse(rest, query)
		if err != nil {
			// Only the fixed errors: a message never carries the input.
			switch err {
			case errScheme, errHost, errUserinfo, errPort, errPath:
			default:
				t.Fatalf("unexpected error %T %v", err, err)
			}
			return
		}
		// The host segment the path names, as written.
		seg := strings.TrimPrefix(rest, "/")
		_, seg, _ = strings.Cut(seg, "/")
		seg = strings.TrimPrefix(seg, "/")
		seg, _, _ = strings.Cut(seg, "/")
		ok := strings.EqualFold(seg, got.Host) ||
			strings.EqualFold(seg, got.Host+":443") || strings.EqualFold(seg, got.Host+":80")
		if !ok {
			t.Fatalf("Parse(%q) targets host %q, path names %q", rest, got.Host, seg)
		}
		u := got.URL()
		back, err := url.Parse(u.String())
		if err != nil {
			t.Fatalf("target %q does not parse: %v", u, err)
		}
		if back.Host != got.Host || back.User != nil {
			t.Fatalf("target %q does not round-trip: host %q", u, back.Host)
		}
		if u.EscapedPath() != got.Path && !(got.Path == "/" && u.EscapedPath() == "") {
			t.Fatalf("path changed: %q → %q", got.Path, u.EscapedPath())
		}
	})
}
