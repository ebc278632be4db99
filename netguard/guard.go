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
	// proxy's own listening address stays blocked.
	AllowPrivate bool
	// Allowed lists networks reachable despite the range checks.
	Allowed []netip.Prefix
	// AllowedHosts lists host names (lower case, no trailing dot) whose
	// addresses are reachable despite the range checks.
	AllowedHosts []string
	// Listen holds the proxy's own listening addresses; dialling one would
	// loop back into the proxy. An unspecified address (0.0.0.0, ::) stands
	// for every local address on that port.
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
	for _, l := range g.Listen {
		if l.Port() != port {
			continue
		}
		if la := l.Addr().Unmap(); la == a || la.IsUnspecified() && (a.IsLoopback() || g.isLocal(a)) {
			return &BlockedError{Why: "the proxy itself"}
		}
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
