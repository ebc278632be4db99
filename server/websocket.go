package server

import (
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/llmproxy/llmproxy/fallback"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/privacy"
	"github.com/llmproxy/llmproxy/wsproxy"
)

// serveWebSocket relays a WebSocket to the plan's target, with its header
// policy applied to the handshake: Authorization, x-api-key,
// x-goog-api-key and OpenAI-Beta pass (for presets, by the allowlist);
// Origin, Cookie and every identifying header stay behind. The client's
// subprotocols go upstream and the upstream's choice comes back (OpenAI's
// browser auth rides in a subprotocol).
func (s *Server) serveWebSocket(w *logWriter, r *http.Request, plan *gateway.Plan) {
	if !wsproxy.ValidClientHandshake(r) {
		writeError(w, http.StatusBadRequest, typeBadRequest, "invalid WebSocket handshake")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.cors.allowed(origin) {
		writeError(w, http.StatusForbidden, typeForbidden, "origin not allowed")
		return
	}
	w.plan = plan
	target, header, rt, err := plan.WebSocket(r)
	if err != nil {
		s.proxyError(w, r, err)
		return
	}
	r = r.WithContext(fallback.WithReport(r.Context(), &w.report))

	if w.stats != nil {
		w.stats.WebSocketOpened()
		defer w.stats.WebSocketClosed()
	}
	res, err := s.ws.Serve(w, r, wsproxy.Dial{Target: target, Header: header, Transport: rt, Subprotocols: s.subprotocols(r, plan)})
	var he *wsproxy.HandshakeError
	var ce *wsproxy.ClientHandshakeError
	switch {
	case errors.As(err, &he):
		s.upstreamRefusedUpgrade(w, he)
	case errors.As(err, &ce):
		w.reason = "client handshake refused" // Accept answered it
	case err != nil && !w.hijacked:
		s.proxyError(w, r, err)
	case err != nil:
		w.reason = "client handshake failed"
	default:
		w.status = http.StatusSwitchingProtocols
		w.bytesIn.Store(res.BytesIn)
		w.bytesOut = res.BytesOut
		w.wsEnd = res.Reason
		w.wsCode = res.Code
	}
}

// subprotocols returns the client's subprotocols that may go upstream: never
// one that holds the operator's token, in any spelling; and when the
// provider's key is injected, never OpenAI's browser credential
// (openai-insecure-api-key.<key>), which then held the client's own key
// for llmproxy. A provider key the client itself put there, on a preset
// without server-side keys, is the client's to send.
func (s *Server) subprotocols(r *http.Request, plan *gateway.Plan) []string {
	offered := wsproxy.Subprotocols(r)
	kept := offered[:0]
	for _, p := range offered {
		if s.hasToken && privacy.ContainsSecret(p, s.cfg.AuthToken) {
			continue
		}
		if plan.Injects() && strings.HasPrefix(strings.ToLower(p), "openai-insecure-api-key.") {
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

// upstreamRefusedUpgrade passes on the upstream's answer to a handshake it
// refused (a 401 for a bad key, say): its status, and its body when that is
// JSON, as the provider's own error; anything else becomes llmproxy's JSON
// error with the same status.
func (s *Server) upstreamRefusedUpgrade(w *logWriter, he *wsproxy.HandshakeError) {
	w.reason = "upstream refused the WebSocket handshake"
	privacy.CleanResponse(he.Header, false)
	if he.StatusCode < 400 {
		// A redirect or an odd success: the upgrade failed all the same,
		// and its status would tell the client otherwise.
		writeError(w, http.StatusBadGateway, typeUpstream, he.Error())
		return
	}
	if mt, _, _ := mime.ParseMediaType(he.Header.Get("Content-Type")); mt == "application/json" && len(he.Body) > 0 {
		w.Header().Set("Content-Type", he.Header.Get("Content-Type"))
		w.WriteHeader(he.StatusCode)
		w.Write(he.Body)
		return
	}
	writeError(w, he.StatusCode, typeUpstream, he.Error())
}
