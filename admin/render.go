package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/dashboard"
)

// LangCookie keeps the language chosen with the switch.
const LangCookie = "llmproxy_admin_lang"

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{
	"login", "providers", "provider_form", "models", "model_form", "keys", "key_form", "key_created",
	"test", "usage", "audit", "notfound",
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"cost": formatCost,
	"num":  formatInt,
	"sum":  func(a, b int64) int64 { return a + b },
	// map builds the argument of a nested template from key, value pairs.
	"map": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what every page template gets.
type view struct {
	Lang     string // en or zh
	Page     string // nav item: providers, models, keys, test, usage, audit
	Title    string
	CSRF     string
	Version  string
	LoggedIn bool
	// LangURL is this page in the other language.
	LangURL string
	Flash   string
	Error   string
	Data    any
}

// T returns a message in the page's language, formatted with args.
func (v *view) T(key string, args ...any) string {
	return message(v.Lang, key, args...)
}

// OtherLang names the language the switch turns on.
func (v *view) OtherLang() string {
	if v.Lang == "zh" {
		return "English"
	}
	return "中文"
}

// HTMLLang is the document's language tag.
func (v *view) HTMLLang() string {
	if v.Lang == "zh" {
		return "zh-CN"
	}
	return "en"
}

// JSMessages are the strings the script shows, as JSON (encoding/json
// escapes <, > and &, so it cannot end the script element).
func (v *view) JSMessages() template.JS {
	out := make(map[string]string, len(jsMessages))
	for _, k := range jsMessages {
		out[k] = v.T(k)
	}
	b, _ := json.Marshal(out)
	return template.JS(b)
}

// language picks the page language: the switch's cookie, else
// Accept-Language as the dashboard reads it.
func language(r *http.Request) string {
	if c, err := r.Cookie(LangCookie); err == nil && (c.Value == "en" || c.Value == "zh") {
		return c.Value
	}
	return dashboard.Language(r.Header.Get("Accept-Language"))
}

// switchLanguage handles ?lang=en|zh on a GET: remembers the choice and
// sends the browser back to the same page without the parameter. It
// reports whether it answered.
func switchLanguage(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	lang := q.Get("lang")
	if r.Method != http.MethodGet || (lang != "en" && lang != "zh") {
		return false
	}
	http.SetCookie(w, &http.Cookie{
		Name: LangCookie, Value: lang, Path: "/admin", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r),
	})
	q.Del("lang")
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Add("Vary", "Cookie")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return true
}

// view prepares the common part of a page.
func (h *Handler) view(w http.ResponseWriter, r *http.Request, page, titleKey string) *view {
	v := &view{Lang: language(r), Page: page, Version: h.opts.Version}
	if titleKey != "" {
		v.Title = v.T(titleKey)
	}
	other := "zh"
	if v.Lang == "zh" {
		other = "en"
	}
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		q.Set("lang", other)
		v.LangURL = (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
	} else {
		// A form's answer: the switch goes to the page the form is on.
		v.LangURL = (&url.URL{Path: listPage(r.URL.Path), RawQuery: "lang=" + other}).String()
	}
	if s := sessionOf(r); s != nil {
		v.LoggedIn, v.CSRF = true, s.csrf
		v.Flash = h.takeFlash(r)
	}
	return v
}

// listPage is the page a form's POST path belongs to.
func listPage(p string) string {
	for _, prefix := range []string{"/admin/providers", "/admin/models", "/admin/keys", "/admin/test"} {
		if strings.HasPrefix(p, prefix) {
			return prefix
		}
	}
	return "/admin/providers"
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		h.log.Error("admin template failed", "page", name, "err", err)
		http.Error(w, "admin page failed to render", http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(b.Len()))
	hdr.Add("Vary", "Accept-Language")
	hdr.Add("Vary", "Cookie")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}

// redirect ends a successful change: Post/Redirect/Get, so a reload never
// posts twice.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	h.setFlash(r, flash)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// formatCost shows nanos of a currency as an amount: 1234500000 usd →
// "1.2345 USD".
func formatCost(nanos int64, currency string) string {
	if currency == "" {
		return "–"
	}
	s := strconv.FormatFloat(float64(nanos)/1e9, 'f', 4, 64)
	return s + " " + strings.ToUpper(currency)
}

// formatInt groups digits in threes: 1234567 → "1,234,567".
func formatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
