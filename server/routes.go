package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/generic"
	"github.com/llmproxy/llmproxy/wsproxy"
)

// ServeHTTP is the whole routing table, top to bottom:
//
//	/admin, /admin/…             → the admin panel (no CORS)
//	GET /, /assets/…             → the dashboard
//	GET /health                  → health
//	/stats, /metrics             → statistics (token as bearer when set)
//	/v1/…, /v1beta/…, /models    → the gateway: routed by model
//	/<preset>/…                  → preset (unless --preset-auth); WebSocket too
//	/<token>/<preset>/…          → preset
//	/<token>/<scheme>/…          → generic mode (https, http, wss, ws)
//	/<token>/stats, /metrics     → statistics
//	anything else                → 401 for a wrong token, else 404
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := newLogWriter(rw)
	defer s.logRequest(w, r)
	if c := connOf(r.Context()); c != nil {
		// RFC 9112 §6.1: a request with both Content-Length and
		// Transfer-Encoding is answered, then the connection closed.
		if c.bothFraming() {
			w.Header().Set("Connection", "close")
			if r.Header.Get("Upgrade") != "" { // a hijacked connection would not close
				writeErrorCode(w, http.StatusBadRequest, typeBadRequest, "",
					"a request with both Content-Length and Transfer-Encoding cannot be upgraded")
				return
			}
		}
		if c.req == nil { // else a request made in process while the connection's runs
			c.req = r.Context().Value(cancelCtxKey)
			defer func() {
				if !w.handedOff { // handOff clears it before the connection can come back
					c.req = nil
				}
			}()
		}
	}

	if r.RequestURI == "*" && r.Method == http.MethodOptions {
		// As net/http's own handler answers it (the server leaves it to
		// us so that the framing check above applies to it too).
		w.route = "options"
		w.Header().Set("Content-Length", "0")
		if r.ContentLength != 0 {
			io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
		}
		return
	}
	path := r.URL.EscapedPath()
	if path == "/admin" || strings.HasPrefix(path, "/admin/") {
		// The panel is same-origin only: no CORS answer of any kind
		// (cors_origins is for API clients in browsers).
		w.route = "admin"
		if s.admin == nil {
			s.notFound(w, false, s.snap.Load())
			return
		}
		s.admin.ServeHTTP(w, r)
		return
	}
	if s.cors.preflight(w, r) {
		return
	}
	s.cors.headers(w, r)

	snap := s.snap.Load()
	if s.dashboard != nil && (path == "/" || path == "/favicon.ico" || strings.HasPrefix(path, "/assets/")) {
		w.route = "dashboard"
		s.dashboard.ServeHTTP(w, r)
		return
	}
	switch path {
	case "/health":
		w.route = "health"
		s.serveHealth(w, r)
		return
	case "/stats", "/metrics":
		w.route = path[1:]
		if s.hasToken && !s.bearerMatches(r) {
			writeError(w, http.StatusUnauthorized, typeAuth,
				"statistics need the token: Authorization: Bearer <token>, or GET /<token>"+path)
			return
		}
		s.serveStats(w, r, path[1:])
		return
	}
	if gateway.IsGatewayPath(path) {
		s.serveGateway(w, r, snap, path)
		return
	}

	first, rest := splitSegment(path)
	if prov := snap.Preset(first); prov != nil {
		// preset_auth closes the presets that relay the client's own
		// provider key; one holding keys on the server already asks for a
		// client key (servePreset), which is how client keys reach it.
		if s.cfg.PresetAuth && !prov.Keyed() {
			w.api = prov.Kind
			writeError(w, http.StatusUnauthorized, typeAuth,
				"this proxy requires its token: use /<token>/"+first+"/…")
			return
		}
		s.servePreset(w, r, snap, prov, rest, nil)
		return
	}

	// A first segment before a route only the token has is a token
	// attempt: refused, it may be a near miss and is never logged.
	second, after := splitSegment(rest)
	tokenAttempt := snap.Preset(second) != nil || generic.IsScheme(second) ||
		second == "stats" || second == "metrics"
	if !s.hasToken || first == "" {
		s.notFound(w, tokenAttempt && generic.IsScheme(second), snap)
		return
	}
	if !s.tokenMatches(first) {
		// Not the token: whatever follows, the first segment may be a
		// near miss of it, and the log never holds it.
		w.refusedToken = true
		if tokenAttempt {
			writeError(w, http.StatusUnauthorized, typeAuth, "wrong token")
			return
		}
		s.notFound(w, false, snap)
		return
	}
	if prov := snap.Preset(second); prov != nil {
		s.servePreset(w, r, snap, prov, after, access.OperatorCaller())
		return
	}
	if generic.IsScheme(second) {
		s.serveGeneric(w, r, snap, rest)
		return
	}
	if after == "" && (second == "stats" || second == "metrics") {
		w.route = second
		s.serveStats(w, r, second)
		return
	}
	s.notFound(w, false, snap)
}

// wsScheme is the WebSocket scheme for an HTTP one.
func wsScheme(httpScheme string) string {
	if httpScheme == "http" {
		return "ws"
	}
	return "wss"
}

// bearerMatches reports whether the request carries the token as a bearer
// credential.
func (s *Server) bearerMatches(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	return ok && s.tokenMatches(strings.TrimSpace(token))
}

// splitSegment splits "/a/b/c" into "a" and "/b/c".
func splitSegment(path string) (string, string) {
	path = strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i:]
	}
	return path, ""
}

// tokenMatches compares a path segment with the token as SHA-256 digests in
// constant time: neither the length nor a prefix of the token leaks through
// timing.
func (s *Server) tokenMatches(segment string) bool {
	if decoded, err := url.PathUnescape(segment); err == nil {
		segment = decoded
	}
	sum := sha256.Sum256([]byte(segment))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// servePreset relays /<preset>/… to the preset's upstreams. caller is the
// operator when the request came under the token; otherwise a preset with
// server-side keys asks for a client credential (nothing is ever injected
// for an anonymous caller), and one without keys relays the client's own.
func (s *Server) servePreset(w *logWriter, r *http.Request, snap *gateway.Snapshot, prov *gateway.Provider, rest string, caller *access.Caller) {
	w.proxied(prov.Name, s.stats.Route(prov.Name))
	w.api = prov.Kind
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.tooLarge(w)
		return
	}
	if prov.Keyed() {
		if c, ok := access.CallerFrom(r.Context()); ok && caller == nil {
			caller = c
		}
		if caller == nil {
			var err error
			if caller, err = snap.Keys().Authenticate(r, time.Now()); err != nil {
				writeError(w, http.StatusUnauthorized, typeAuth, err.Error()+": this preset holds the provider's key on the server and needs a client key")
				return
			}
		}
		w.caller = caller
		if !caller.AllowsPreset(prov.Name) {
			writeError(w, http.StatusForbidden, typeForbidden, "this key may not use the preset "+prov.Name)
			return
		}
	}
	if wsproxy.IsUpgrade(r) {
		// Realtime APIs: /openai/v1/realtime, Gemini Live under /gemini/ws/….
		plan, err := snap.PresetPlan(r, prov, rest, caller, s.cfg.MaxBodyBytes)
		if err != nil {
			s.proxyError(w, r, err)
			return
		}
		if prov.Keyed() {
			// A session is one request to the client key's limits (rpm,
			// budget) and holds one of its max_parallel slots while it
			// lasts; its tokens are not metered.
			ticket, ok := s.admit(w, r, caller)
			if !ok {
				return
			}
			defer ticket.Done(0, 0)
		}
		s.serveWebSocket(w, r, plan)
		return
	}
	s.limitBody(w, r)
	plan, err := snap.PresetPlan(r, prov, rest, caller, s.cfg.MaxBodyBytes)
	if err != nil {
		s.proxyError(w, r, err)
		return
	}
	w.plan = plan
	if prov.Keyed() {
		ticket, ok := s.admit(w, r, caller)
		if !ok {
			return
		}
		w.ticket = ticket // settled when the answer ends (endRequest)
	}
	s.forward(w, r, plan)
}

// serveGeneric proxies /<token>/<scheme>/<host>/<path>: any URL, for the
// token's holder, behind the address guard.
func (s *Server) serveGeneric(w *logWriter, r *http.Request, snap *gateway.Snapshot, rest string) {
	w.route = "generic"
	t, err := generic.Parse(rest, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, err.Error())
		return
	}
	upgrade := wsproxy.IsUpgrade(r)
	switch {
	case upgrade && !t.WebSocket():
		t.Scheme = wsScheme(t.Scheme)
	case !upgrade && t.WebSocket():
		writeError(w, http.StatusBadRequest, typeBadRequest, "a ws or wss target needs a WebSocket handshake (Upgrade: websocket)")
		return
	}
	name := "generic/" + t.Scheme
	w.proxied(name, s.stats.Route(name))
	plan := snap.GenericPlan(t.URL())
	if upgrade {
		s.serveWebSocket(w, r, plan)
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.tooLarge(w)
		return
	}
	s.limitBody(w, r)
	s.forward(w, r, plan)
}

// limitBody caps the request body at MaxBodyBytes (413 beyond) and counts
// the bytes read for the log line.
func (s *Server) limitBody(w *logWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	// The server's own ResponseWriter, so that it closes the connection
	// after an oversized body.
	w.body.rc, w.body.n, w.body.err = http.MaxBytesReader(w.ResponseWriter, r.Body, s.cfg.MaxBodyBytes), &w.bytesIn, &w.bodyErr
	r.Body = &w.body
}

func (s *Server) notFound(w http.ResponseWriter, generic bool, snap *gateway.Snapshot) {
	if generic {
		writeError(w, http.StatusNotFound, typeNotFound,
			"generic mode is off: it needs an auth token (--auth-token or AUTH_TOKEN)")
		return
	}
	msg := "no route for this path: presets answer under /<preset>/…, e.g. /openai/v1/chat/completions; " +
		"the command `llmproxy presets` lists them"
	if s.dashboard != nil {
		msg += ", as does the page at /"
	}
	if snap.On() {
		msg += "; the gateway answers under /v1/… (e.g. /v1/chat/completions)"
	}
	writeError(w, http.StatusNotFound, typeNotFound, msg)
}

func (s *Server) tooLarge(w *logWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge,
		"request body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes (max_body_bytes)")
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, typeMethod, "use GET")
		return
	}
	out := map[string]any{
		"status":   "ok",
		"version":  s.version,
		"uptime_s": int64(time.Since(s.started).Seconds()),
	}
	if s.status != nil {
		degraded, parts := s.status()
		for k, v := range parts {
			out[k] = v
		}
		if degraded {
			out["status"] = "degraded"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
