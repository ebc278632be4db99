package server

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// corsPolicy answers browsers. llmproxy answers preflights itself (the
// upstream never sees the OPTIONS) and stamps its own CORS headers on every
// response; the upstream's are dropped by the response policy.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

func newCORS(origins []string) corsPolicy {
	c := corsPolicy{origins: make(map[string]bool)}
	for _, o := range origins {
		if o == "*" {
			c.any = true
		}
		c.origins[strings.ToLower(o)] = true
	}
	return c
}

func (c corsPolicy) allowed(origin string) bool {
	return c.any || c.origins[strings.ToLower(origin)]
}

// headers sets Access-Control-Allow-Origin for an allowed origin.
func (c corsPolicy) headers(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !c.allowed(origin) {
		return
	}
	h := w.Header()
	if c.any {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	// Let browser code read rate-limit and request-id headers.
	h.Set("Access-Control-Expose-Headers", "*")
}

// preflight answers a CORS preflight and reports whether it did.
func (c corsPolicy) preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	origin := r.Header.Get("Origin")
	if !c.allowed(origin) {
		writeError(w, http.StatusForbidden, typeForbidden, "origin not allowed")
		return true
	}
	c.headers(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
	// Echo the requested headers: "*" would not cover Authorization.
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && validTokenList(req) {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "86400")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
	return true
}

func validTokenList(s string) bool {
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" && !httpguts.ValidHeaderFieldName(name) {
			return false
		}
	}
	return true
}
