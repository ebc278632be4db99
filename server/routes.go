package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/generic"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/wsproxy"
)

// ServeHTTP is the whole routing table, top to bottom:
//
//	GET /, /assets/…             → the dashboard
//	GET /health                  → health
//	/stats, /metrics             → statistics (token as bearer when set)
//	/<preset>/…                  → preset (unless --preset-auth); WebSocket too
//	/<token>/<preset>/…          → preset
//	/<token>/<scheme>/…          → generic mode (https, http, wss, ws)
//	/<token>/stats, /metrics     → statistics
//	anything else                → 401 for a wrong token, else 404
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := newLogWriter(rw)
	defer s.logRequest(w, r)

	if s.cors.preflight(w, r) {
		return
	}
	s.cors.headers(w, r)

	path := r.URL.EscapedPath()
	if s.dashboard != nil && (path == "/" || path == "/favicon.ico" || strings.HasPrefix(path, "/assets/")) {
		w.route = "dashboard"
		s.dashboard.ServeHTTP(w, r)
		return
	}
	switch path {
	case "/health":
		w.route = "health"
		s.health(w, r)
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

	first, rest := splitSegment(path)
	if pr := s.routes[first]; pr != nil {
		if s.cfg.PresetAuth {
			writeError(w, http.StatusUnauthorized, typeAuth,
				"this proxy requires its token: use /<token>/"+first+"/…")
			return
		}
		s.servePreset(w, r, pr, rest)
		return
	}

	second, after := splitSegment(rest)
	tokenAttempt := s.routes[second] != nil || generic.IsScheme(second)
	if !s.hasToken || first == "" {
		s.notFound(w, tokenAttempt && generic.IsScheme(second))
		return
	}
	if !s.tokenMatches(first) {
		if tokenAttempt {
			writeError(w, http.StatusUnauthorized, typeAuth, "wrong token")
			return
		}
		s.notFound(w, false)
		return
	}
	if pr := s.routes[second]; pr != nil {
		s.servePreset(w, r, pr, after)
		return
	}
	if generic.IsScheme(second) {
		s.serveGeneric(w, r, rest)
		return
	}
	if after == "" && (second == "stats" || second == "metrics") {
		w.route = second
		s.serveStats(w, r, second)
		return
	}
	s.notFound(w, false)
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

func (s *Server) servePreset(w *logWriter, r *http.Request, pr *presetRoute, rest string) {
	w.proxied(pr.p.Name, s.stats.Route(pr.p.Name))
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, "request body is too large")
		return
	}
	target, err := preset.Join(pr.target(), rest, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, typeBadRequest, err.Error())
		return
	}
	if wsproxy.IsUpgrade(r) {
		// Realtime APIs: /openai/v1/realtime, Gemini Live under /gemini/ws/….
		target.Scheme = wsScheme(target.Scheme)
		s.serveWebSocket(w, r, target, &pr.route)
		return
	}
	s.limitBody(w, r)
	pr.fwd.forward(w, r, target)
}

// serveGeneric proxies /<token>/<scheme>/<host>/<path>: any URL, for the
// token's holder, behind the address guard.
func (s *Server) serveGeneric(w *logWriter, r *http.Request, rest string) {
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
	if upgrade {
		s.serveWebSocket(w, r, t.URL(), s.generic)
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, typeTooLarge, "request body is too large")
		return
	}
	s.limitBody(w, r)
	s.generic.fwd.forward(w, r, t.URL())
}

// limitBody caps the request body at MaxBodyBytes (413 beyond) and counts
// the bytes read for the log line.
func (s *Server) limitBody(w *logWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	// The server's own ResponseWriter, so that it closes the connection
	// after an oversized body.
	r.Body = &countingBody{rc: http.MaxBytesReader(w.ResponseWriter, r.Body, s.cfg.MaxBodyBytes), n: &w.bytesIn}
}

func (s *Server) notFound(w http.ResponseWriter, generic bool) {
	if generic {
		writeError(w, http.StatusNotFound, typeNotFound,
			"generic mode is off: it needs an auth token (--auth-token or AUTH_TOKEN)")
		return
	}
	writeError(w, http.StatusNotFound, typeNotFound,
		"no route for this path: presets answer under /<preset>/…, e.g. /openai/v1/chat/completions; "+
			"GET / lists them all, as does the command `llmproxy presets`")
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, typeMethod, "use GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":   "ok",
		"version":  s.version,
		"uptime_s": int64(time.Since(s.started).Seconds()),
	})
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
