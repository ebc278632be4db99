// Package dashboard serves the page at /: what llmproxy is and protects,
// every preset with a copy button for its base URL on this server, live
// numbers from /stats (with the gateway's providers, key health, tokens
// and cost), usage examples, and which features are on. Every
// file is embedded; the page asks no other host for anything (a strict
// Content-Security-Policy allows only 'self'), so no third party learns who
// uses the proxy.
package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets index.html
var files embed.FS

// Info is what the page shows about this server. It holds no secret: no
// token, key or egress proxy address.
type Info struct {
	Version  string   `json:"version"`
	Presets  []Preset `json:"presets"`
	Features Features `json:"features"`
}

// Preset is one row of the preset table.
type Preset struct {
	Name       string   `json:"name"`
	Aliases    []string `json:"aliases,omitempty"`
	Title      string   `json:"title"`
	Hosts      []string `json:"hosts"`       // upstream hosts
	ClientPath string   `json:"client_path"` // appended for an SDK's base URL
	Key        string   `json:"key"`         // how the provider takes its key
	Transport  string   `json:"transport"`
	Resume     bool     `json:"resume,omitempty"`
	ServerKeys bool     `json:"server_keys,omitempty"` // the preset holds the provider's key
}

// Features says which features are on.
type Features struct {
	Token              bool   `json:"token"`       // an auth token is set
	PresetAuth         bool   `json:"preset_auth"` // presets need the token
	Generic            bool   `json:"generic"`     // generic mode (needs the token)
	Transport          string `json:"transport"`
	AggressiveFallback bool   `json:"aggressive_fallback"`
	GeminiResume       bool   `json:"gemini_resume"`
	AllowPrivate       bool   `json:"allow_private"`
	EgressProxy        bool   `json:"egress_proxy"` // whether one is set, never its address
	WebSocket          bool   `json:"websocket"`
	Gateway            bool   `json:"gateway"` // /v1/… routes by model
	Admin              bool   `json:"admin"`   // the panel at /admin is on
}

// CSP allows the page nothing but its own origin.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page and its assets.
type Handler struct {
	page     *template.Template
	infoJSON template.JS
	admin    bool
	assets   http.Handler
}

// New returns the dashboard for info.
func New(info Info) (*Handler, error) {
	page, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(files, "assets")
	return &Handler{
		page:     page,
		infoJSON: template.JS(raw), // html/template escapes it for the JSON script block
		admin:    info.Features.Admin,
		assets:   http.StripPrefix("/assets/", http.FileServer(http.FS(sub))),
	}, nil
}

// ServeHTTP answers "/", "/assets/…" and "/favicon.ico".
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	switch p := r.URL.Path; {
	case p == "/":
		h.index(w, r)
	case p == "/favicon.ico":
		u := *r.URL
		u.Path = "/assets/favicon.svg"
		r2 := *r
		r2.URL = &u
		hdr.Set("Cache-Control", "public, max-age=86400")
		h.assets.ServeHTTP(w, &r2)
	case strings.HasPrefix(p, "/assets/") && path.Clean(p) == p:
		hdr.Set("Cache-Control", "no-cache") // revalidate: the binary may have changed
		h.assets.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

type page struct {
	Lang  string
	Info  template.JS
	Admin bool // the header links to /admin; nothing else of the panel is on this page
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := h.page.Execute(&b, page{Lang: Language(r.Header.Get("Accept-Language")), Info: h.infoJSON, Admin: h.admin}); err != nil {
		http.Error(w, "dashboard template failed", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(b.Len()))
	hdr.Add("Vary", "Accept-Language")
	w.Write(b.Bytes())
}

// Language picks the page language from Accept-Language: "zh" when Chinese
// is preferred over English, else "en".
func Language(acceptLanguage string) string {
	best, bestQ := "en", -1.0
	for _, item := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(item), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		tag = strings.ToLower(tag)
		var lang string
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			lang = "zh"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			lang = "en"
		default:
			continue
		}
		if q > bestQ && q > 0 { // q=0: not acceptable (RFC 9110 §12.4.2)
			best, bestQ = lang, q
		}
	}
	return best
}
