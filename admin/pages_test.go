package admin

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/store"
)

// allPages are the panel's GET pages (edit forms are added once entries
// exist).
var allPages = []string{
	"/admin/login", "/admin/providers", "/admin/providers/new", "/admin/models", "/admin/models/new",
	"/admin/keys", "/admin/keys/new", "/admin/test", "/admin/usage", "/admin/usage?days=7", "/admin/audit",
	"/admin/api/health", "/admin/no-such-page",
}

// populate fills the store with one of everything, the way a user of the
// panel would.
func populate(t *testing.T, e *env) {
	t.Helper()
	for _, f := range []url.Values{
		formValues("name", "acme", "base_url", "https://api.acme.example/v1", "headers", "Authorization-Extra: "+headerSecret,
			"newkey_name", "lit", "newkey_value", storeSecret, "newkey_name", "", "newkey_value", "env:STORE_ENV_KEY"),
	} {
		if w := e.do(request{path: "/admin/providers/save", form: f}); w.Code != http.StatusSeeOther {
			t.Fatalf("provider: %d %s", w.Code, w.Body)
		}
	}
	if w := e.do(request{path: "/admin/models/save", form: formValues("name", "acme-*", "target_provider", "acme",
		"currency", "usd", "input_per_1m", "1", "output_per_1m", "2")}); w.Code != http.StatusSeeOther {
		t.Fatalf("model: %d %s", w.Code, w.Body)
	}
	if w := e.do(request{path: "/admin/keys/save", form: formValues("name", "alice", "budget", "5/day")}); w.Code != http.StatusSeeOther {
		t.Fatalf("key: %d %s", w.Code, w.Body)
	}
	e.do(request{path: "/admin/keys/created"}) // the secret's one showing
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	if err := e.st.AddUsage(context.Background(), []store.UsageRow{
		{Day: day, Client: "alice", Model: "acme-small", Provider: "acme", Key: "lit", Currency: "usd", Requests: 7, Input: 700, Output: 70, CostNanos: 1_500_000_000},
		{Day: day.AddDate(0, 0, 1), Client: "file-client", Model: "file-model", Provider: "fileprov", Key: "key-1", Requests: 3, Input: 30, Output: 3},
	}); err != nil {
		t.Fatal(err)
	}
}

// everyPage is every GET page once the store is populated.
func everyPage(e *env) []string {
	pages := append([]string{}, allPages...)
	for _, k := range e.entries().ClientKeys {
		pages = append(pages, "/admin/keys/edit?id="+itoa64(k.ID))
	}
	return append(pages, "/admin/providers/edit?name=acme", "/admin/models/edit?name=acme-%2A")
}

func TestNoSecretOnAnyPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	populate(t, e)
	// A provider key that failed shows its reason, never the key.
	for _, p := range e.snap.Load().Providers() {
		if p.Name == "acme" {
			p.Keys()[0].Health().Disable("401 from the provider")
		}
	}
	secrets := []string{testPassword, fileSecret, envSecret, storeSecret, headerSecret, fileClientKey, "sk-store-env-secret-5555ffff",
		string(testSecretKey)}
	// The last eight characters would give half a key away; four are
	// allowed (the privacy reference's mask).
	var parts []string
	for _, s := range secrets {
		parts = append(parts, s[len(s)-8:])
	}
	pages := everyPage(e)
	for _, lang := range []string{"en", "zh"} {
		for _, p := range pages {
			w := e.do(request{path: p, header: http.Header{"Accept-Language": {lang}}})
			body := w.Body.String() + strings.Join(w.Header().Values("Set-Cookie"), " ")
			if w.Code >= 500 {
				t.Errorf("%s: %d", p, w.Code)
			}
			for i, s := range secrets {
				if strings.Contains(body, s) || strings.Contains(body, parts[i]) {
					t.Errorf("%s (%s) shows secret %d", p, lang, i)
				}
			}
		}
	}
	// The last four of a stored literal are shown, so the user can tell
	// keys apart.
	if body := e.do(request{path: "/admin/providers"}).Body.String(); !strings.Contains(body, "…"+storeSecret[len(storeSecret)-4:]) {
		t.Error("the providers page does not show the key's last four")
	}
}

func TestEveryPageInBothLanguages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	populate(t, e)
	for _, tc := range []struct {
		accept, htmlLang, nav string
	}{
		{"en-US,en;q=0.9", `<html lang="en">`, ">Providers<"},
		{"zh-CN,zh;q=0.9,en;q=0.5", `<html lang="zh-CN">`, ">服务商<"},
	} {
		for _, p := range everyPage(e) {
			if p == "/admin/api/health" || p == "/admin/login" {
				continue
			}
			w := e.do(request{path: p, header: http.Header{"Accept-Language": {tc.accept}}})
			body := w.Body.String()
			if !strings.Contains(body, tc.htmlLang) {
				t.Errorf("%s (%s): no %s", p, tc.accept, tc.htmlLang)
			}
			if p != "/admin/login" && !strings.Contains(body, tc.nav) {
				t.Errorf("%s (%s): navigation not translated", p, tc.accept)
			}
			// A message key that has no text would show as itself.
			if m := regexp.MustCompile(`>\s*((?:err|help|f|flash|key|test|usage|nav)_[a-z0-9_]+)\s*<`).FindStringSubmatch(body); m != nil {
				t.Errorf("%s (%s): untranslated key %s", p, tc.accept, m[1])
			}
		}
	}
	// Logged out, the login page too.
	e.cookie = ""
	if body := e.do(request{path: "/admin/login", header: http.Header{"Accept-Language": {"zh"}}}).Body.String(); !strings.Contains(body, "登录管理面板") {
		t.Error("the login page is not in Chinese")
	}
}

// Every message the templates and the code ask for exists, in both
// languages, with the same arguments.
func TestMessagesComplete(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	tmplKey := regexp.MustCompile(`\.T "([a-z0-9_]+)"`)
	goKey := regexp.MustCompile(`(?:\.T\(|h\.view\([^()]*)"([a-z0-9_]+)"[,)]`)
	err := fs.WalkDir(files, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(files, path)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(".")
	for _, f := range entries {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f.Name())
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	for _, k := range jsMessages {
		used[k] = true
	}
	for _, prefix := range []string{"state_", "breaker_", "status_", "test_error_"} {
		for k := range messages {
			if strings.HasPrefix(k, prefix) {
				used[k] = true
			}
		}
	}
	if len(used) < 100 {
		t.Fatalf("only %d message keys found: the scan is broken", len(used))
	}
	verbs := regexp.MustCompile(`%(\[\d\])?v`)
	for k := range used {
		m, ok := messages[k]
		if !ok {
			t.Errorf("message %q is used but not defined", k)
			continue
		}
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language", k)
		}
		if a, b := len(verbs.FindAllString(m[0], -1)), len(verbs.FindAllString(m[1], -1)); a != b {
			t.Errorf("message %q: %d arguments in English, %d in Chinese", k, a, b)
		}
	}
	for k := range messages {
		if !used[k] {
			t.Errorf("message %q is defined but never used", k)
		}
	}
}

func TestReEnableKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	var prov *gateway.Provider
	for _, p := range e.snap.Load().Providers() {
		if p.Name == "fileprov" {
			prov = p
		}
	}
	prov.Keys()[1].Health().Disable("the provider answered 401")
	prov.Keys()[0].Health().RateLimited(e.now(), time.Hour)
	page := e.do(request{path: "/admin/providers"}).Body.String()
	row := regexp.MustCompile(`(?s)<tr data-key-of="fileprov" data-key-index="1".*?</tr>`).FindString(page)
	if !strings.Contains(row, "state-disabled") || !strings.Contains(row, "the provider answered 401") ||
		!strings.Contains(row, `data-enable-key="fileprov/1"`) || strings.Contains(row, " hidden>") {
		t.Fatalf("the disabled key's row: %s", row)
	}
	health := e.do(request{path: "/admin/api/health"})
	var report struct {
		Providers []gateway.ProviderHealth `json:"providers"`
	}
	if err := json.Unmarshal(health.Body.Bytes(), &report); err != nil || health.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("health JSON: %v", err)
	}
	var states []string
	for _, p := range report.Providers {
		if p.Name == "fileprov" {
			for _, k := range p.Keys {
				states = append(states, k.State)
			}
		}
	}
	if strings.Join(states, ",") != "cooling,disabled" {
		t.Errorf("health states %v", states)
	}

	// A stale form (the key's name changed) is refused.
	if w := e.do(request{path: "/admin/providers/enable-key", form: formValues("provider", "fileprov", "index", "1", "key", "key-1")}); w.Code != http.StatusNotFound {
		t.Errorf("stale enable: %d", w.Code)
	}
	w := e.do(request{path: "/admin/providers/enable-key", form: formValues("provider", "fileprov", "index", "1", "key", "ENV_PROVIDER_KEY")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("enable: %d %s", w.Code, w.Body)
	}
	if st, _, _ := prov.Keys()[1].Health().State(e.now()); st != gateway.KeyOK {
		t.Errorf("state after enable: %s", st)
	}
	if st, _, _ := prov.Keys()[0].Health().State(e.now()); st != gateway.KeyCooling {
		t.Errorf("the other key changed too: %s", st)
	}
	if a := e.auditLog(); len(a) != 1 || a[0].Action != "provider.key.enable" || a[0].Target != "fileprov/ENV_PROVIDER_KEY" {
		t.Errorf("audit %+v", a)
	}
}

func TestTestPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	e.mustChange(func(tx *store.Tx) error {
		if err := tx.PutProvider(store.Provider{Name: "acme", BaseURL: "https://api.acme.example/v1", Keys: []store.ProviderKey{{Secret: storeSecret}}}); err != nil {
			return err
		}
		return tx.PutModel(store.Model{Name: "acme-chat", Targets: []config.Target{{Provider: "acme", Model: "acme-chat-v2"}}})
	})
	type upstream func(*http.Request) (*http.Response, error)
	answer := func(status int, body string) upstream {
		return func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
	}
	for _, tc := range []struct {
		name     string
		form     url.Values
		upstream upstream
		host     string // the provider that must have been asked
		status   string
		err      string // a part of the error shown; "" for none
		changes  string // a part of the key changes shown
	}{
		{"a model route", formValues("kind", "model", "model", "acme-chat"), nil, "api.acme.example", "200 OK", "", ""},
		{"a provider", formValues("kind", "provider", "provider", "fileprov"), nil, "file.example", "200 OK", "", ""},
		{"a provider, with the model a route gives it", formValues("kind", "provider", "provider", "acme"), nil, "api.acme.example", "200 OK", "", ""},
		{"the provider refuses the request, quoting the key", formValues("kind", "provider", "provider", "acme", "provider_model", "acme-chat"),
			answer(400, `{"error":{"type":"invalid_request_error","message":"Bad request for key `+storeSecret+`"}}`),
			"api.acme.example", "400 Bad Request", "invalid_request_error: Bad request for key [REDACTED]", ""},
		{"the provider refuses the key", formValues("kind", "model", "model", "acme-chat"),
			answer(401, `{"error":{"message":"Incorrect API key provided"}}`),
			"api.acme.example", "502 Bad Gateway", "refused llmproxy's key", "disabled"},
		{"an error event in a stream", formValues("kind", "model", "model", "acme-chat"),
			answer(200, "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"), "api.acme.example", "200 OK", "overloaded", ""},
		{"no such model", formValues("kind", "model", "model", "nobody-serves-this"), nil, "", "404 Not Found", "nobody-serves-this", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.upstream != nil {
				f := (func(*http.Request) (*http.Response, error))(tc.upstream)
				e.upstream.Store(&f)
			} else {
				e.upstream.Store(nil)
			}
			e.seen.Store(new(string))
			e.deps.Health.EnableAll()
			w := e.do(request{path: "/admin/test", form: tc.form})
			body := w.Body.String()
			if w.Code != http.StatusOK || !strings.Contains(body, `id="test-result"`) {
				t.Fatalf("status %d, no result: %s", w.Code, body)
			}
			if got := *e.seen.Load(); got != tc.host {
				t.Errorf("asked %q, want %q", got, tc.host)
			}
			status := regexp.MustCompile(`id="test-status"[^>]*>([^<]*)<`).FindStringSubmatch(body)
			if status == nil || status[1] != tc.status {
				t.Errorf("status shown %v, want %q", status, tc.status)
			}
			if !strings.Contains(body, `id="test-total"`) || !strings.Contains(body, `id="test-ttft"`) {
				t.Error("no timings")
			}
			shown := regexp.MustCompile(`id="test-error"[^>]*>([^<]*)<`).FindStringSubmatch(body)
			switch {
			case tc.err == "" && shown != nil:
				t.Errorf("an error was shown: %s", shown[1])
			case tc.err != "" && (shown == nil || !strings.Contains(html.UnescapeString(shown[1]), tc.err)):
				t.Errorf("error shown %v, want %q", shown, tc.err)
			}
			changes := regexp.MustCompile(`(?s)id="test-key-changes">(.*?)</dd>`).FindStringSubmatch(body)
			switch {
			case tc.changes == "" && changes != nil:
				t.Errorf("key changes shown: %s", changes[1])
			case tc.changes != "" && (changes == nil || !strings.Contains(changes[1], tc.changes)):
				t.Errorf("key changes %v, want %q", changes, tc.changes)
			}
			for _, s := range []string{storeSecret, fileSecret, envSecret} {
				if strings.Contains(body, s) {
					t.Fatal("the test result shows a provider key")
				}
			}
		})
	}
	t.Run("a provider test needs a model", func(t *testing.T) {
		e.mustChange(func(tx *store.Tx) error {
			return tx.PutProvider(store.Provider{Name: "bare", BaseURL: "https://bare.example/v1", Keys: []store.ProviderKey{{Env: "STORE_ENV_KEY"}}})
		})
		w := e.do(request{path: "/admin/test", form: formValues("kind", "provider", "provider", "bare")})
		if w.Code != http.StatusUnprocessableEntity || fieldErrorOf(w.Body.String(), "provider_model") == "" {
			t.Errorf("status %d, no message next to the model field", w.Code)
		}
	})
	t.Run("a stream cut off", func(t *testing.T) {
		e.h.opts.Gateway = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "data: {}\n\n")
			panic(http.ErrAbortHandler)
		})
		defer func() { e.h.opts.Gateway = http.HandlerFunc(e.gateway) }()
		body := e.do(request{path: "/admin/test", form: formValues("kind", "model", "model", "acme-chat")}).Body.String()
		if !strings.Contains(body, "cut off") {
			t.Error("an aborted stream is not reported")
		}
	})
}

func TestTestPageWithoutGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noGateway: true})
	e.login()
	if body := e.do(request{path: "/admin/test"}).Body.String(); !strings.Contains(body, `id="test-unavailable"`) {
		t.Error("the page does not say testing is unavailable")
	}
	if w := e.do(request{path: "/admin/test", form: formValues("kind", "model", "model", "file-model")}); w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d", w.Code)
	}
}

func TestUsagePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	populate(t, e)
	// Outside the 7-day window.
	if err := e.st.AddUsage(context.Background(), []store.UsageRow{
		{Day: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Client: "old-client", Model: "m", Provider: "acme", Requests: 100},
	}); err != nil {
		t.Fatal(err)
	}
	body := e.do(request{path: "/admin/usage?days=7"}).Body.String()
	table := func(id string) string {
		return regexp.MustCompile(`(?s)<table class="list usage-table" id="` + id + `">.*?</table>`).FindString(body)
	}
	if k := table("usage-by-key"); !strings.Contains(k, `data-name="alice"`) || !strings.Contains(k, "1.5000 USD") || strings.Contains(k, "old-client") {
		t.Errorf("by key: %s", k)
	}
	if m := table("usage-by-model"); !strings.Contains(m, `data-name="acme-small"`) || !strings.Contains(m, `data-name="file-model"`) {
		t.Errorf("by model: %s", m)
	}
	if p := table("usage-by-provider"); !strings.Contains(p, `data-name="fileprov"`) {
		t.Errorf("by provider: %s", p)
	}
	if !strings.Contains(body, `id="usage-total-requests">10<`) {
		t.Error("totals wrong")
	}
	raw := regexp.MustCompile(`(?s)<script id="usage-data" type="application/json">(.*?)</script>`).FindStringSubmatch(body)
	if raw == nil {
		t.Fatal("no chart data")
	}
	var chart struct {
		Days []string   `json:"days"`
		Rows []chartRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(raw[1]), &chart); err != nil {
		t.Fatalf("chart data: %v", err)
	}
	if len(chart.Days) != 7 || chart.Days[6] != "2026-11-22" || len(chart.Rows) != 2 || chart.Rows[0].Cost != 1_500_000_000 {
		t.Errorf("chart data %+v", chart)
	}
	// 30 days takes the old row in.
	if body := e.do(request{path: "/admin/usage"}).Body.String(); !strings.Contains(body, `data-name="old-client"`) {
		t.Error("the 30-day view misses an older row")
	}
	// Usage per key on the keys page.
	keys := e.do(request{path: "/admin/keys"}).Body.String()
	row := regexp.MustCompile(`(?s)<tr data-client-key="alice".*?</tr>`).FindString(keys)
	if !strings.Contains(row, "7 requests") {
		t.Errorf("the keys page does not show alice's usage: %s", row)
	}
}

// The keys page finds a key's usage by its id: a renamed key keeps what it
// used, a revoked key shows its own, and a new key given a revoked key's
// name starts with none. Rows written before ids were kept count for the
// active key of their name.
func TestKeysPageUsageFollowsTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	for _, name := range []string{"first", "other"} {
		if w := e.do(request{path: "/admin/keys/save", form: formValues("name", name)}); w.Code != http.StatusSeeOther {
			t.Fatalf("create %s: %d", name, w.Code)
		}
	}
	digest := map[string]string{}
	ids := map[string]int64{}
	for _, k := range e.entries().ClientKeys {
		digest[k.Name], ids[k.Name] = k.Digest, k.ID
	}
	day := utcDay(e.now())
	if err := e.st.AddUsage(context.Background(), []store.UsageRow{
		{Day: day, ClientID: access.KeyID(digest["first"]), Client: "first", Model: "m", Requests: 3},
		{Day: day, ClientID: access.KeyID(digest["other"]), Client: "other", Model: "m", Requests: 5},
		{Day: day, Client: "other", Model: "m", Requests: 100}, // written before ids were kept
	}); err != nil {
		t.Fatal(err)
	}
	// "first" is renamed, then "other" revoked and its name given to a new key.
	if w := e.do(request{path: "/admin/keys/save", form: formValues("id", strconv.FormatInt(ids["first"], 10), "name", "renamed")}); w.Code != http.StatusSeeOther {
		t.Fatalf("rename: %d", w.Code)
	}
	if w := e.do(request{path: "/admin/keys/revoke", form: formValues("id", strconv.FormatInt(ids["other"], 10))}); w.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", w.Code)
	}
	if w := e.do(request{path: "/admin/keys/save", form: formValues("name", "other")}); w.Code != http.StatusSeeOther {
		t.Fatalf("create the new other: %d", w.Code)
	}
	keys := e.do(request{path: "/admin/keys"}).Body.String()
	requests := func(name, status string) string {
		t.Helper()
		for _, row := range regexp.MustCompile(`(?s)<tr data-client-key="`+regexp.QuoteMeta(name)+`".*?</tr>`).FindAllString(keys, -1) {
			if strings.Contains(row, "state-"+status) {
				m := regexp.MustCompile(`class="usage-requests">([^<]*)<`).FindStringSubmatch(row)
				if m == nil {
					t.Fatalf("no usage cell for %s (%s): %s", name, status, row)
				}
				return m[1]
			}
		}
		t.Fatalf("no %s row for %s", status, name)
		return ""
	}
	for _, c := range []struct{ name, status, want string }{
		{"renamed", "active", "3 requests"},
		{"other", "revoked", "5 requests"},
		{"other", "active", "100 requests"},
	} {
		if got := requests(c.name, c.status); got != c.want {
			t.Errorf("%s (%s): %q, want %q", c.name, c.status, got, c.want)
		}
	}
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	populate(t, e)
	body := e.do(request{path: "/admin/audit"}).Body.String()
	rows := regexp.MustCompile(`<tr class="audit-row" data-action="([a-z_.]+)">`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1])
	}
	if strings.Join(got, " ") != "client_key.create model.create provider.create" {
		t.Errorf("audit rows %v", got)
	}
	if !strings.Contains(body, "admin 192.0.2.10") {
		t.Error("the audit page does not say who")
	}
}

// Entries made outside the panel's reach are shown, marked, not editable.
func TestReadOnlyEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	for _, tc := range []struct{ page, row, edit string }{
		{"/admin/providers", `data-provider="fileprov"`, `data-edit-provider="fileprov"`},
		{"/admin/models", `data-model="file-model"`, `data-edit-model="file-model"`},
		{"/admin/keys", `data-client-key="file-client"`, `data-edit-key="file-client"`},
	} {
		body := e.do(request{path: tc.page}).Body.String()
		if !strings.Contains(body, tc.row) || strings.Contains(body, tc.edit) || !strings.Contains(body, "config file") ||
			!strings.Contains(body, "read-only") {
			t.Errorf("%s: the file's entry is not shown read-only", tc.page)
		}
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{"/admin/assets/admin.js", "text/javascript", http.StatusOK},
		{"/admin/assets/admin.css", "text/css", http.StatusOK},
		{"/admin/assets/favicon.svg", "image/svg+xml", http.StatusOK},
		{"/admin/assets/../templates/layout.html", "", http.StatusNotFound},
		{"/admin/assets/", "", http.StatusNotFound},
	} {
		w := e.do(request{path: tc.path})
		if w.Code != tc.status || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: %d %q", tc.path, w.Code, w.Header().Get("Content-Type"))
		}
	}
	// No inline script or style anywhere, and no other host named.
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(files, path)
		s := string(b)
		if strings.HasSuffix(path, ".html") {
			for _, bad := range []string{" style=", "<style", " onclick=", " onsubmit=", " onchange=", "javascript:"} {
				if strings.Contains(s, bad) {
					t.Errorf("%s holds %q", path, bad)
				}
			}
			for _, m := range regexp.MustCompile(`<script([^>]*)>`).FindAllStringSubmatch(s, -1) {
				if !strings.Contains(m[1], `src="/admin/assets/`) && !strings.Contains(m[1], `type="application/json"`) {
					t.Errorf("%s: inline script %s", path, m[0])
				}
			}
		}
		for _, m := range regexp.MustCompile(`(?:src|href)=["'](?:https?:)?//`).FindAllString(s, -1) {
			t.Errorf("%s refers to another host: %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
