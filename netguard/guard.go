package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver looks up the addresses of a host. *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer opens a TCP connection; egress.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Guard is a dialer that resolves the host itself, checks every address, and
// dials a checked address (never the name), so DNS cannot change its answer
// between the check and the dial.
type Guard struct {
	// Dialer dials the checked address (directly or via an egress proxy).
	Dialer Dialer
	// Resolver resolves host names. Default net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate lifts the range checks (loopback, private, …). The
	// proxy's own listening ports stay blocked on every address of this
	// machine, in every spelling (see reachesSelf).
	AllowPrivate bool
	// Allowed lists networks reachable despite the range checks.
	Allowed []netip.Prefix
	// AllowedHosts lists host names (lower case, no trailing dot) whose
	// addresses are reachable despite the range checks.
	AllowedHosts []string
	// Listen holds the proxy's own listening addresses; dialling one would
	// loop back into the proxy. On each of their ports, every address of
	// this machine is refused (unspecified, loopback, 0/8, the interface
	// addresses, the listening address), whatever the address listened on:
	// the kernel connects several spellings to a listener that looks
	// unrelated (0.0.0.0 → 127.0.0.1; IPv4 → a dual-stack [::] listener).
	Listen []netip.AddrPort
	// LocalAddrs returns the machine's own addresses, blocked on every port
	// unless the guard is lifted. Default: the interface addresses.
	LocalAddrs func() []netip.Addr

	mu       sync.Mutex
	local    []netip.Addr
	localAt  time.Time
	hostsSet map[string]bool
}

// DialContext resolves addr's host, refuses the dial with a *BlockedError
// if any address is off limits, and otherwise dials the addresses in turn.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, errors.New("invalid port")
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	lifted := g.AllowPrivate || g.hostAllowed(host)
	for _, a := range addrs {
		if err := g.check(a, uint16(port), lifted); err != nil {
			return nil, err
		}
	}
	var firstErr error
	for _, a := range addrs {
		conn, err := g.Dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// Check applies the guard to one address and port without dialling.
func (g *Guard) Check(a netip.Addr, port uint16) error {
	return g.check(a.Unmap(), port, g.AllowPrivate)
}

func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, ok := ParseHostIP(host); ok {
		return []netip.Addr{a.Unmap()}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// RFC 6761: always loopback, whatever a resolver says.
		if !g.AllowPrivate && !g.hostAllowed(host) {
			return nil, &BlockedError{Why: "loopback"}
		}
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	found, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	addrs := make([]netip.Addr, len(found))
	for i, a := range found {
		// Resolvers return IPv4 as ::ffff:a.b.c.d at times: unmap first.
		addrs[i] = a.Unmap().WithZone("")
	}
	return addrs, nil
}

func (g *Guard) check(a netip.Addr, port uint16, lifted bool) error {
	if g.reachesSelf(a, port) {
		return &BlockedError{Why: "the proxy itself"}
	}
	if lifted || g.inAllowed(a) {
		return nil
	}
	if why := Classify(a); why != "" {
		return &BlockedError{Why: why}
	}
	if g.isLocal(a) {
		return &BlockedError{Why: "this machine"}
	}
	return nil
}

// reachesSelf reports whether a connection to a:port could end at one of
// the proxy's own listeners, which no setting may allow: a request would
// loop back into llmproxy and could chain through it.
//
// Which spelling reaches which listener depends on the kernel and the
// socket: Linux connects 0.0.0.0 to 127.0.0.1 and :: to ::1 (ip_route_connect,
// tcp_v6_connect), Go listens on "0.0.0.0:P" and ":P" with one dual-stack
// IPv6 socket that IPv4 reaches too, the whole of 127/8 is local, and a NAT64
// gateway or a 6to4 relay may carry an IPv6 connection back to this
// machine's IPv4 address. Rather than model all of it, on a port the proxy
// listens on the guard refuses every address of this machine — this network
// (0/8) and unspecified, loopback, the interface addresses and the listening
// addresses — in every spelling, IPv4 embedded in IPv6 included, whatever
// address the proxy listens on.
func (g *Guard) reachesSelf(a netip.Addr, port uint16) bool {
	listening := false
	for _, l := range g.Listen {
		if l.Port() == port {
			listening = true
			break
		}
	}
	if !listening {
		return false
	}
	var buf [5]netip.Addr
	candidates := append(append(buf[:0], a.Unmap().WithZone("")), embeddedIPv4(a)...)
	for _, c := range candidates {
		if c.IsUnspecified() || c.IsLoopback() || thisNetwork.Contains(c) || g.isLocal(c) {
			return true
		}
		for _, l := range g.Listen {
			if l.Port() == port && l.Addr().Unmap().WithZone("") == c {
				return true
			}
		}
	}
	return false
}

var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

func (g *Guard) inAllowed(a netip.Addr) bool {
	for _, p := range g.Allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (g *Guard) hostAllowed(host string) bool {
	if len(g.AllowedHosts) == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hostsSet == nil {
		g.hostsSet = make(map[string]bool, len(g.AllowedHosts))
		for _, h := range g.AllowedHosts {
			g.hostsSet[strings.ToLower(strings.TrimSuffix(h, "."))] = true
		}
	}
	return g.hostsSet[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// isLocal reports whether a is one of this machine's addresses, refreshed
// once a minute so that a new DHCP lease is noticed.
func (g *Guard) isLocal(a netip.Addr) bool {
	g.mu.Lock()
	if g.local == nil || time.Since(g.localAt) > time.Minute {
		lookup := g.LocalAddrs
		if lookup == nil {
			lookup = interfaceAddrs
		}
		g.local, g.localAt = lookup(), time.Now()
	}
	local := g.local
	g.mu.Unlock()
	for _, l := range local {
		if l == a {
			return true
		}
	}
	return false
}

// LocalAddrsError reports why this machine's interface addresses cannot be
// listed (nil when they can). Without them the guard still refuses every
// private range, but not a public address of this machine itself: a
// sandbox that forbids netlink sockets (systemd's RestrictAddressFamilies
// without AF_NETLINK) does that silently.
func LocalAddrsError() error {
	_, err := net.InterfaceAddrs()
	return err
}

func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return []netip.Addr{}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
