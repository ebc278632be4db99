package netguard

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// atonModel is inet_aton(3) written out character by character, as a model
// for parseInetAton: one to four parts separated by dots, each a run of
// decimal digits, or octal after a leading 0, or hex after 0x; each part
// at least one digit (after the prefix); the parts before the last are
// bytes, the last fills the rest.
func atonModel(s string) (netip.Addr, bool) {
	var parts []uint64
	i := 0
	for {
		base, digits := uint64(10), 0
		if strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X") {
			base, i = 16, i+2
		} else if i < len(s) && s[i] == '0' {
			base, i, digits = 8, i+1, 1 // "0" alone is a valid octal zero
		}
		var v uint64
		for ; i < len(s) && s[i] != '.'; i++ {
			var d uint64
			switch c := s[i]; {
			case '0' <= c && c <= '9':
				d = uint64(c - '0')
			case 'a' <= c && c <= 'f':
				d = uint64(c-'a') + 10
			case 'A' <= c && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				return netip.Addr{}, false
			}
			if d >= base {
				return netip.Addr{}, false
			}
			v = v*base + d
			if v > 0xffffffff {
				return netip.Addr{}, false
			}
			digits++
		}
		if digits == 0 || len(parts) == 4 {
			return netip.Addr{}, false
		}
		parts = append(parts, v)
		if i == len(s) {
			break
		}
		i++ // the dot
	}
	var ip uint64
	for k, p := range parts[:len(parts)-1] {
		if p > 255 {
			return netip.Addr{}, false
		}
		ip |= p << (24 - 8*k)
	}
	lastBits := 8 * (5 - len(parts))
	if parts[len(parts)-1]>>lastBits != 0 {
		return netip.Addr{}, false
	}
	ip |= parts[len(parts)-1]
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// FuzzParseHostIP checks ParseHostIP against netip.ParseAddr and
// net.ParseIP for the forms they accept, and against atonModel for the
// inet_aton forms they do not.
func FuzzParseHostIP(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "127.1", "0x7f000001", "2130706433", "017700000001", "0177.0.0.1", "0x7f.1", "127.0.0.1.",
		"[::ffff:127.0.0.1]", "[::1]", "::", "fe80::1%eth0", "[fe80::1%25eth0]", "1.2.3.4.5", "256.1.1.1", "0x1g",
		"08", "0x", "0x.1", "1..2", "4294967295", "4294967296", "0xffffffff", "0.0.0.0", "00", "1.0x10000", "1.2.0xffff",
		"1.2.3.256", "+1", "1_0", "::ffff:0:7f00:1", "64:ff9b::1.2.3.4", "localhost", "[127.1", "127.1]", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		a, ok := ParseHostIP(host)
		if ok && (!a.IsValid() || a.Zone() != "") {
			t.Fatalf("ParseHostIP(%q) = %v: invalid or zoned", host, a)
		}
		inner := host
		if len(inner) >= 2 && inner[0] == '[' && inner[len(inner)-1] == ']' {
			inner = inner[1 : len(inner)-1]
		}
		na, err := netip.ParseAddr(inner)
		if err == nil && (!ok || a != na.WithZone("")) {
			t.Fatalf("ParseHostIP(%q) = %v, %v; netip says %v", host, a, ok, na)
		}
		if ip := net.ParseIP(inner); ip != nil {
			want, _ := netip.AddrFromSlice(ip)
			if !ok || a.Unmap() != want.Unmap() {
				t.Fatalf("ParseHostIP(%q) = %v, %v; net.ParseIP says %v", host, a, ok, ip)
			}
		}
		if err != nil {
			m, mok := atonModel(strings.TrimSuffix(inner, "."))
			if ok != mok || ok && a != m {
				t.Fatalf("ParseHostIP(%q) = %v, %v; inet_aton model says %v, %v", host, a, ok, m, mok)
			}
		}
		if !ok {
			return
		}
		// What it returns spells itself: the guard dials a.String().
		if back, ok := ParseHostIP(a.String()); !ok || back != a {
			t.Fatalf("ParseHostIP(%q) = %v, which parses back as %v, %v", host, a, back, ok)
		}
		Classify(a)
		embeddedIPv4(a)
	})
}
