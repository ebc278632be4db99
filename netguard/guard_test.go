package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "::1", "0.0.0.0", "::",
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1",
		"169.254.169.254", "fe80::1", "100.64.0.1", "100.127.255.255",
		"224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1", "2002:7f00:1::", "2001:0:4136:e378::1", "::127.0.0.1",
		"192.0.2.1", "198.18.0.1",
	}
	for _, s := range blocked {
		if why := Classify(netip.MustParseAddr(s)); why == "" {
			t.Errorf("Classify(%s) = public, want blocked", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "104.18.6.192", "2606:4700::6810:6c0", "::ffff:8.8.8.8", "172.32.0.1", "100.128.0.1"} {
		if why := Classify(netip.MustParseAddr(s)); why != "" {
			t.Errorf("Classify(%s) = %q, want public", s, why)
		}
	}
}

func TestParseHostIP(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, spelling := range []string{"127.1", "0x7f000001", "2130706433", "017700000001", "0177.0.0.1", "0x7f.1", "127.0.0.1.", "[::ffff:127.0.0.1]"} {
		a, ok := ParseHostIP(spelling)
		if !ok || a.Unmap() != loopback {
			t.Errorf("ParseHostIP(%q) = %v, %v; want 127.0.0.1", spelling, a, ok)
		}
	}
	for _, name := range []string{"api.openai.com", "localhost", "1.2.3.4.5", "256.1.1.1", "0x1g", "example.123abc"} {
		if a, ok := ParseHostIP(name); ok {
			t.Errorf("ParseHostIP(%q) = %v, want a name", name, a)
		}
	}
}

// fakeResolver answers from a script, one answer per lookup, and counts.
type fakeResolver struct {
	mu      sync.Mutex
	answers [][]netip.Addr
	calls   int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.answers) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	a := r.answers[0]
	if len(r.answers) > 1 {
		r.answers = r.answers[1:]
	}
	return a, nil
}

// recordingDialer records the addresses dialled and never connects.
type recordingDialer struct {
	mu     sync.Mutex
	dialed []string
}

var errDialed = errors.New("dialed (test)")

func (d *recordingDialer) DialContext(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dialed = append(d.dialed, addr)
	return nil, errDialed
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestGuardDialsTheCheckedAddress(t *testing.T) {
	t.Parallel()
	// DNS rebinding: public on the first lookup, loopback on any later one.
	res := &fakeResolver{answers: [][]netip.Addr{addrs("93.184.215.14"), addrs("127.0.0.1")}}
	d := &recordingDialer{}
	g := &Guard{Dialer: d, Resolver: res, LocalAddrs: func() []netip.Addr { return nil }}
	_, err := g.DialContext(context.Background(), "tcp", "rebind.example:443")
	if !errors.Is(err, errDialed) {
		t.Fatalf("err = %v", err)
	}
	if res.calls != 1 {
		t.Errorf("resolver called %d times, want exactly 1", res.calls)
	}
	if len(d.dialed) != 1 || d.dialed[0] != "93.184.215.14:443" {
		t.Errorf("dialed %v, want exactly the checked address 93.184.215.14:443", d.dialed)
	}

	// The reverse: private on the first lookup is refused and nothing dialled.
	res = &fakeResolver{answers: [][]netip.Addr{addrs("10.1.2.3"), addrs("93.184.215.14")}}
	d = &recordingDialer{}
	g = &Guard{Dialer: d, Resolver: res, LocalAddrs: func() []netip.Addr { return nil }}
	_, err = g.DialContext(context.Background(), "tcp", "rebind.example:443")
	if !IsBlocked(err) || len(d.dialed) != 0 {
		t.Errorf("err = %v, dialed %v; want blocked and nothing dialled", err, d.dialed)
	}
}

func TestGuardSpellings(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{answers: [][]netip.Addr{addrs("127.0.0.1")}} // localhost. and friends
	d := &recordingDialer{}
	g := &Guard{Dialer: d, Resolver: res, LocalAddrs: func() []netip.Addr { return addrs("203.0.114.7") }}
	for _, host := range []string{
		"127.0.0.1", "127.1", "0x7f000001", "2130706433", "017700000001", "[::ffff:127.0.0.1]",
		"localhost", "localhost.", "api.localhost", "169.254.169.254", "[::1]", "[fe80::1]", "0.0.0.0",
		"10.0.0.1", "[fd00::1]", "100.64.0.1", "224.0.0.1", "[64:ff9b::a9fe:a9fe]",
		"203.0.114.7", // this machine's own public address
		"resolves-to-loopback.example",
	} {
		_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(trimBrackets(host), "443"))
		if !IsBlocked(err) {
			t.Errorf("%s: err = %v, want blocked", host, err)
		}
	}
	if len(d.dialed) != 0 {
		t.Errorf("dialed %v", d.dialed)
	}
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' {
		return h[1 : len(h)-1]
	}
	return h
}

func TestGuardLifted(t *testing.T) {
	t.Parallel()
	listen := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8080")}
	local := func() []netip.Addr { return addrs("192.168.1.5") }
	tests := []struct {
		name    string
		g       *Guard
		addr    string
		blocked bool
	}{
		{"allow-private reaches loopback", &Guard{AllowPrivate: true}, "127.0.0.1:11434", false},
		{"allow-private never reaches the proxy itself", &Guard{AllowPrivate: true, Listen: listen}, "127.0.0.1:8080", true},
		{"the proxy itself on a local address", &Guard{AllowPrivate: true, Listen: listen}, "192.168.1.5:8080", true},
		{"allowed CIDR", &Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16")}}, "10.8.3.4:443", false},
		{"outside the allowed CIDR", &Guard{Allowed: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16")}}, "10.9.3.4:443", true},
		{"allowed host", &Guard{AllowedHosts: []string{"ollama.lan"}, Resolver: &fakeResolver{answers: [][]netip.Addr{addrs("192.168.1.20")}}}, "ollama.lan:11434", false},
		{"public address", &Guard{}, "8.8.8.8:443", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDialer{}
			g := tc.g
			g.Dialer, g.LocalAddrs = d, local
			_, err := g.DialContext(context.Background(), "tcp", tc.addr)
			if IsBlocked(err) != tc.blocked {
				t.Errorf("err = %v, want blocked=%v", err, tc.blocked)
			}
		})
	}
}
