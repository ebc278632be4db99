package socket

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/providertest"
)

// wireRequest is a request as the upstream read it off the wire.
type wireRequest struct {
	header http.Header // as sent, Host included
	body   string      // the framed body bytes, chunk framing included
}

// recordingUpstream answers every request with an empty 200 and hands
// over the request as it arrived.
func recordingUpstream(t *testing.T) (*providertest.Raw, <-chan wireRequest) {
	got := make(chan wireRequest, 1)
	raw := providertest.NewRaw(t, func(c *providertest.RawConn) {
		for {
			head, err := readRawHead(c.R)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				return
			}
			var body strings.Builder
			switch {
			case len(req.TransferEncoding) > 0:
				// Keep the chunk framing: it is part of what was sent.
				if err := readChunked(c.R, &body); err != nil {
					return
				}
			case req.ContentLength > 0:
				io.CopyN(&body, c.R, req.ContentLength)
			}
			h := http.Header{}
			for _, line := range strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")[1:] {
				name, value, _ := strings.Cut(line, ": ")
				h[name] = append(h[name], value)
			}
			got <- wireRequest{h, body.String()}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	return raw, got
}

// readChunked copies a chunked body, framing and all, up to and including
// the blank line after the last chunk (RFC 9112 §7.1).
func readChunked(r *bufio.Reader, w *strings.Builder) error {
	for {
		line, err := r.ReadString('\n')
		w.WriteString(line)
		if err != nil {
			return err
		}
		var size int64
		if _, err := fmt.Sscanf(line, "%x", &size); err != nil {
			return err
		}
		if size == 0 {
			for { // trailer section, then the blank line
				line, err := r.ReadString('\n')
				w.WriteString(line)
				if err != nil || line == "\r\n" {
					return err
				}
			}
		}
		if _, err := io.CopyN(w, r, size+2); err != nil {
			return err
		}
	}
}

// TestFramingSameOnBothTransports sends every method with no body, with
// an empty body (of zero and of unknown length) and with a body of unknown
// length through socket and fetch (net/http), and compares what arrived,
// header set for header set and byte for byte, and both with what
// net/http's rules say.
func TestFramingSameOnBothTransports(t *testing.T) {
	t.Parallel()
	raw, got := recordingUpstream(t)
	st := newTransport(t)
	ft := fetch.New(fetch.Options{TLSClientConfig: providertest.CA(t).ClientTLS()})
	t.Cleanup(ft.CloseIdleConnections)

	type body struct {
		name   string
		make   func() io.ReadCloser // nil: no body
		length int64
	}
	bodies := []body{
		{"no body", nil, 0},
		{"empty body of length 0", func() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }, 0},
		{"empty body of unknown length", func() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }, -1},
		{"body of unknown length", func() io.ReadCloser { return io.NopCloser(strings.NewReader("hello")) }, -1},
	}
	// What net/http's rules say, per body kind: "" none, "0" Content-Length: 0,
	// "chunked".
	want := func(method string, b body) string {
		switch {
		case b.name == "body of unknown length":
			return "chunked"
		case b.make != nil && slices.Contains([]string{"POST", "PUT", "PATCH", "PURGE"}, method):
			return "chunked" // unknown length, not probed for these methods
		case method == "POST" || method == "PUT" || method == "PATCH":
			return "0"
		}
		return ""
	}
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"} {
		for _, b := range bodies {
			t.Run(method+"/"+b.name, func(t *testing.T) {
				var seen [2]wireRequest
				for i, rt := range []http.RoundTripper{st, ft} {
					req, err := http.NewRequest(method, raw.URL+"/v1/things", nil)
					if err != nil {
						t.Fatal(err)
					}
					req.Header = http.Header{"Authorization": {"Bearer k"}, "X-Custom": {"1"}}
					if b.make != nil {
						req.Body, req.ContentLength = b.make(), b.length
					}
					resp, err := rt.RoundTrip(req)
					if err != nil {
						t.Fatalf("transport %d: %v", i, err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					seen[i] = <-got
				}
				s, f := seen[0], seen[1]
				if !maps.EqualFunc(s.header, f.header, slices.Equal) || s.body != f.body {
					t.Fatalf("socket sent %v %q\n fetch sent %v %q", s.header, s.body, f.header, f.body)
				}
				framing := ""
				switch {
				case s.header.Get("Transfer-Encoding") == "chunked":
					framing = "chunked"
				case s.header.Get("Content-Length") != "":
					framing = s.header.Get("Content-Length")
				}
				if w := want(method, b); framing != w {
					t.Errorf("framing %q, want %q (%v)", framing, w, s.header)
				}
				if n := len(s.header["Content-Length"]) + len(s.header["Transfer-Encoding"]); n > 1 {
					t.Errorf("%d framing headers: %v", n, s.header)
				}
				if b.name == "body of unknown length" {
					// Chunk sizes are the writer's (both send the probed
					// byte as a chunk of its own); the content is not.
					content, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(s.body)))
					if err != nil || string(content) != "hello" {
						t.Errorf("body %q decodes to %q, %v", s.body, content, err)
					}
				} else if wantBody := map[string]string{"chunked": "0\r\n\r\n", "": "", "0": ""}[framing]; s.body != wantBody {
					t.Errorf("body bytes %q, want %q", s.body, wantBody)
				}
			})
		}
	}
}
