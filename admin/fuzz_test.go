package admin

import (
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
)

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{
		"OpenAI-Organization: org-1\nX-Api-Token: abc", "a:b\r\nA: c", "X: [kept]", ": v", "no colon",
		"X-Key: a:b:c\n\n  Y :  z  ", "K\x00: v",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseHeaders(s, nil)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for name, value := range m {
			if name == "" || strings.Contains(name, ":") || strings.Contains(name, "\n") || strings.TrimSpace(name) != name {
				t.Fatalf("name %q", name)
			}
			if strings.Contains(value, "\n") || strings.TrimSpace(value) != value || value == keptValue {
				t.Fatalf("value %q", value)
			}
			if seen[strings.ToLower(name)] {
				t.Fatalf("%q twice", name)
			}
			seen[strings.ToLower(name)] = true
		}
		// The form shows it and reads it back unchanged, credential-like
		// values included (behind keptValue).
		back, err := parseHeaders(formatHeaders(m), m)
		if err != nil || !maps.Equal(back, m) {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
		shown := formatHeaders(m)
		for name := range m {
			if sensitiveHeader(name) && !strings.Contains(shown, name+": "+keptValue+"\n") {
				t.Fatalf("the form shows %s's value", name)
			}
		}
	})
}

func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"gpt-4o, gpt-4o-mini", "a\nb;c  d,,", "*gpt-4*", "", " , "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list := splitList(s)
		if list != nil && len(list) == 0 {
			t.Fatal("an empty non-nil list")
		}
		for _, item := range list {
			if item == "" || strings.ContainsAny(item, ",;") || strings.ContainsFunc(item, unicode.IsSpace) {
				t.Fatalf("item %q", item)
			}
		}
		if !slices.Equal(splitList(strings.Join(list, ", ")), list) {
			t.Fatalf("not stable: %q", list)
		}
	})
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"2026-12-31", "2026-12-31T18:00", "2026-12-31 18:00", "2026-12-31T18:00:05", "2026-12-31T18:00:00+08:00", "", "tomorrow"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, ok := parseExpiry(s)
		if !ok {
			return
		}
		if strings.TrimSpace(s) == "" {
			if !at.IsZero() {
				t.Fatal("an empty field is not 'never'")
			}
			return
		}
		if at.IsZero() || at.Location() != time.UTC {
			t.Fatalf("%q → %v", s, at)
		}
		// What the edit form shows reads back as the same minute.
		back, ok := parseExpiry(at.Format("2006-01-02T15:04"))
		if !ok || !back.Equal(at.Truncate(time.Minute)) {
			t.Fatalf("%q: %v shown, read back %v", s, at, back)
		}
	})
}

func FuzzAnswerError(f *testing.F) {
	for _, b := range []string{
		`{"error":{"message":"m","type":"t"}}`, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`,
		`{"error":"plain"}`, `[{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED"}}]`,
		"data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"late\"}}\n\n", "not json", "", `{"error":null}`,
	} {
		f.Add(200, []byte(b))
		f.Add(503, []byte(b))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		msg := answerError(status, body)
		if status >= 300 && msg == "" {
			t.Fatalf("a %d answer without a message", status)
		}
		if status < 300 && !strings.Contains(string(body), "data:") && msg != "" {
			t.Fatalf("a %d answer without events has error %q", status, msg)
		}
	})
}

func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"192.0.2.1:80", "[2001:db8::1]:443", "[::ffff:192.0.2.1]:1", "unix", "", "[fe80::1%eth0]:1", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		got := clientAddr(&http.Request{RemoteAddr: remote})
		if got != clientAddr(&http.Request{RemoteAddr: remote}) {
			t.Fatal("not deterministic")
		}
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			ip := ap.Addr().Unmap()
			if ip.Is4() && got != ip.String() {
				t.Fatalf("%s → %s", remote, got)
			}
			if ip.Is6() {
				// Every address of the /64 is the same client.
				b := ip.As16()
				b[15] ^= 0xff
				other := netip.AddrPortFrom(netip.AddrFrom16(b).WithZone(ip.Zone()), ap.Port())
				if clientAddr(&http.Request{RemoteAddr: other.String()}) != got {
					t.Fatalf("%s and %s differ", remote, other)
				}
			}
		}
	})
}
