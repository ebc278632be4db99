package socket

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/llmproxy/llmproxy/internal/sockio"
	"github.com/llmproxy/llmproxy/providertest"
)

// TestUpstreamConnectionsUseRawCalls: the TCP connection under an
// upstream's TLS is read and written outside the scheduler's system-call
// state (internal/sockio), and a request over it works. Dropping the
// wrapper would cost a tenth of a request's CPU without failing anything
// else.
func TestUpstreamConnectionsUseRawCalls(t *testing.T) {
	if !sockio.Raw {
		t.Skip("this build wraps nothing (msan, asan)")
	}
	t.Parallel()
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), nil)
	tr := newTransport(t)
	u, _ := url.Parse(fake.URL)
	ep, err := tr.endpoint(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.dialConn(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	if _, ok := c.ic.Conn.(*sockio.Conn); !ok {
		t.Fatalf("the upstream's TCP connection is a %T, not a *sockio.Conn", c.ic.Conn)
	}
	req, _ := http.NewRequest("GET", fake.URL+"/v1/models", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "ok" {
		t.Fatalf("read %q, %v", body, err)
	}
}
