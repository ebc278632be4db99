package socket

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/providertest"
)

// TestResponseHeaderLimit: an upstream that sends headers without end is
// cut off at MaxResponseHeaderBytes, 1xx answers included; headers under
// the limit pass.
func TestResponseHeaderLimit(t *testing.T) {
	t.Parallel()
	line := "X-Filler: " + strings.Repeat("a", 990) + "\r\n" // 1002 bytes
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			req, _, err := c.ReadRequest()
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/endless":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				for {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			case "/hints":
				for range 5 { // 40 KB in five 103s
					io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n"+strings.Repeat(line, 8)+"\r\n")
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			case "/fits":
				io.WriteString(c, "HTTP/1.1 200 OK\r\n"+strings.Repeat(line, 30)+"Content-Length: 2\r\n\r\nok")
			}
		}
	})
	tr := newTransport(t)
	tr.MaxResponseHeaderBytes = 32 << 10
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"/fits", true}, {"/endless", false}, {"/fits", true}, {"/hints", false}} {
		req, _ := http.NewRequest("GET", raw.URL+tc.path, nil)
		resp, err := tr.RoundTrip(req)
		if tc.ok {
			if err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			continue
		}
		var se *Error
		if !errors.Is(err, ErrResponseHeaderTooLarge) || !errors.As(err, &se) || se.Op != OpRead {
			t.Fatalf("%s: err = %v, want ErrResponseHeaderTooLarge at OpRead", tc.path, err)
		}
	}
}
