package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// selfSpellings are hosts that name this machine: unspecified, loopback,
// this network, its interface addresses (see selfLocal) and the IPv4
// forms embedded in IPv6 that lead back to them, in the spellings a
// resolver accepts. "localhost" and the two names resolve through
// selfResolver.
var selfSpellings = []string{
	// Unspecified: Linux connects 0.0.0.0 to 127.0.0.1 and :: to ::1.
	"0.0.0.0", "0", "0x0", "00", "0.0", "::", "::ffff:0.0.0.0", "::ffff:0:0", "0:0:0:0:0:0:0:0",
	// This network.
	"0.1.2.3", "0.0.0.1",
	// Loopback, IPv4 and IPv6, in inet_aton and mapped spellings.
	"127.0.0.1", "127.1", "127.0.1", "0x7f000001", "2130706433", "017700000001", "0177.0.0.1", "0x7f.1",
	"127.0.0.2", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:7f00:1",
	"0:0:0:0:0:ffff:7f00:1",
	// Deprecated IPv4-in-IPv6 forms of loopback.
	"::127.0.0.1", "::ffff:0:7f00:1",
	// This machine's addresses (selfLocal), plain and embedded.
	"192.168.1.5", "::ffff:192.168.1.5", "93.184.215.14", "::ffff:93.184.215.14",
	"64:ff9b::5db8:d70e", "64:ff9b:1:5db8:d7:e00::", "64:ff9b:1::5db8:d70e", "2002:5db8:d70e::1",
	"2001:0:5db8:d70e::1", "2001:0:1:2::a247:28f1", "2a01:4f8:1:2::5", "fe80::5",
	// Names.
	"localhost", "localhost.", "self.example", "self6.example",
}

func selfLocal() []netip.Addr {
	return addrs("127.0.0.1", "::1", "192.168.1.5", "93.184.215.14", "2a01:4f8:1:2::5", "fe80::5")
}

type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var selfResolver = mapResolver{
	"localhost":  addrs("127.0.0.1", "::1"),
	"localhost.": addrs("127.0.0.1", "::1"),
	// DNS blocklists answer 0.0.0.0 and ::.
	"self.example":  addrs("0.0.0.0"),
	"self6.example": addrs("::"),
}

// TestProxyItselfMatrix: every spelling of this machine on the proxy's port
// is refused, whatever the proxy listens on, with the guard lifted in every
// way an operator can lift it. The same spellings on another port go
// through once the guard is lifted, so the refusal is about the port.
func TestProxyItselfMatrix(t *testing.T) {
	t.Parallel()
	const port = 8080
	listens := []string{
		"127.0.0.1:8080", "0.0.0.0:8080", "[::]:8080", "[::1]:8080", "[::ffff:127.0.0.1]:8080",
		"[::ffff:0.0.0.0]:8080", "192.168.1.5:8080", "93.184.215.14:8080", "[fe80::5%eth0]:8080",
	}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	hosts := []string{"localhost", "self.example", "self6.example"}
	lifts := []struct {
		name         string
		allowPrivate bool
		allowed      []netip.Prefix
		allowedHosts []string
	}{
		{"guarded", false, nil, nil},
		{"allow-private", true, nil, nil},
		{"allowed everything", false, everything, hosts},
	}
	for _, listen := range listens {
		for _, lift := range lifts {
			t.Run(listen+"/"+lift.name, func(t *testing.T) {
				t.Parallel()
				d := &recordingDialer{}
				g := &Guard{
					Dialer: d, Resolver: selfResolver, LocalAddrs: selfLocal,
					AllowPrivate: lift.allowPrivate, Allowed: lift.allowed, AllowedHosts: lift.allowedHosts,
					Listen: []netip.AddrPort{netip.MustParseAddrPort(listen)},
				}
				for _, host := range selfSpellings {
					_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
					var be *BlockedError
					if !errors.As(err, &be) {
						t.Errorf("%s on the proxy's port: err = %v, want refused", host, err)
						continue
					}
					if lift.name != "guarded" && be.Why != "the proxy itself" {
						t.Errorf("%s on the proxy's port: refused as %q, want %q", host, be.Why, "the proxy itself")
					}
				}
				if len(d.dialed) != 0 {
					t.Errorf("dialled %v", d.dialed)
				}
				if lift.name == "guarded" {
					return
				}
				for _, host := range selfSpellings {
					_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port+1)))
					if !errors.Is(err, errDialed) {
						t.Errorf("%s on another port, guard lifted: err = %v, want it dialled", host, err)
					}
				}
			})
		}
	}
}

// TestProxyItselfPublicNeighbours: a public address on the proxy's port is
// not this machine, and goes through.
func TestProxyItselfPublicNeighbours(t *testing.T) {
	t.Parallel()
	d := &recordingDialer{}
	g := &Guard{Dialer: d, LocalAddrs: selfLocal, Listen: []netip.AddrPort{netip.MustParseAddrPort("[::]:443")}}
	for _, host := range []string{"93.184.215.15", "2606:4700::6810:6c0", "8.8.8.8"} {
		if _, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(host, "443")); !errors.Is(err, errDialed) {
			t.Errorf("%s:443: err = %v, want it dialled", host, err)
		}
	}
}

// TestProxyItselfLive listens on real sockets, shows with a plain dialer
// that each spelling connects to the listener, and that the guard — lifted
// with AllowPrivate, dialling with a real net.Dialer — refuses every one.
func TestProxyItselfLive(t *testing.T) {
	t.Parallel()
	local := interfaceAddrs()
	tests := []struct {
		listen string
		// must connect here (the kernel's behaviour this test rests on);
		// the rest of liveSpellings is tried, and refused, anyway.
		mustConnect []string
		ipv6        bool
	}{
		{listen: "127.0.0.1:0", mustConnect: []string{"127.0.0.1", "0.0.0.0", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "2130706433", "127.1"}},
		{listen: "0.0.0.0:0", mustConnect: []string{"127.0.0.1", "0.0.0.0", "::ffff:127.0.0.1", "127.0.0.2", "0x7f000001"}},
		{listen: "[::1]:0", mustConnect: []string{"::1", "::"}, ipv6: true},
		{listen: "[::]:0", mustConnect: []string{"::1", "::", "127.0.0.1", "0.0.0.0"}, ipv6: true},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", tc.listen)
			if err != nil {
				if tc.ipv6 {
					t.Skipf("no IPv6 here: %v", err)
				}
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			})
			t.Cleanup(func() { ln.Close(); wg.Wait() })
			port := ln.Addr().(*net.TCPAddr).Port

			spellings := []string{"127.0.0.1", "127.1", "2130706433", "0x7f000001", "017700000001", "127.0.0.2",
				"0.0.0.0", "0", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::1", "::"}
			for _, a := range local {
				if !a.Is6() || !a.IsLinkLocalUnicast() { // a link-local address needs a zone to dial
					spellings = append(spellings, a.String())
				}
			}
			g := &Guard{Dialer: &net.Dialer{}, AllowPrivate: true, Listen: []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}}
			plain := &net.Dialer{Timeout: 2 * time.Second}
			connected := map[string]bool{}
			for _, host := range spellings {
				addr := net.JoinHostPort(host, strconv.Itoa(port))
				// inet_aton spellings are the guard's own parsing: dial what
				// it parses them to.
				if a, ok := ParseHostIP(host); ok {
					if c, err := plain.Dial("tcp", netip.AddrPortFrom(a, uint16(port)).String()); err == nil {
						c.Close()
						connected[host] = true
					}
				}
				c, err := g.DialContext(context.Background(), "tcp", addr)
				if err == nil {
					c.Close()
				}
				if !IsBlocked(err) {
					t.Errorf("%s (connects: %v): guard err = %v, want refused", addr, connected[host], err)
				}
			}
			for _, host := range tc.mustConnect {
				if !connected[host] {
					t.Errorf("%s did not connect to the listener on %s: the premise of this test fails here", host, ln.Addr())
				}
			}
			t.Logf("listening on %s, these spellings connected and were refused: %v", ln.Addr(), connected)

			// The same guard reaches another listener on loopback: it is
			// the port that is refused, not loopback.
			other, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			c, err := g.DialContext(context.Background(), "tcp", other.Addr().String())
			if err != nil {
				t.Fatalf("allow-private guard could not reach another loopback listener: %v", err)
			}
			c.Close()
		})
	}
}
