// Package netguard keeps generic requests away from addresses they must not
// reach: loopback, private and link-local networks (cloud metadata), CGNAT,
// multicast, IPv4 hidden in IPv6, and the machine llmproxy runs on. It
// checks the address actually dialled, after DNS, and dials exactly that
// address, so a name that answers differently on a second lookup cannot slip
// through.
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

// reserved are ranges that are neither public nor covered by netip's
// predicates. IPv4-mapped IPv6 (::ffff:0:0/96) is unmapped before checking,
// so its IPv4 address is judged by the IPv4 rules.
var reserved = []cidr{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// Classify returns "" for a public unicast address, or the name of the range
// that keeps generic requests away from it.
func Classify(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "invalid address"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, r := range reserved {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	return ""
}

// ParseHostIP returns the address a host names literally, in any spelling a
// resolver might accept: dotted or bracketed IPv6, and the inet_aton forms
// of IPv4 (127.1, 0x7f000001, 2130706433, 017700000001). A name that is not
// an address returns false.
func ParseHostIP(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone(""), true
	}
	return parseInetAton(strings.TrimSuffix(host, "."))
}

// parseInetAton parses IPv4 as inet_aton(3) does: one to four parts, each
// decimal, octal (leading 0) or hexadecimal (leading 0x); the last part
// fills the remaining bytes.
func parseInetAton(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
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
		vals[i] = v
	}
	var ip uint64
	last := len(vals) - 1
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
