package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/store"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// The secrets the tests plant; no page may ever show one of them.
const (
	testPassword   = "correct-horse-battery-staple-42"
	fileSecret     = "sk-file-provider-secret-0000aaaa"
	envSecret      = "sk-env-provider-secret-1111bbbb"
	storeSecret    = "sk-store-literal-secret-2222cccc"
	headerSecret   = "hdr-secret-value-3333dddd"
	fileClientKey  = "file-client-key-secret-4444eeee"
	testClientAddr = "192.0.2.10:5555"
)

var testSecretKey = func() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i*13 + 5)
	}
	return k
}()

// env is a panel over a real store, with a configuration built the way
// the lead's wiring does: the file's entries plus the store's, compiled by
// gateway.Compile.
type env struct {
	t     *testing.T
	h     *Handler
	st    *store.Store
	snap  atomic.Pointer[gateway.Snapshot]
	deps  gateway.Deps
	vars  map[string]string
	clock struct {
		sync.Mutex
		now time.Time
	}
	applies atomic.Int64
	// upstream answers the gateway's requests to providers (the Test page).
	upstream atomic.Pointer[func(*http.Request) (*http.Response, error)]
	seen     atomic.Pointer[string] // the host of the last upstream request
	cookie   string
	csrf     string
}

type envOptions struct {
	noSecretKey bool
	noGateway   bool
}

// fileConfig is the running "config file": a provider, a model and a
// client key of its own, all read-only in the panel.
func fileConfig() *config.Config {
	cfg := config.Default()
	cfg.Providers = map[string]config.Provider{
		"fileprov": {Kind: "openai", BaseURL: "https://file.example/v1", Keys: []string{fileSecret, "env:ENV_PROVIDER_KEY"}},
	}
	cfg.Models = map[string]config.Model{
		"file-model": {Targets: []config.Target{{Provider: "fileprov"}}},
	}
	cfg.ClientKeys = []config.ClientKey{{Name: "file-client", Key: fileClientKey}}
	return cfg
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, vars: map[string]string{"ENV_PROVIDER_KEY": envSecret, "STORE_ENV_KEY": "sk-store-env-secret-5555ffff"}}
	e.clock.now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	key := testSecretKey
	if o.noSecretKey {
		key = nil
	}
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		host := r.URL.Host
		e.seen.Store(&host)
		if f := e.upstream.Load(); f != nil {
			return (*f)(r)
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body: io.NopCloser(strings.NewReader("data: {\"choices\":[{\"delta\":{\"content\":\"OK\"}}]}\n\ndata: [DONE]\n\n")), Request: r}, nil
	})
	e.deps = gateway.Deps{
		Transport: func(name, mode string) http.RoundTripper { return rt },
		Guarded:   rt,
		Health:    gateway.NewHealth(),
		Getenv:    func(k string) string { return e.vars[k] },
	}
	if err := e.apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Password:     testPassword,
		Store:        st,
		Check:        e.check,
		Apply:        func(ctx context.Context) error { e.applies.Add(1); return e.apply(ctx) },
		DropRevoked:  e.dropRevoked,
		Snapshot:     e.snap.Load,
		SecretKeySet: !o.noSecretKey,
		Version:      "1.2.3-test",
		Logger:       slog.New(slog.DiscardHandler),
	}
	if !o.noGateway {
		opts.Gateway = http.HandlerFunc(e.gateway)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.now = e.now
	e.h = h
	return e
}

func (e *env) now() time.Time {
	e.clock.Lock()
	defer e.clock.Unlock()
	return e.clock.now
}

func (e *env) advance(d time.Duration) {
	e.clock.Lock()
	e.clock.now = e.clock.now.Add(d)
	e.clock.Unlock()
}

func (e *env) compile(entries store.Entries) (*gateway.Snapshot, error) {
	cfg := fileConfig()
	if err := entries.Apply(cfg); err != nil {
		return nil, err
	}
	return gateway.Compile(cfg, e.deps)
}

func (e *env) check(entries store.Entries) error {
	_, err := e.compile(entries)
	return err
}

func (e *env) apply(ctx context.Context) error {
	entries, err := e.st.Entries(ctx)
	if err != nil {
		return err
	}
	snap, err := e.compile(entries)
	if err != nil {
		return err
	}
	e.snap.Store(snap)
	return nil
}

// dropRevoked takes the store's keys that are no longer active out of the
// running snapshot, as the lead's wiring does when apply fails.
func (e *env) dropRevoked(ctx context.Context) error {
	entries, err := e.st.Entries(ctx)
	if err != nil {
		return err
	}
	active := map[string]bool{}
	for _, k := range entries.ClientKeys {
		if k.Active() {
			active[k.Digest] = true
		}
	}
	snap, _ := e.snap.Load().WithoutKeys(func(k *access.Key) bool { return k.Origin == "store" && !active[k.Digest()] })
	e.snap.Store(snap)
	return nil
}

// gateway stands in for the server's gateway route, on the real gateway
// package: the in-process caller, ModelPlan (which honours WithProvider)
// and the attempt loop.
func (e *env) gateway(w http.ResponseWriter, r *http.Request) {
	caller, ok := access.CallerFrom(r.Context())
	if !ok || caller.Kind != access.Operator {
		http.Error(w, `{"error":{"message":"no in-process caller"}}`, http.StatusUnauthorized)
		return
	}
	call, err := gateway.ParseCall(r.Method, r.URL.EscapedPath(), r.Header)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// llmproxy's own errors, as the server writes them (OpenAI's shape).
	fail := func(err error) {
		status, msg := http.StatusBadGateway, "upstream failed"
		var ge *gateway.Error
		if errors.As(err, &ge) {
			status, msg = ge.Status, ge.Message
		}
		body, _ := json.Marshal(map[string]any{"error": map[string]string{"type": "llmproxy", "message": msg}})
		w.Header().Set("X-Proxy-Error", "true")
		w.WriteHeader(status)
		w.Write(body)
	}
	plan, err := e.snap.Load().ModelPlan(r, call, caller, 1<<20)
	if err != nil {
		fail(err)
		return
	}
	resp, err := plan.RoundTrip(r)
	if err != nil {
		fail(err)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		panic(http.ErrAbortHandler)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// request is one request to the panel.
type request struct {
	method, path string
	form         url.Values
	header       http.Header
	noCookie     bool
	noCSRF       bool
	addr         string
	tls          bool
}

func (e *env) do(q request) *httptest.ResponseRecorder {
	e.t.Helper()
	if q.method == "" {
		q.method = http.MethodGet
		if q.form != nil {
			q.method = http.MethodPost
		}
	}
	var body io.Reader
	if q.form != nil {
		f := url.Values{}
		for k, v := range q.form {
			f[k] = v
		}
		if !q.noCSRF && f.Get("csrf") == "" && e.csrf != "" {
			f.Set("csrf", e.csrf)
		}
		body = strings.NewReader(f.Encode())
	}
	r := httptest.NewRequest(q.method, q.path, body)
	r.RemoteAddr = testClientAddr
	if q.addr != "" {
		r.RemoteAddr = q.addr
	}
	if q.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	for k, v := range q.header {
		r.Header[k] = v
	}
	if e.cookie != "" && !q.noCookie {
		r.AddCookie(&http.Cookie{Name: CookieName, Value: e.cookie})
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs in and keeps the session's cookie and CSRF token.
func (e *env) login() {
	e.t.Helper()
	w := e.do(request{path: "/admin/login", form: url.Values{"password": {testPassword}}, noCSRF: true})
	if w.Code != http.StatusSeeOther {
		e.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	e.cookie = ""
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			e.cookie = c.Value
		}
	}
	if e.cookie == "" {
		e.t.Fatal("login set no session cookie")
	}
	page := e.do(request{path: "/admin/providers"})
	m := csrfField.FindStringSubmatch(page.Body.String())
	if m == nil {
		e.t.Fatalf("no CSRF token on the providers page: %d", page.Code)
	}
	e.csrf = m[1]
}

// entries reads the store.
func (e *env) entries() store.Entries {
	e.t.Helper()
	x, err := e.st.Entries(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

func (e *env) revision() int64 {
	e.t.Helper()
	rev, err := e.st.Revision(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return rev
}

func (e *env) auditLog() []store.AuditEntry {
	e.t.Helper()
	a, err := e.st.Audit(context.Background(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// mustChange edits the store directly (set-up), then applies.
func (e *env) mustChange(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.st.Change(context.Background(), "test", fn); err != nil {
		e.t.Fatal(err)
	}
	if err := e.apply(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}
