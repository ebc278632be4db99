package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
)

// testResolver maps test names to addresses and counts lookups.
type testResolver struct {
	names   map[string][]netip.Addr
	lookups atomic.Int32
}

func (r *testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	if a, ok := r.names[strings.TrimSuffix(host, ".")]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

// startGeneric runs a proxy with a token whose resolver sends provider.test
// (allowlisted by the operator) and the other test names to loopback.
func startGeneric(t *testing.T, mutate ...func(*config.Config)) (*harness, *testResolver) {
	res := &testResolver{names: map[string][]netip.Addr{
		"provider.test": loopback, "localhost": loopback, "evil-rebind.test": loopback,
	}}
	cfg := testConfig(t, nil)
	cfg.AuthToken = testToken
	cfg.AllowedDestinations = []string{"provider.test"}
	for _, m := range mutate {
		m(cfg)
	}
	h := start(t, cfg, func(o *Options) { o.Resolver = res })
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h, res
}

func portOf(url string) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "https://"))
	return port
}

func TestGenericMode(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "https://elsewhere.example/new", http.StatusFound)
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.RequestURI)
	}), nil)
	h, _ := startGeneric(t)
	host := "provider.test:" + portOf(fake.URL)

	tests := []struct{ path, want string }{
		{"/" + testToken + "/https/" + host + "/v1/items%2Fone;x?a=%zz&b", "GET /v1/items%2Fone;x?a=%zz&b"},
		{"/" + testToken + "/https://" + host + "/seed/spelling", "GET /seed/spelling"},
		{"/" + testToken + "/https:/" + host + "/merged/slashes", "GET /merged/slashes"},
		{"/" + testToken + "/https/" + host, "GET /"},
		{"/" + testToken + "/HTTPS/" + host + "/upper/case", "GET /upper/case"}, // a scheme in any case, as in a URL
	}
	for _, tc := range tests {
		resp, body := h.raw("GET " + tc.path + " HTTP/1.1\r\nHost: p\r\nX-Custom-Api-Header: keep\r\nX-Forwarded-For: 203.0.113.9\r\n" +
			"User-Agent: my-app/1\r\nX-Token-Echo: " + testToken + "\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || body != tc.want {
			t.Errorf("GET %s = %d %q, want %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}
	got := fake.Requests()[0]
	if got.Header.Get("X-Custom-Api-Header") != "keep" || got.Header.Get("User-Agent") != "my-app/1" {
		t.Errorf("generic mode must pass unknown headers: %v", got.Header)
	}
	for _, name := range []string{"X-Forwarded-For", "X-Token-Echo"} {
		if _, ok := got.Header[name]; ok {
			t.Errorf("%s reached the upstream", name)
		}
	}
	if got.Host != host {
		t.Errorf("Host = %q, want %q", got.Host, host)
	}
	// Redirects come back to the client, unfollowed.
	status, header, _ := h.do("GET", "/"+testToken+"/https/"+host+"/moved", nil, "")
	if status != 302 || header.Get("Location") != "https://elsewhere.example/new" {
		t.Errorf("redirect: %d %q", status, header.Get("Location"))
	}
	// Bad targets and tokens.
	for path, want := range map[string]int{
		"/" + testToken + "/https/user:pw@" + host + "/x": 400,
		"/" + testToken + "/ftp/" + host + "/x":           404,
		"/" + testToken + "/https/" + host + ":99/x":      400,
		"/" + testToken + "/wss/" + host + "/x":           400, // a WebSocket target without a handshake
		"/not-the-token-000000000/https/" + host + "/x":   401,
	} {
		if status, _, body := h.do("GET", path, nil, ""); status != want {
			t.Errorf("GET %s = %d %s, want %d", path, status, body, want)
		}
	}
}

func TestGenericRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	// A real listener on loopback: every spelling below names it, and none
	// may open a connection to it.
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	port := portOf(fake.URL)
	for _, mode := range []string{"socket", "fetch"} {
		h, _ := startGeneric(t, func(c *config.Config) { c.Transport = mode })
		for _, host := range []string{
			"127.0.0.1", "127.1", "0x7f000001", "2130706433", "017700000001", "[::ffff:127.0.0.1]",
			"localhost", "localhost.", "evil-rebind.test", "[::1]", "0.0.0.0", "169.254.169.254", "10.0.0.1",
			"100.64.0.1", "[fd00::1]", "[64:ff9b::7f00:1]",
		} {
			path := "/" + testToken + "/https/" + host + ":" + port + "/latest/meta-data"
			status, header, body := h.do("GET", path, nil, "")
			typ, msg := errorOf(t, body)
			if status != 403 || typ != typeForbidden || msg != "destination not allowed" || header.Get("X-Proxy-Error") != "true" {
				t.Errorf("%s %s: %d %s", mode, host, status, body)
			}
		}
	}
	if n := fake.Conns(); n != 0 {
		t.Errorf("refused targets opened %d connections", n)
	}
}

func TestGenericAllowPrivateButNeverItself(t *testing.T) {
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "internal ok")
	}), nil)
	cfg := testConfig(t, nil)
	cfg.AuthToken = testToken
	cfg.AllowPrivate = true
	h := start(t, cfg)
	if status, _, body := h.do("GET", "/"+testToken+"/https/127.0.0.1:"+portOf(fake.URL)+"/", nil, ""); status != 200 || body != "internal ok" {
		t.Errorf("allow-private: %d %s", status, body)
	}
	// The proxy's own address stays blocked: no loop back into llmproxy.
	_, port, _ := net.SplitHostPort(h.Addr)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		status, _, body := h.do("GET", "/"+testToken+"/http/"+host+":"+port+"/health", nil, "")
		if status != 403 {
			t.Errorf("request to itself via %s: %d %s", host, status, body)
		}
	}
}
