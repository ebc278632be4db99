// Package netguard keeps generic requests away from addresses they must not
// reach: loopback, private and link-local networks (cloud metadata), CGNAT,
// multicast, every other special-purpose range, IPv4 hidden in IPv6, and the
// machine llmproxy runs on. It checks the address actually dialled, after
// DNS, and dials exactly that address, so a name that answers differently on
// a second lookup cannot slip through.
package netguard

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBlocked is matched (errors.Is) by every refusal of the guard.
var ErrBlocked = errors.New("destination not allowed")

// BlockedError is a refused destination. Its message names the range, not
// the address, so it can be logged as is.
type BlockedError struct{ Why string }

func (e *BlockedError) Error() string        { return "destination not allowed: " + e.Why }
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// IsBlocked reports whether err is a refusal of the guard.
func IsBlocked(err error) bool { return errors.Is(err, ErrBlocked) }

type cidr struct {
	prefix netip.Prefix
	why    string
}

func ranges(pairs ...string) []cidr {
	out := make([]cidr, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, cidr{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// special4 is the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and
// its updates; iana.org/assignments/iana-ipv4-special-registry) in full,
// plus multicast (RFC 5771) and the reserved class E. Entries the registry
// marks "globally reachable" (AS112, AMT, the anycast addresses in
// 192.0.0.0/24) are refused too: no API lives there, and an anycast service
// answers from whichever network is nearest, the operator's included.
// The first match names the range, so the more specific entries come first.
var special4 = ranges(
	"0.0.0.0/8", "this network", // RFC 791 §3.2; as a destination Linux connects it to the local host
	"10.0.0.0/8", "private", // RFC 1918
	"100.64.0.0/10", "CGNAT", // RFC 6598 shared address space
	"127.0.0.0/8", "loopback", // RFC 1122 §3.2.1.3
	"169.254.0.0/16", "link-local", // RFC 3927; 169.254.169.254 is the cloud metadata service
	"172.16.0.0/12", "private", // RFC 1918
	"192.0.0.0/24", "IETF protocol assignments", // RFC 6890 §2.1 (DS-Lite, NAT64 discovery, PCP and TURN anycast)
	"192.0.2.0/24", "documentation", // RFC 5737 TEST-NET-1
	"192.31.196.0/24", "AS112", // RFC 7535
	"192.52.193.0/24", "AMT", // RFC 7450
	"192.88.99.0/24", "6to4 relay anycast", // RFC 7526 (deprecated)
	"192.168.0.0/16", "private", // RFC 1918
	"192.175.48.0/24", "AS112", // RFC 7534 direct delegation
	"198.18.0.0/15", "benchmarking", // RFC 2544
	"198.51.100.0/24", "documentation", // RFC 5737 TEST-NET-2
	"203.0.113.0/24", "documentation", // RFC 5737 TEST-NET-3
	"224.0.0.0/4", "multicast", // RFC 5771
	"255.255.255.255/32", "broadcast", // RFC 919, RFC 8190
	"240.0.0.0/4", "reserved", // RFC 1112 §4 (class E)
)

// special6 is the IANA IPv6 Special-Purpose Address Registry (RFC 6890 and
// its updates; iana.org/assignments/iana-ipv6-special-registry) in full,
// plus the deprecated ranges that still carry IPv4 (IPv4-compatible, SIIT)
// or a scope (site-local), and multicast. Every form that embeds an IPv4
// address is refused as a whole: NAT64, 6to4 and Teredo reach the IPv4
// address they embed, which may be private or this machine.
// IPv4-mapped addresses (::ffff:0:0/96) never get here: Classify judges
// them by their IPv4 address, as the kernel connects them.
var special6 = ranges(
	"::/128", "unspecified", // RFC 4291 §2.5.2; as a destination Linux connects it to ::1
	"::1/128", "loopback", // RFC 4291 §2.5.3
	"::/96", "IPv4-compatible IPv6", // RFC 4291 §2.5.5.1 (deprecated)
	"::ffff:0:0:0/96", "IPv4-translated IPv6", // RFC 2765 §2.1 (SIIT)
	"64:ff9b::/96", "NAT64", // RFC 6052 well-known prefix
	"64:ff9b:1::/48", "local NAT64", // RFC 8215
	"100::/64", "discard", // RFC 6666
	"100:0:0:1::/64", "dummy prefix", // RFC 9780
	"2001::/32", "Teredo", // RFC 4380
	"2001:2::/48", "benchmarking", // RFC 5180
	"2001::/23", "IETF protocol assignments", // RFC 2928: PCP/TURN/SRP anycast, AMT, AS112, ORCHID, DETs
	"2001:db8::/32", "documentation", // RFC 3849
	"2002::/16", "6to4", // RFC 3056
	"2620:4f:8000::/48", "AS112", // RFC 7534
	"3fff::/20", "documentation", // RFC 9637
	"5f00::/16", "SRv6 SIDs", // RFC 9602
	"fc00::/7", "private", // RFC 4193 unique local
	"fe80::/10", "link-local", // RFC 4291 §2.5.6
	"fec0::/10", "site-local", // RFC 3879 (deprecated)
	"ff00::/8", "multicast", // RFC 4291 §2.7
)

// globalUnicast6 is the only IPv6 block IANA allocates for global unicast
// (RFC 4291 §2.4; iana.org/assignments/ipv6-address-space): everything else
// is reserved by the IETF, so an address outside it is refused even when no
// registry entry names it.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Classify returns "" for a public unicast address, or the name of the range
// that keeps generic requests away from it.
func Classify(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return "invalid address"
	}
	table := special6
	if a.Is4() {
		table = special4
	}
	for _, r := range table {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return "reserved"
	}
	return ""
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	localNAT64 = netip.MustParsePrefix("64:ff9b:1::/48")
)

// embeddedIPv4 returns the IPv4 addresses a connection to a may end up at
// through a translation mechanism: IPv4-mapped (::ffff:0:0/96), -compatible
// (::/96) and -translated (::ffff:0:0:0/96) forms, NAT64 (RFC 6052 §2.2, at
// every prefix length 64:ff9b:1::/48 allows), 6to4 (RFC 3056 §2) and Teredo
// (RFC 4380 §4: the server, and the client obfuscated by XOR). A NAT64
// gateway, a 6to4 relay or a Teredo peer may carry such a connection to
// this machine's own IPv4 address.
func embeddedIPv4(a netip.Addr) []netip.Addr {
	if a.Is4In6() {
		return []netip.Addr{a.Unmap()}
	}
	if !a.Is6() {
		return nil
	}
	b := a.As16()
	v4 := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	zero := func(from, to int) bool {
		for _, x := range b[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(0, 12):
		return []netip.Addr{v4(12, 13, 14, 15)}
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && zero(10, 12):
		return []netip.Addr{v4(12, 13, 14, 15)}
	case nat64.Contains(a):
		return []netip.Addr{v4(12, 13, 14, 15)}
	case localNAT64.Contains(a):
		// RFC 6052 §2.2: bits 64–71 (byte 8) are always zero, so the IPv4
		// address straddles them for prefixes shorter than /64.
		return []netip.Addr{v4(6, 7, 9, 10), v4(7, 9, 10, 11), v4(9, 10, 11, 12), v4(12, 13, 14, 15)}
	case b[0] == 0x20 && b[1] == 0x02:
		return []netip.Addr{v4(2, 3, 4, 5)}
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{v4(4, 5, 6, 7), client}
	}
	return nil
}

// ParseHostIP returns the address a host names literally, in any spelling a
// resolver might accept: dotted or bracketed IPv6, and the inet_aton forms
// of IPv4 (127.1, 0x7f000001, 2130706433, 017700000001). A name that is not
// an address returns false.
func ParseHostIP(host string) (netip.Addr, bool) {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone(""), true
	}
	return parseInetAton(strings.TrimSuffix(host, "."))
}

// parseInetAton parses IPv4 as inet_aton(3) does: one to four parts, each
// decimal, octal (leading 0) or hexadecimal (leading 0x); the last part
// fills the remaining bytes. Unlike glibc it takes no trailing garbage
// after a space and no digit-less "0x" part: such a host is a name, which
// the guard resolves and checks like any other.
func parseInetAton(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	n := 0
	for p := range strings.SplitSeq(s, ".") {
		if n == len(vals) {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[n] = v
		n++
	}
	var ip uint64
	last := n - 1
	for i := 0; i < last; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		ip |= vals[i] << (24 - 8*i)
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	ip |= vals[last]
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}
