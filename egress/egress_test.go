package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// listen runs serve for each connection to a new loopback listener and
// returns its address; the cleanup waits for every connection to end.
func listen(t *testing.T, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// echoServer echoes one line per connection.
func echoServer(t *testing.T) string {
	return listen(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "echo: "+line)
	})
}

// proxyServer runs serve for each connection and records the targets asked for.
type proxyServer struct {
	addr    string
	mu      sync.Mutex
	targets []string
}

func (p *proxyServer) record(target string) {
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()
}

func startProxy(t *testing.T, serve func(p *proxyServer, c net.Conn)) *proxyServer {
	p := &proxyServer{}
	p.addr = listen(t, func(c net.Conn) { serve(p, c) })
	return p
}

func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(a, b); done <- struct{}{} }()
	go func() { io.Copy(b, a); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
	<-done
}

// socks5 is a minimal RFC 1928 server with username/password (RFC 1929).
func socks5(user, pass string) func(p *proxyServer, c net.Conn) {
	return func(p *proxyServer, c net.Conn) {
		r := bufio.NewReader(c)
		var hdr [2]byte
		io.ReadFull(r, hdr[:])
		methods := make([]byte, hdr[1])
		io.ReadFull(r, methods)
		c.Write([]byte{5, 2}) // username/password
		ver, _ := r.ReadByte()
		ulen, _ := r.ReadByte()
		u := make([]byte, ulen)
		io.ReadFull(r, u)
		plen, _ := r.ReadByte()
		pw := make([]byte, plen)
		io.ReadFull(r, pw)
		if ver != 1 || string(u) != user || string(pw) != pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
		var req [4]byte
		io.ReadFull(r, req[:])
		var host string
		switch req[3] {
		case 1:
			ip := make([]byte, 4)
			io.ReadFull(r, ip)
			host = net.IP(ip).String()
		case 3:
			l, _ := r.ReadByte()
			name := make([]byte, l)
			io.ReadFull(r, name)
			host = string(name)
		}
		var port [2]byte
		io.ReadFull(r, port[:])
		target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
		p.record(target)
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		splice(&bufConn{c, r}, up)
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func connectProxy(auth string) func(p *proxyServer, c net.Conn) {
	return connectProxyAnswering(auth, "200 Connection established")
}

// connectProxyAnswering is connectProxy, opening the tunnel with status.
func connectProxyAnswering(auth, status string) func(p *proxyServer, c net.Conn) {
	return func(p *proxyServer, c net.Conn) {
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		p.record(req.Host)
		if req.Method != http.MethodConnect || req.Header.Get("Proxy-Authorization") != auth || req.Header.Get("User-Agent") != "" {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
			return
		}
		up, err := net.Dial("tcp", req.Host)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 "+status+"\r\n\r\n")
		splice(&bufConn{c, r}, up)
	}
}

func roundTripLine(t *testing.T, d Dialer, target string) string {
	t.Helper()
	c, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func TestSOCKS5(t *testing.T) {
	t.Parallel()
	target := echoServer(t)
	p := startProxy(t, socks5("alice", "s3cret"))
	d, err := New(Options{Proxy: "socks5://alice:s3cret@" + p.addr})
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTripLine(t, d, target); got != "echo: hello\n" {
		t.Errorf("got %q", got)
	}
	if len(p.targets) != 1 || p.targets[0] != target {
		t.Errorf("proxy asked for %v, want %s", p.targets, target)
	}
	bad, _ := New(Options{Proxy: "socks5://alice:wrong@" + p.addr})
	if _, err := bad.DialContext(context.Background(), "tcp", target); err == nil {
		t.Error("wrong SOCKS5 password accepted")
	}
}

func TestHTTPConnect(t *testing.T) {
	t.Parallel()
	target := echoServer(t)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:pw"))
	p := startProxy(t, connectProxy(auth))
	d, err := New(Options{Proxy: "http://bob:pw@" + p.addr})
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTripLine(t, d, target); got != "echo: hello\n" {
		t.Errorf("got %q", got)
	}
	// Any 2xx opens the tunnel (RFC 9110 §9.3.6), not only 200.
	p204 := startProxy(t, connectProxyAnswering(auth, "204 No Content"))
	d204, err := New(Options{Proxy: "http://bob:pw@" + p204.addr})
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTripLine(t, d204, target); got != "echo: hello\n" {
		t.Errorf("through a proxy answering 204: got %q", got)
	}
	bad, _ := New(Options{Proxy: "http://bob:nope@" + p.addr})
	_, err = bad.DialContext(context.Background(), "tcp", target)
	if err == nil || !strings.Contains(err.Error(), "407") || strings.Contains(err.Error(), "nope") {
		t.Errorf("refused CONNECT: err = %v (want 407, without the password)", err)
	}
}

func TestBadProxyURL(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"ftp://x:1", "socks5://", "http://host", "http://u:p@host:1/path", "://bad"} {
		_, err := New(Options{Proxy: raw})
		if err == nil {
			t.Errorf("New(%q) accepted", raw)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("error repeats credentials: %v", err)
		}
	}
}

// A proxy that sends the first bytes of the tunnel in the same packet as
// its 200: they are the target's, and the caller reads them first.
func TestHTTPConnectKeepsBytesSentWithTheAnswer(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(p *proxyServer, c net.Conn) {
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		p.record(req.Host)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\ngreeting from the target\n")
		line, _ := r.ReadString('\n')
		io.WriteString(c, "echo: "+line)
	})
	d, err := New(Options{Proxy: "http://" + p.addr})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", "api.example:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // lost bytes would leave the read waiting
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "greeting from the target\n" {
		t.Fatalf("first line %q, %v: the bytes that came with the 200 were lost", line, err)
	}
	io.WriteString(c, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Errorf("then %q, %v", line, err)
	}
	if len(p.targets) != 1 || p.targets[0] != "api.example:443" {
		t.Errorf("proxy asked for %v", p.targets)
	}
}

// A proxy that never answers, answers with something other than HTTP,
// closes or refuses fails the dial with an error that names the egress
// proxy and the cause (the timeout for the silent one) and repeats no
// credential; the connection to the proxy is closed (the listener's
// cleanup waits for the proxy's side to see it).
func TestHTTPConnectFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  string // "" answers nothing
		wantErr string
	}{
		{"silent proxy", "", "deadline exceeded"},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n", "malformed HTTP"},
		{"closed before answering", "close", "EOF"},
		{"bad gateway", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", "status 502"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, func(p *proxyServer, c net.Conn) {
				r := bufio.NewReader(c)
				if _, err := http.ReadRequest(r); err != nil {
					return
				}
				switch tc.answer {
				case "":
					io.Copy(io.Discard, r) // until the dialer gives up and closes
				case "close":
				default:
					io.WriteString(c, tc.answer)
					io.Copy(io.Discard, r)
				}
			})
			timeout := 10 * time.Second // time enough to answer on a loaded machine
			if tc.answer == "" {
				timeout = 300 * time.Millisecond
			}
			msg := dialFails(t, Options{Proxy: "http://carol:hunter2@" + p.addr, Timeout: timeout}).Error()
			if !strings.Contains(msg, "egress proxy") || !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q, want it to name the egress proxy and %q", msg, tc.wantErr)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "carol") {
				t.Errorf("error repeats the proxy's credentials: %q", msg)
			}
		})
	}
}

// A SOCKS5 proxy that never finishes its handshake is bounded by Timeout.
func TestSOCKS5Timeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, func(p *proxyServer, c net.Conn) { io.Copy(io.Discard, c) })
	err := dialFails(t, Options{Proxy: "socks5://" + p.addr, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("error %v, want the timeout", err)
	}
}

// dialFails dials api.example:443 through a Dialer for opts and returns the
// error; a dial that succeeds fails the test.
func dialFails(t *testing.T, opts Options) error {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", "api.example:443")
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	return err
}
