//go:build unix

package providertest

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"
)

// TestRefusedURLKeepsItsPort: a dial to RefusedURL's port is refused, no
// listener can take the port while the test runs, and it is free again
// once the test ended.
func TestRefusedURLKeepsItsPort(t *testing.T) {
	t.Parallel()
	var host string
	t.Run("in use", func(t *testing.T) {
		u, err := url.Parse(RefusedURL(t))
		if err != nil {
			t.Fatal(err)
		}
		host = u.Host
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s: connected, want refused", host)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", host, err)
		}
		if ln, err := net.Listen("tcp", host); err == nil {
			ln.Close()
			t.Fatalf("a listener took %s while the test holds it", host)
		}
	})
	ln, err := net.Listen("tcp", host)
	if err != nil {
		t.Fatalf("after the test, listen on %s: %v", host, err)
	}
	ln.Close()
}
