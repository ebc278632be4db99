package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

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
)

type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes llmproxy's own error: JSON {"error":{"type","message"}}
// with X-Proxy-Error: true, so a client can tell it from an upstream's.
// Messages never hold a URL, key or token.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Proxy-Error", "true")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	var body errorBody
	body.Error.Type, body.Error.Message = typ, msg
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}

// failure is an upstream error mapped to what the client is told.
type failure struct {
	status int
	typ    string
	msg    string
	reason string // short cause for the log line
}

// classify is the one place that maps a round-trip error to a status:
// client gone → 499 (nothing written); a body over the limit → 413; an
// invalid header → 400; a refused destination → 403; a timeout → 504;
// anything else → 502.
func (s *Server) classify(ctx context.Context, err error) failure {
	var maxBytes *http.MaxBytesError
	var headerErr *socket.HeaderError
	var ne net.Error
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case ctx.Err() != nil: // the client's own request context: it left
		return failure{status: StatusClientClosed, reason: "client closed the request"}
	case errors.As(err, &maxBytes):
		return failure{http.StatusRequestEntityTooLarge, typeTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", maxBytes.Limit), "body too large"}
	case errors.As(err, &headerErr):
		return failure{http.StatusBadRequest, typeBadRequest, headerErr.Error(), "invalid header"}
	case netguard.IsBlocked(err):
		return failure{http.StatusForbidden, typeForbidden, "destination not allowed", "destination not allowed"}
	case isTimeoutErr(err):
		return failure{http.StatusGatewayTimeout, typeTimeout, "the upstream did not answer in time", timeoutReason(err)}
	case errors.As(err, &dnsErr):
		return failure{http.StatusBadGateway, typeUpstream, "the upstream's name could not be resolved", "dns"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return failure{http.StatusBadGateway, typeUpstream, "the upstream refused the connection", "refused"}
	case errors.As(err, &tlsErr) || errors.As(err, &alert):
		return failure{http.StatusBadGateway, typeUpstream, "the TLS handshake with the upstream failed", "tls"}
	case errors.Is(err, socket.ErrNoResponse) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		return failure{http.StatusBadGateway, typeUpstream, "the upstream closed the connection without an answer", "reset"}
	case errors.As(err, &ne):
		return failure{http.StatusBadGateway, typeUpstream, "the upstream could not be reached", "network"}
	}
	return failure{http.StatusBadGateway, typeUpstream, "the upstream request failed", "upstream"}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func timeoutReason(err error) string {
	switch {
	case errors.Is(err, socket.ErrResponseHeaderTimeout):
		return "response header timeout"
	case errors.Is(err, socket.ErrIdleTimeout):
		return "idle timeout"
	}
	return "timeout"
}

// proxyError answers a failed round trip. A client that left gets nothing
// (logged as 499).
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f := s.classify(r.Context(), err)
	if lw, ok := w.(*logWriter); ok {
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
	writeError(w, f.status, f.typ, f.msg)
}
