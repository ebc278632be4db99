package socket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// endpoint is where a request goes: the pool key, the address to dial and
// the name to verify.
type endpoint struct {
	key        string // scheme://host:port
	addr       string // host:port
	serverName string
	tls        bool
}

// endpointKey is what an endpoint is derived from.
type endpointKey struct{ scheme, host string }

// endpointOf returns where a URL's requests go.
func endpointOf(u *url.URL) (endpoint, error) {
	if u == nil || u.Host == "" || u.Opaque != "" || u.User != nil {
		return endpoint{}, errors.New("socket: request needs an absolute http(s) URL without user info")
	}
	var ep endpoint
	port := "80"
	switch u.Scheme {
	case "https", "wss":
		ep.tls, port = true, "443"
	case "http", "ws":
	default:
		return endpoint{}, errors.New("socket: unsupported URL scheme")
	}
	host := u.Hostname()
	if p := u.Port(); p != "" {
		port = p
	}
	ep.addr = net.JoinHostPort(host, port)
	ep.serverName = host
	ep.key = u.Scheme + "://" + ep.addr
	if ep.tls {
		ep.key = "https://" + ep.addr
	}
	return ep, nil
}

// checkRequest validates what the request writer will put on the wire:
// method, target, Host and every header name and value (with httpguts, as
// net/http does). Errors never repeat a header value.
func checkRequest(req *http.Request) error {
	if !validMethod(req.Method) {
		return errors.New("socket: invalid method")
	}
	if req.ContentLength != 0 && req.Body == nil {
		// As net/http: a length with no body to send is a caller's bug.
		return errors.New("socket: request has a ContentLength but no Body")
	}
	if strings.ContainsFunc(requestTarget(req), invalidTargetRune) {
		return errors.New("socket: request target holds a space or control character")
	}
	if h := hostHeader(req); !httpguts.ValidHostHeader(h) {
		return errors.New("socket: invalid Host")
	}
	for name, values := range req.Header {
		if !httpguts.ValidHeaderFieldName(name) {
			return &HeaderError{Name: name}
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &HeaderError{Name: name}
			}
		}
	}
	return nil
}

func validMethod(m string) bool {
	if m == "" {
		return true // GET
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

func invalidTargetRune(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }

// requestTarget is the origin-form target: the escaped path as received and
// the raw query, never re-encoded.
func requestTarget(req *http.Request) string {
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		return path + "?" + req.URL.RawQuery
	}
	return path
}

func hostHeader(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// skipHeaders are never copied from the header map: the writer produces
// Host, framing and connection management itself (the privacy reference,
// "Writing HTTP/1.1 by hand").
var skipHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"User-Agent": true,
}

// writeRequest writes req in the order net/http uses (Host, User-Agent,
// framing, then the other headers sorted by name), so that the two
// transports produce the same header set and order.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(requestTarget(req))
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(hostHeader(req))
	w.WriteString("\r\n")
	if ua := req.Header.Values("User-Agent"); len(ua) > 0 && ua[0] != "" {
		writeHeader(w, "User-Agent", ua[0])
	}

	body, length := outgoingBody(req, method)
	switch {
	case length > 0:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), length, 10))
		w.WriteString("\r\n")
	case length < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case sendsZeroLength(method):
		w.WriteString("Content-Length: 0\r\n")
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	} else if up := req.Header.Values("Upgrade"); len(up) > 0 {
		// Only the WebSocket relay's own dialer sets Upgrade: the privacy
		// policy removes the client's.
		w.WriteString("Connection: Upgrade\r\n")
		writeHeader(w, "Upgrade", up[0])
	}

	var stack [32]string
	names := stack[:0]
	for name := range req.Header {
		// Canonical form for the check: a map key spelled "Content-LengtH"
		// must not smuggle in a second framing header.
		if !skipHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range req.Header[name] {
			writeHeader(w, name, v)
		}
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}

	if body == nil {
		return w.Flush()
	}
	if err := writeBody(w, body, length); err != nil {
		return err
	}
	return w.Flush()
}

func writeHeader(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(strings.TrimSpace(value))
	w.WriteString("\r\n")
}

// Framing follows net/http's client (net/http/transfer.go: outgoingLength,
// shouldSendChunkedRequestBody, probeRequestBody, shouldSendContentLength),
// so that the two transports frame every request of every method alike:
//
//   - no body (nil or http.NoBody): "Content-Length: 0" for POST, PUT and
//     PATCH, which many servers expect; nothing for any other method;
//   - a known length: Content-Length;
//   - an unknown length (ContentLength -1, or 0 with a body): chunked. For
//     the methods that usually have no body the body is probed first, and
//     an empty one is sent as none.

// outgoingBody returns what to send as the body (nil: none) and its
// length: > 0 known, < 0 unknown (chunked), 0 none.
func outgoingBody(req *http.Request, method string) (io.Reader, int64) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, 0
	}
	if req.ContentLength > 0 {
		return req.Body, req.ContentLength
	}
	if usuallyLacksBody(method) {
		return probeBody(req.Body)
	}
	return req.Body, -1
}

// sendsZeroLength: a body-less request of these methods still says
// "Content-Length: 0".
func sendsZeroLength(method string) bool {
	return method == "POST" || method == "PUT" || method == "PATCH"
}

func usuallyLacksBody(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// probeWindow is how long probeBody waits for the first byte, as net/http.
const probeWindow = 200 * time.Millisecond

type probed struct {
	b   byte
	n   int
	err error
}

// probeBody reads the first byte of a body of unknown length. An empty
// body is no body. A body slower than probeWindow is taken to have content
// and sent chunked; its first byte is awaited when the body is written.
func probeBody(body io.Reader) (io.Reader, int64) {
	ch := make(chan probed, 1)
	go func() {
		var b [1]byte
		n, err := body.Read(b[:])
		ch <- probed{b[0], n, err}
	}()
	timer := time.NewTimer(probeWindow)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.n == 0 && r.err == io.EOF {
			return nil, 0
		}
		return io.MultiReader(&firstByte{r: r, ready: true}, body), -1
	case <-timer.C:
		return io.MultiReader(&firstByte{ch: ch}, body), -1
	}
}

// firstByte replays the byte (or the error) probeBody read.
type firstByte struct {
	ch    <-chan probed
	r     probed
	ready bool
	done  bool
}

func (f *firstByte) Read(p []byte) (int, error) {
	if f.done {
		return 0, io.EOF
	}
	if !f.ready {
		f.r, f.ready = <-f.ch, true
	}
	f.done = true
	n := 0
	if f.r.n == 1 && len(p) > 0 {
		p[0] = f.r.b
		n = 1
	}
	if f.r.err != nil && f.r.err != io.EOF {
		return n, f.r.err
	}
	return n, io.EOF
}

// bodyError marks a failure to read the client's body, as opposed to a
// failure to write to the upstream.
type bodyError struct{ err error }

func (e bodyError) Error() string { return e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = bodyError{err}
	}
	return n, err
}

func writeBody(w *bufio.Writer, src io.Reader, length int64) error {
	body := bodyReader{src}
	if length < 0 {
		cw := httputil.NewChunkedWriter(w)
		if _, err := io.Copy(cw, body); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		_, err := w.WriteString("\r\n") // no trailers
		return err
	}
	// Read straight into the writer's free space: no intermediate buffer.
	remaining := length
	for remaining > 0 {
		if w.Available() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		buf := w.AvailableBuffer()[:min(int64(w.Available()), remaining)]
		n, err := body.Read(buf)
		w.Write(buf[:n])
		remaining -= int64(n)
		if err == io.EOF && remaining > 0 {
			return bodyError{errors.New("request body shorter than its Content-Length")}
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	// net/http checks the same: a body longer than announced is an error,
	// not something to cut silently.
	// (Read into the writer's spare room: a local array would escape.)
	if w.Available() == 0 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if m, _ := io.ReadFull(src, w.AvailableBuffer()[:1]); m > 0 {
		return bodyError{errors.New("request body longer than its Content-Length")}
	}
	return nil
}
