// Package admin serves the admin panel under /admin: a password login with
// server-side sessions, and pages to manage providers, model routes and
// client keys kept in the store, to test a route through the proxy's own
// handler, and to read usage and the audit log. Entries from the config file
// and the seeds' variables are shown read-only; every change is checked
// against the whole configuration, saved in one store transaction with its
// audit entry, and applied to running traffic at once.
//
// Pages are rendered by html/template (auto-escaped); the few live parts
// (key health, the usage chart, copy buttons) are in one embedded script.
// The Content-Security-Policy allows 'self' only: no inline script or
// style, no request to another host. No page ever holds a provider secret:
// keys are shown by name and last four characters, and a client key's
// secret is shown exactly once, right after it was created.
//
// Element ids and data attributes the browser tests rely on (keep them
// stable):
//
//	every page    #lang-switch (a link), #theme-switch, #logout (button of
//	              #logout-form), nav links #nav-providers, #nav-models,
//	              #nav-keys, #nav-test, #nav-usage, #nav-audit; #flash (a
//	              message after a change), #page-error (a refused change)
//	login         #login-form, #login-password, #login-submit, #login-error
//	providers     #provider-new, #health-status (the live poll's note);
//	              section[data-provider=NAME] per provider (class read-only
//	              for entries not from the store), its key rows
//	              tr[data-key-of=NAME][data-key-index=N][data-key-name=KEY]
//	              with .key-state (class state-ok|cooling|disabled),
//	              .key-until, .key-reason, .key-requests, .key-failures;
//	              dd.breaker[data-provider=NAME] with .breaker-state;
//	              button[data-enable-key="NAME/N"] (its form is hidden
//	              while the key is ok), a[data-edit-provider=NAME],
//	              button[data-delete-provider=NAME]
//	provider form #provider-form: #provider-name, #provider-kind,
//	              #provider-base-url, #provider-preset, #provider-weight,
//	              #provider-models, #provider-headers, #provider-transport,
//	              #provider-responses, #provider-api-version, existing keys
//	              #keyname-ID and #removekey-ID, new keys #newkey-name-N and
//	              #newkey-value-N (N from 0), #provider-add-key,
//	              #provider-save
//	models        #model-new; table #models, rows tr[data-model=NAME];
//	              a[data-edit-model=NAME], button[data-delete-model=NAME]
//	model form    #model-form: #model-name, #model-strategy, targets
//	              #target-provider-N, #target-model-N, #target-weight-N,
//	              #model-add-target, #model-display-name, #model-description,
//	              #model-context-window, #model-max-input, #model-max-output,
//	              #model-currency, #model-price-input, #model-price-cached,
//	              #model-price-output, #model-flags, #model-metadata,
//	              #model-save
//	client keys   #key-new; table #client-keys, rows
//	              tr[data-client-key=NAME][data-status=active|revoked|expired]
//	              with .key-status and .usage-requests;
//	              a[data-edit-key=NAME], button[data-revoke-key=NAME] (its
//	              form asks confirm() first)
//	key form      #key-form: #key-name, #key-models, #key-presets, #key-rpm,
//	              #key-tpm, #key-max-parallel, #key-budget, #key-expires,
//	              #key-save
//	key created   #key-secret (the secret, once), #key-copy (sets
//	              body[data-copied=yes]), #key-done
//	test          #test-model-form: #test-model, #test-model-submit;
//	              #test-provider-form: #test-provider, #test-provider-model,
//	              #test-provider-submit; #test-result[data-ok] with
//	              #test-status ("200 OK"), #test-ttft, #test-total,
//	              #test-error, #test-key-changes
//	usage         #usage-days, #usage-metric, #usage-group, #usage-chart
//	              (an svg once drawn, bars rect.bar, data-bars = their
//	              count), #usage-total-requests, tables #usage-by-key,
//	              #usage-by-model, #usage-by-provider (rows tr[data-name])
//	audit         #audit, rows tr.audit-row[data-action]
//
// A field whose value was refused shows its message in #err-FIELD (the
// field's form name: #err-name, #err-base_url, …; a provider's keys
// #err-newkey, a route's targets #err-targets, its prices #err-pricing)
// and carries aria-invalid="true"; a refusal that names no field of the
// form is in #form-error.
package admin

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/store"
)

//go:embed assets templates
var files embed.FS

// Options are what the panel needs from the running process.
type Options struct {
	// Password is ADMIN_PASSWORD. New refuses one shorter than 12
	// characters or a well-known placeholder.
	Password string
	// Store keeps the panel's entries, the usage and the audit log.
	// Required.
	Store *store.Store
	// Check compiles the running file configuration plus e, without
	// applying it: form validation. Its error is a *config.SettingError
	// naming the bad setting. Required.
	Check func(e store.Entries) error
	// Apply recompiles the running configuration from the file and the
	// store and swaps it in, as SIGHUP does; open streams are untouched.
	// Required.
	Apply func(ctx context.Context) error
	// DropRevoked takes every client key the store no longer has active
	// out of the running configuration, rebuilding nothing else: a
	// revocation takes effect when Apply cannot rebuild the rest (a
	// variable unset since start, say). Required.
	DropRevoked func(ctx context.Context) error
	// Snapshot returns the running configuration. Required.
	Snapshot func() *gateway.Snapshot
	// Gateway is the proxy's own handler, which the Test page sends a
	// one-token completion through, in process. Nil: the Test page says
	// it is unavailable.
	Gateway http.Handler
	// SecretKeySet says whether literal provider keys may be saved (the
	// store has LLMPROXY_SECRET_KEY); else only env:NAME references.
	SecretKeySet bool
	// Version is shown in the page header.
	Version string
	// Logger logs logins and refused changes (never a secret). Default:
	// slog.Default().
	Logger *slog.Logger
}

// CSP allows the panel nothing but its own origin. form-action 'self'
// (the dashboard has 'none') because the panel posts its forms to itself.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// MinPasswordLength is the shortest admin password New accepts.
const MinPasswordLength = config.MinAdminPassword

// Handler is the panel. It is safe for concurrent use.
type Handler struct {
	opts     Options
	log      *slog.Logger
	password [32]byte // SHA-256 of the password: compared in constant time
	pages    map[string]*template.Template
	assets   http.Handler
	handler  http.Handler // the routes behind CrossOriginProtection

	// now is the clock (tests move it to expire sessions and backoffs).
	now func() time.Time

	mu       sync.Mutex
	sessions map[[32]byte]*session // by SHA-256 of the cookie's id
	failures map[string]*failure   // login failures by client address
}

var _ http.Handler = (*Handler)(nil)

// New checks opts and returns the panel.
func New(opts Options) (*Handler, error) {
	if err := CheckPassword(opts.Password); err != nil {
		return nil, err
	}
	switch {
	case opts.Store == nil:
		return nil, errors.New("admin: Options.Store is required")
	case opts.Check == nil || opts.Apply == nil || opts.DropRevoked == nil || opts.Snapshot == nil:
		return nil, errors.New("admin: Options.Check, Apply, DropRevoked and Snapshot are required")
	}
	h := &Handler{
		opts:     opts,
		log:      opts.Logger,
		password: sha256.Sum256([]byte(opts.Password)),
		now:      time.Now,
		sessions: make(map[[32]byte]*session),
		failures: make(map[string]*failure),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(files, "assets")
	h.assets = http.StripPrefix("/admin/assets/", http.FileServer(http.FS(sub)))

	mux := http.NewServeMux()
	h.routes(mux)
	// Sec-Fetch-Site / Origin checks on every POST (Go 1.25's CSRF
	// protection), besides the per-session token each form carries.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	h.handler = cop.Handler(mux)
	return h, nil
}

// CheckPassword says why a password may not guard the panel, or nil:
// config.CheckAdminPassword, the check llmproxy check makes too.
func CheckPassword(p string) error {
	var se *config.SettingError
	if errors.As(config.CheckAdminPassword(p), &se) {
		return errors.New("admin password " + se.Msg)
	}
	return nil
}

// ServeHTTP answers /admin and everything under it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	// The proxy's CORS headers suit its API, not the panel: no other
	// origin may read a panel page.
	for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
		hdr.Del(name)
	}
	if p := r.URL.Path; strings.HasPrefix(p, "/admin/assets/") {
		if path.Clean(p) != p || r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.NotFound(w, r)
			return
		}
		hdr.Set("Cache-Control", "no-cache") // revalidate: the binary may have changed
		h.assets.ServeHTTP(w, r)
		return
	}
	hdr.Set("Cache-Control", "no-store") // pages hold the CSRF token, and once a secret
	if switchLanguage(w, r) {
		return
	}
	h.handler.ServeHTTP(w, r)
}

// routes lists the panel's pages. Every state change is a POST that needs
// a session and its CSRF token (h.auth); pages need a session.
func (h *Handler) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin", h.home)
	mux.HandleFunc("GET /admin/{$}", h.home)
	mux.HandleFunc("GET /admin/login", h.loginPage)
	mux.HandleFunc("POST /admin/login", h.login)
	mux.HandleFunc("POST /admin/logout", h.auth(h.logout))

	mux.HandleFunc("GET /admin/providers", h.auth(h.providers))
	mux.HandleFunc("GET /admin/providers/new", h.auth(h.providerNew))
	mux.HandleFunc("GET /admin/providers/edit", h.auth(h.providerEdit))
	mux.HandleFunc("POST /admin/providers/save", h.auth(h.providerSave))
	mux.HandleFunc("POST /admin/providers/delete", h.auth(h.providerDelete))
	mux.HandleFunc("POST /admin/providers/enable-key", h.auth(h.enableKey))
	mux.HandleFunc("GET /admin/api/health", h.authPassive(h.healthJSON))

	mux.HandleFunc("GET /admin/models", h.auth(h.models))
	mux.HandleFunc("GET /admin/models/new", h.auth(h.modelNew))
	mux.HandleFunc("GET /admin/models/edit", h.auth(h.modelEdit))
	mux.HandleFunc("POST /admin/models/save", h.auth(h.modelSave))
	mux.HandleFunc("POST /admin/models/delete", h.auth(h.modelDelete))

	mux.HandleFunc("GET /admin/keys", h.auth(h.clientKeys))
	mux.HandleFunc("GET /admin/keys/new", h.auth(h.clientKeyNew))
	mux.HandleFunc("GET /admin/keys/edit", h.auth(h.clientKeyEdit))
	mux.HandleFunc("POST /admin/keys/save", h.auth(h.clientKeySave))
	mux.HandleFunc("GET /admin/keys/created", h.auth(h.clientKeyCreated))
	mux.HandleFunc("POST /admin/keys/revoke", h.auth(h.clientKeyRevoke))

	mux.HandleFunc("GET /admin/test", h.auth(h.testPage))
	mux.HandleFunc("POST /admin/test", h.auth(h.testRun))

	mux.HandleFunc("GET /admin/usage", h.auth(h.usage))
	mux.HandleFunc("GET /admin/audit", h.auth(h.auditPage))

	mux.HandleFunc("/admin/", h.auth(h.notFound))
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if h.session(r) != nil {
		http.Redirect(w, r, "/admin/providers", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "", "")
	v.Error = v.T("not_found")
	h.render(w, r, http.StatusNotFound, "notfound", v)
}

// actor names who made a change in the audit log: the panel has one user,
// so the client address is what tells sessions apart.
func actor(r *http.Request) string {
	return "admin " + clientAddr(r)
}
