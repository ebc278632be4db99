package socket

import (
	"errors"
	"net"
)

// Op names the step of a round trip that failed.
type Op string

const (
	OpDial  Op = "dial"  // DNS, TCP connect, egress proxy, address guard
	OpTLS   Op = "tls"   // TLS handshake or ALPN
	OpWrite Op = "write" // writing the request to the upstream
	OpBody  Op = "body"  // reading the request body from the client
	OpRead  Op = "read"  // waiting for or parsing the response headers
	// OpResponse: reading the response body, after the headers were returned.
	OpResponse Op = "response"
)

// Error is a failed round trip. Its message never holds a header value; it
// may hold the upstream's host and address.
type Error struct {
	Op Op
	// Reused is set when the connection came from the idle pool.
	Reused bool
	// Sent is set when bytes of the request may have reached the upstream.
	Sent bool
	Err  error
}

func (e *Error) Error() string { return "socket " + string(e.Op) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a timeout, so that callers map it
// to 504 like any other net.Error.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// NothingSent reports whether the upstream cannot have received any byte of
// the request and the request is intact: the connection could not be made,
// or broke before its first byte was written. Only then may another
// transport send the request again without risking a double send (LLM POSTs
// are not idempotent: a second send can be billed twice).
func (e *Error) NothingSent() bool {
	return !e.Sent && (e.Op == OpDial || e.Op == OpTLS || e.Op == OpWrite)
}

// BodyIntact reports whether the request body was not read at all, so the
// same request can go out again as it is, without rewinding its body.
func (e *Error) BodyIntact() bool { return e.Op == OpDial || e.Op == OpTLS }

// timeoutError is a net.Error that reports a timeout of ours.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

var (
	// ErrResponseHeaderTimeout: the upstream took the whole request but sent
	// no response headers within ResponseHeaderTimeout.
	ErrResponseHeaderTimeout error = &timeoutError{"timeout awaiting response headers"}
	// ErrIdleTimeout: nothing arrived on a response body, or nothing could be
	// written, for IdleTimeout.
	ErrIdleTimeout error = &timeoutError{"upstream idle for too long"}
	// ErrALPN: the upstream negotiated a protocol other than HTTP/1.1, e.g.
	// an HTTP/2-only server.
	ErrALPN = errors.New("upstream does not speak HTTP/1.1 (ALPN)")
	// ErrNoResponse: the upstream closed the connection without a byte of
	// response.
	ErrNoResponse = errors.New("upstream closed the connection without a response")
	// ErrResponseHeaderTooLarge: the response's header section (with any
	// 1xx before it) exceeded MaxResponseHeaderBytes.
	ErrResponseHeaderTooLarge = errors.New("upstream response headers too large")
)

// HeaderError reports a request header that cannot be written. It names the
// header but never repeats its value, which may be a key.
type HeaderError struct{ Name string }

func (e *HeaderError) Error() string {
	return "request header " + quoteName(e.Name) + " has an invalid name or value"
}

func quoteName(name string) string {
	if len(name) > 64 {
		name = name[:64]
	}
	b := []byte{'"'}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x21 || c > 0x7e || c == '"' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}
