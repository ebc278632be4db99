package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmproxy/llmproxy/fetch"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/socket"
)

// StatusClientClosed is logged when the client left before the answer
// (nginx's 499). Nothing is written: there is no one to write to.
const StatusClientClosed = 499

// Error types, the "type" field of every error llmproxy writes itself.
const (
	typeBadRequest  = "invalid_request"
	typeAuth        = "unauthorized"
	typeNotFound    = "not_found"
	typeForbidden   = "forbidden"
	typeTooLarge    = "request_too_large"
	typeUpstream    = "upstream_error"
	typeTimeout     = "upstream_timeout"
	typeMethod      = "method_not_allowed"
	typeUnavailable = "unavailable"
	typeRateLimited = "rate_limited"
)

// typeOf is the error type for a status.
func typeOf(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return typeBadRequest
	case http.StatusUnauthorized:
		return typeAuth
	case http.StatusForbidden:
		return typeForbidden
	case http.StatusNotFound:
		return typeNotFound
	case http.StatusMethodNotAllowed:
		return typeMethod
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return typeTooLarge
	case http.StatusTooManyRequests:
		return typeRateLimited
	case http.StatusGatewayTimeout:
		return typeTimeout
	case http.StatusServiceUnavailable:
		return typeUnavailable
	}
	return typeUpstream
}

// writeError writes llmproxy's own error with X-Proxy-Error: true, so a
// client can tell it from an upstream's, in the format the client's SDK
// parses: OpenAI's {"error":{"message","type","param","code"}} (also
// llmproxy's own, for every other route), Anthropic's {"type":"error",
// "error":{"type","message"}} or Google's {"error":{"code","message",
// "status"}}. Messages never hold a URL, key or token.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeErrorCode(w, status, typ, "", msg)
}

// writeErrorCode is writeError with a machine-readable code (OpenAI's
// "code": model_not_found, rate_limit_exceeded, …).
func writeErrorCode(w http.ResponseWriter, status int, typ, code, msg string) {
	writeErrorParam(w, status, typ, code, "", msg)
}

// writeErrorParam is writeErrorCode with the request field at fault
// (OpenAI's "param", e.g. "model"; null when ""). Anthropic's and Google's
// formats have no such field.
func writeErrorParam(w http.ResponseWriter, status int, typ, code, param, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Proxy-Error", "true")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	var kind gateway.Kind
	if lw, ok := w.(*logWriter); ok {
		kind = lw.api
	}
	var body any
	switch kind {
	case gateway.KindAnthropic:
		body = anthropicError{Type: "error", Error: anthropicDetail{Type: anthropicType(status), Message: msg}}
	case gateway.KindGemini:
		body = googleError{Error: googleDetail{Code: status, Message: msg, Status: googleStatus(status)}}
	default:
		var e errorBody
		e.Error.Type, e.Error.Message = typ, msg
		if code != "" {
			e.Error.Code = &code
		}
		if param != "" {
			e.Error.Param = &param
		}
		body = e
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type anthropicError struct {
	Type  string          `json:"type"`
	Error anthropicDetail `json:"error"`
}

type anthropicDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// anthropicType is Anthropic's error type for a status (its SDKs map
// status codes to exceptions; the type is what they show).
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	}
	return "api_error"
}

type googleError struct {
	Error googleDetail `json:"error"`
}

type googleDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// googleStatus is Google's canonical status name for an HTTP status.
func googleStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	}
	return "INTERNAL"
}

func fail(status int, typ, msg, reason string) failure {
	return failure{status: status, typ: typ, msg: msg, reason: reason}
}

// failure is an upstream error mapped to what the client is told.
type failure struct {
	status     int
	typ        string
	msg        string
	reason     string // short cause for the log line
	code       string
	param      string // the request field at fault, for OpenAI's "param"
	retryAfter time.Duration
}

// classify is the one place that maps a round-trip error to a status:
// client gone → 499 (nothing written); a body over the limit → 413; an
// invalid header → 400; a refused destination → 403; a timeout → 504;
// anything else → 502.
func (s *Server) classify(left bool, err error, clientBody bool) failure {
	var maxBytes *http.MaxBytesError
	var headerErr *socket.HeaderError
	var ne net.Error
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var ge *gateway.Error
	var se *socket.Error
	switch {
	case left:
		return failure{status: StatusClientClosed, reason: "client closed the request"}
	case errors.As(err, &maxBytes):
		return fail(http.StatusRequestEntityTooLarge, typeTooLarge,
			fmt.Sprintf("request body is larger than %d bytes (max_body_bytes)", maxBytes.Limit), "body too large")
	case errors.As(err, &ge):
		return failure{status: ge.Status, typ: typeOf(ge.Status), msg: ge.Message, reason: ge.Code, code: ge.Code, param: ge.Param, retryAfter: ge.RetryAfter}
	case errors.As(err, &se) && se.Op == socket.OpBody, clientBody:
		// The client's body broke (bad chunk sizes, a short body): its
		// error, not the upstream's.
		return fail(http.StatusBadRequest, typeBadRequest, "the request body could not be read: "+bodyProblem(err), "client body")
	case errors.As(err, &headerErr):
		return fail(http.StatusBadRequest, typeBadRequest, headerErr.Error(), "invalid header")
	case netguard.IsBlocked(err):
		return fail(http.StatusForbidden, typeForbidden, "destination not allowed", "destination not allowed")
	case isTimeoutErr(err):
		return fail(http.StatusGatewayTimeout, typeTimeout, "the upstream did not answer in time", timeoutReason(err))
	case errors.As(err, &dnsErr):
		return fail(http.StatusBadGateway, typeUpstream, "the upstream's name could not be resolved", "dns")
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail(http.StatusBadGateway, typeUpstream, "the upstream refused the connection", "refused")
	case errors.As(err, &tlsErr) || errors.As(err, &alert):
		return fail(http.StatusBadGateway, typeUpstream, "the TLS handshake with the upstream failed", "tls")
	case errors.Is(err, socket.ErrNoResponse) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		return fail(http.StatusBadGateway, typeUpstream, "the upstream closed the connection without an answer", "reset")
	case errors.As(err, &ne):
		return fail(http.StatusBadGateway, typeUpstream, "the upstream could not be reached", "network")
	}
	return fail(http.StatusBadGateway, typeUpstream, "the upstream request failed", "upstream")
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func timeoutReason(err error) string {
	switch {
	case errors.Is(err, socket.ErrResponseHeaderTimeout):
		return "response header timeout"
	case errors.Is(err, socket.ErrIdleTimeout), errors.Is(err, fetch.ErrIdleTimeout):
		return "idle timeout"
	}
	return "timeout"
}

// proxyError answers a failed round trip. A client that left gets nothing
// (logged as 499).
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	lw, _ := w.(*logWriter)
	f := s.classify(clientLeft(r), err, lw != nil && lw.bodyErr.Load() != nil)
	if lw != nil {
		lw.reason = f.reason
		lw.failed = f.status == http.StatusBadGateway || f.status == http.StatusGatewayTimeout
		if f.status == StatusClientClosed {
			lw.status = StatusClientClosed
		}
	}
	s.log.Debug("upstream request failed", "reason", f.reason, "error", err)
	if f.status == StatusClientClosed {
		return
	}
	s.cors.headers(w, r)
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.retryAfter+time.Second-1)/time.Second)))
	}
	writeErrorParam(w, f.status, f.typ, f.code, f.param, f.msg)
}

// bodyProblem names what was wrong with a client's body, without its bytes.
func bodyProblem(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ended early"
	case strings.Contains(err.Error(), "chunk"):
		return "invalid chunked encoding"
	}
	return "it was malformed or cut off"
}
