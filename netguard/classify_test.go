package netguard

import (
	"net/netip"
	"testing"
)

// TestSpecialPurposeBoundaries takes each range of the IANA special-purpose
// registries (IPv4 and IPv6, written here from the registries, not from the
// code's tables) and checks an address just inside its edge and one just
// outside. The outside address is public, or — where the neighbouring
// block is itself special — refused for a different reason, which still
// shows the range ends where the registry says.
func TestSpecialPurposeBoundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inside  []string
		outside []string // public, unless listed in outsideSpecial
		// outsideSpecial: just outside, but inside another special block.
		outsideSpecial []string
	}{
		// IPv4 Special-Purpose Address Registry.
		{name: "0.0.0.0/8 this network", inside: []string{"0.0.0.0", "0.255.255.255"}, outside: []string{"1.0.0.0"}},
		{name: "10.0.0.0/8", inside: []string{"10.0.0.0", "10.255.255.255"}, outside: []string{"9.255.255.255", "11.0.0.0"}},
		{name: "100.64.0.0/10 shared", inside: []string{"100.64.0.0", "100.127.255.255"}, outside: []string{"100.63.255.255", "100.128.0.0"}},
		{name: "127.0.0.0/8 loopback", inside: []string{"127.0.0.0", "127.255.255.255"}, outside: []string{"126.255.255.255", "128.0.0.0"}},
		{name: "169.254.0.0/16 link-local", inside: []string{"169.254.0.0", "169.254.169.254", "169.254.255.255"}, outside: []string{"169.253.255.255", "169.255.0.0"}},
		{name: "172.16.0.0/12", inside: []string{"172.16.0.0", "172.31.255.255"}, outside: []string{"172.15.255.255", "172.32.0.0"}},
		{name: "192.0.0.0/24 IETF", inside: []string{"192.0.0.0", "192.0.0.9", "192.0.0.170", "192.0.0.255"}, outside: []string{"191.255.255.255", "192.0.1.0"}},
		{name: "192.0.2.0/24 TEST-NET-1", inside: []string{"192.0.2.0", "192.0.2.255"}, outside: []string{"192.0.1.255", "192.0.3.0"}},
		{name: "192.31.196.0/24 AS112", inside: []string{"192.31.196.0", "192.31.196.255"}, outside: []string{"192.31.195.255", "192.31.197.0"}},
		{name: "192.52.193.0/24 AMT", inside: []string{"192.52.193.0", "192.52.193.255"}, outside: []string{"192.52.192.255", "192.52.194.0"}},
		{name: "192.88.99.0/24 6to4 relay", inside: []string{"192.88.99.0", "192.88.99.255"}, outside: []string{"192.88.98.255", "192.88.100.0"}},
		{name: "192.168.0.0/16", inside: []string{"192.168.0.0", "192.168.255.255"}, outside: []string{"192.167.255.255", "192.169.0.0"}},
		{name: "192.175.48.0/24 AS112", inside: []string{"192.175.48.0", "192.175.48.255"}, outside: []string{"192.175.47.255", "192.175.49.0"}},
		{name: "198.18.0.0/15 benchmarking", inside: []string{"198.18.0.0", "198.19.255.255"}, outside: []string{"198.17.255.255", "198.20.0.0"}},
		{name: "198.51.100.0/24 TEST-NET-2", inside: []string{"198.51.100.0", "198.51.100.255"}, outside: []string{"198.51.99.255", "198.51.101.0"}},
		{name: "203.0.113.0/24 TEST-NET-3", inside: []string{"203.0.113.0", "203.0.113.255"}, outside: []string{"203.0.112.255", "203.0.114.0"}},
		{name: "224.0.0.0/4 multicast", inside: []string{"224.0.0.0", "239.255.255.255"}, outside: []string{"223.255.255.255"}, outsideSpecial: []string{"240.0.0.0"}},
		{name: "240.0.0.0/4 reserved", inside: []string{"240.0.0.0", "255.255.255.254"}, outsideSpecial: []string{"239.255.255.255", "255.255.255.255"}},
		{name: "255.255.255.255 broadcast", inside: []string{"255.255.255.255"}, outsideSpecial: []string{"255.255.255.254"}},

		// IPv4-mapped: judged by the IPv4 address (both sides of 10/8).
		{name: "::ffff:0:0/96 mapped", inside: []string{"::ffff:10.0.0.0", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0"}, outside: []string{"::ffff:9.255.255.255", "::ffff:11.0.0.0"}},

		// IPv6 Special-Purpose Address Registry and the deprecated forms.
		{name: ":: unspecified", inside: []string{"::"}, outsideSpecial: []string{"::2"}},
		{name: "::1 loopback", inside: []string{"::1"}, outsideSpecial: []string{"::2"}},
		{name: "::/96 IPv4-compatible", inside: []string{"::2", "::127.0.0.1", "::8.8.8.8", "::ffff:ffff"}, outsideSpecial: []string{"::1:0:0"}},
		{name: "::ffff:0:0:0/96 SIIT", inside: []string{"::ffff:0:0:0", "::ffff:0:808:808", "::ffff:0:ffff:ffff"}, outsideSpecial: []string{"::fffe:ffff:ffff:ffff", "::1:0:0:0"}},
		{name: "64:ff9b::/96 NAT64", inside: []string{"64:ff9b::", "64:ff9b::808:808", "64:ff9b::ffff:ffff"}, outsideSpecial: []string{"64:ff9b::1:0:0", "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{name: "64:ff9b:1::/48 local NAT64", inside: []string{"64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"}},
		{name: "100::/64 discard", inside: []string{"100::", "100::ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "100:0:0:1::"}},
		{name: "100:0:0:1::/64 dummy", inside: []string{"100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"100::ffff:ffff:ffff:ffff", "100:0:0:2::"}},
		{name: "2001::/32 Teredo", inside: []string{"2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"2001:1::"}},
		{name: "2001:1::1-3 anycast", inside: []string{"2001:1::1", "2001:1::2", "2001:1::3"}},
		{name: "2001:2::/48 benchmarking", inside: []string{"2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", "2001:2:1::"}},
		{name: "2001:3::/32 AMT, 2001:4:112::/48 AS112, ORCHID, DETs", inside: []string{"2001:3::1", "2001:4:112::1", "2001:10::1", "2001:20::1", "2001:30::1"}},
		{name: "2001::/23 IETF protocol assignments", inside: []string{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"2001:200::"}},
		{name: "2001:db8::/32 documentation", inside: []string{"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"}},
		{name: "2002::/16 6to4", inside: []string{"2002::", "2002:7f00:1::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"}},
		{name: "2620:4f:8000::/48 AS112", inside: []string{"2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"}},
		{name: "3fff::/20 documentation", inside: []string{"3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"}, outside: []string{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"}},
		{name: "5f00::/16 SRv6", inside: []string{"5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"}},
		{name: "fc00::/7 unique local", inside: []string{"fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"}},
		{name: "fe80::/10 link-local", inside: []string{"fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::"}},
		{name: "fec0::/10 site-local", inside: []string{"fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::"}},
		{name: "ff00::/8 multicast", inside: []string{"ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, outsideSpecial: []string{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{name: "outside 2000::/3 is reserved", inside: []string{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "4000::", "8000::1", "e000::1"}, outside: []string{"2000::1", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var why string
			for _, s := range tc.inside {
				w := Classify(netip.MustParseAddr(s))
				if w == "" {
					t.Errorf("Classify(%s) = public, want refused", s)
				}
				if why == "" {
					why = w
				}
			}
			for _, s := range tc.outside {
				if w := Classify(netip.MustParseAddr(s)); w != "" {
					t.Errorf("Classify(%s) = %q, want public (just outside %s)", s, w, tc.name)
				}
			}
			for _, s := range tc.outsideSpecial {
				if w := Classify(netip.MustParseAddr(s)); w == "" || w == why {
					t.Errorf("Classify(%s) = %q, want refused for another reason than %q (just outside %s)", s, w, why, tc.name)
				}
			}
		})
	}
}

func TestClassifyPublic(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "104.18.6.192", "162.159.140.245", "::ffff:8.8.8.8",
		"2606:4700::6810:6c0", "2a00:1450:4001:82b::200a", "2001:4860:4860::8888",
	} {
		if why := Classify(netip.MustParseAddr(s)); why != "" {
			t.Errorf("Classify(%s) = %q, want public", s, why)
		}
	}
	if why := Classify(netip.Addr{}); why == "" {
		t.Error("the zero Addr is public")
	}
	// A zone changes nothing: fe80::1%eth0 is link-local.
	if why := Classify(netip.MustParseAddr("fe80::1%eth0")); why != "link-local" {
		t.Errorf("Classify(fe80::1%%eth0) = %q", why)
	}
}

func TestEmbeddedIPv4(t *testing.T) {
	t.Parallel()
	// 93.184.215.14 = 0x5db8d70e; Teredo's client is stored XORed: a2.47.28.f1.
	tests := []struct {
		in   string
		want []string // one of the results must be each of these
	}{
		{"::ffff:93.184.215.14", []string{"93.184.215.14"}},
		{"::93.184.215.14", []string{"93.184.215.14"}},
		{"::ffff:0:5db8:d70e", []string{"93.184.215.14"}},
		{"64:ff9b::5db8:d70e", []string{"93.184.215.14"}},
		{"64:ff9b:1:5db8:d7:e00::", []string{"93.184.215.14"}},   // /48
		{"64:ff9b:1:5d:b8:d70e::", []string{"93.184.215.14"}},    // /56
		{"64:ff9b:1:0:5d:b8d7:e00:0", []string{"93.184.215.14"}}, // /64
		{"64:ff9b:1::5db8:d70e", []string{"93.184.215.14"}},      // /96
		{"2002:5db8:d70e::1", []string{"93.184.215.14"}},
		{"2001:0:5db8:d70e::a247:28f1", []string{"93.184.215.14"}},
		{"2001:0:1:2::a247:28f1", []string{"93.184.215.14"}},
		{"2606:4700::6810:6c0", nil},
		{"8.8.8.8", nil},
	}
	for _, tc := range tests {
		got := embeddedIPv4(netip.MustParseAddr(tc.in))
		if tc.want == nil && len(got) != 0 {
			t.Errorf("embeddedIPv4(%s) = %v, want none", tc.in, got)
		}
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				found = found || g == netip.MustParseAddr(w)
			}
			if !found {
				t.Errorf("embeddedIPv4(%s) = %v, want %s among them", tc.in, got, w)
			}
		}
	}
}
