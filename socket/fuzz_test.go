package socket

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

// FuzzWriteRequest checks the hand-written request against net/http's own
// parser: whatever checkRequest accepts must parse back to the same method,
// target, Host, header values and body, with exactly one framing.
func FuzzWriteRequest(f *testing.F) {
	f.Add("POST", "/v1/chat/completions?alt=sse&key=x", "Authorization", "Bearer sk-1", []byte(`{"a":1}`), false)
	f.Add("GET", "/v1beta/models/gemini:streamGenerateContent", "X-Goog-Api-Key", " k ", []byte(nil), false)
	f.Add("PUT", "/%2e%2e/a;b?c=%zz", "X-Custom", "v\x80\xff", []byte("chunk me"), true)
	f.Add("DELETE", "/", "Content-Length", "5", []byte("x"), false)
	f.Fuzz(func(t *testing.T, method, target, name, value string, body []byte, chunked bool) {
		u, err := url.Parse("https://provider.test" + target)
		if err != nil || u.Host != "provider.test" {
			return
		}
		req := &http.Request{Method: method, URL: u, Header: http.Header{name: {value}}}
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			if chunked {
				req.ContentLength = -1
			}
		}
		if _, err := endpointOf(req.URL); err != nil {
			return
		}
		if err := checkRequest(req); err != nil {
			return // refused before anything is written: fine
		}
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := writeRequest(bw, req); err != nil {
			t.Fatalf("writeRequest: %v", err)
		}
		wire := buf.String()
		got, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("net/http cannot parse what we wrote: %v\n%q", err, wire)
		}
		wantMethod := method
		if wantMethod == "" {
			wantMethod = "GET"
		}
		if got.Method != wantMethod || got.RequestURI != requestTarget(req) || got.Host != "provider.test" {
			t.Fatalf("parsed %s %s host %q, want %s %s\n%q", got.Method, got.RequestURI, got.Host, wantMethod, requestTarget(req), wire)
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil || !bytes.Equal(gotBody, body) {
			t.Fatalf("body = %q (%v), want %q\n%q", gotBody, err, body, wire)
		}
		if strings.Count(strings.ToLower(wire), "\ncontent-length:")+strings.Count(strings.ToLower(wire), "\ntransfer-encoding:") > 1 {
			t.Fatalf("more than one framing header:\n%q", wire)
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if skipHeaders[canon] {
			return
		}
		if v := got.Header.Get(canon); v != strings.TrimSpace(value) && strings.TrimSpace(value) != "" {
			t.Fatalf("header %q = %q, want %q\n%q", canon, v, strings.TrimSpace(value), wire)
		}
	})
}
