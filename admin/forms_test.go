package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/store"
)

// fieldError returns the message shown next to a field, or "".
func fieldErrorOf(body, field string) string {
	m := regexp.MustCompile(`<p class="field-error" id="err-` + regexp.QuoteMeta(field) + `">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func formValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// refusedCase is a form post the panel must refuse with a message next to
// a field, saving nothing.
type refusedCase struct {
	name  string
	form  url.Values
	field string // where the message is ("form" for #form-error)
	want  string // a part of the message
	// typed is a value the re-rendered form must still hold.
	typed string
}

func runRefused(t *testing.T, e *env, path string, cases []refusedCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, rev, audits, applies := e.entries(), e.revision(), len(e.auditLog()), e.applies.Load()
			w := e.do(request{path: path, form: tc.form})
			if w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", w.Code, w.Body)
			}
			body := w.Body.String()
			var msg string
			if tc.field == "form" {
				m := regexp.MustCompile(`id="form-error"[^>]*>([^<]*)<`).FindStringSubmatch(body)
				if m != nil {
					msg = m[1]
				}
			} else {
				msg = fieldErrorOf(body, tc.field)
				if !strings.Contains(body, `aria-describedby="err-`+tc.field+`"`) {
					t.Errorf("no field is marked invalid for %s", tc.field)
				}
			}
			if msg == "" || !strings.Contains(msg, tc.want) {
				t.Errorf("message at %s: %q, want it to contain %q", tc.field, msg, tc.want)
			}
			if tc.typed != "" && !strings.Contains(body, `value="`+tc.typed+`"`) && !strings.Contains(body, ">"+tc.typed+"<") {
				t.Errorf("the form lost what was typed (%q)", tc.typed)
			}
			// Nothing saved, nothing applied, nothing audited.
			if !reflect.DeepEqual(e.entries(), before) || e.revision() != rev {
				t.Error("the store changed")
			}
			if n := len(e.auditLog()); n != audits {
				t.Errorf("audit entries %d → %d", audits, n)
			}
			if e.applies.Load() != applies {
				t.Error("Apply was called")
			}
		})
	}
}

func TestProviderFormRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	// A model route of the store uses provider "used".
	e.mustChange(func(tx *store.Tx) error {
		if err := tx.PutProvider(store.Provider{Name: "used", BaseURL: "https://used.example/v1", Keys: []store.ProviderKey{{Env: "STORE_ENV_KEY"}}}); err != nil {
			return err
		}
		return tx.PutModel(store.Model{Name: "uses-it", Targets: []config.Target{{Provider: "used"}}})
	})
	ok := func(kv ...string) url.Values {
		v := formValues("name", "newprov", "base_url", "https://api.example.com/v1", "newkey_value", "env:STORE_ENV_KEY")
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	runRefused(t, e, "/admin/providers/save", []refusedCase{
		{name: "no name", form: ok("name", ""), field: "name", want: "Required"},
		{name: "a name the gateway refuses", form: ok("name", "bad name!"), field: "name", want: "Letters", typed: "bad name!"},
		{name: "the config file's name", form: ok("name", "fileprov"), field: "name", want: "config file"},
		{name: "a name the store has", form: ok("name", "used"), field: "name", want: "already taken"},
		{name: "base URL and preset", form: ok("preset", "openai"), field: "base_url", want: "base URL or a preset"},
		{name: "neither", form: ok("base_url", ""), field: "base_url", want: "base URL or a preset"},
		{name: "negative weight", form: ok("weight", "-1"), field: "weight", want: "whole number", typed: "-1"},
		{name: "unknown kind", form: ok("kind", "cohere"), field: "kind", want: "choices"},
		{name: "bad env name", form: ok("newkey_value", "env:1BAD"), field: "newkey", want: "variable name"},
		{name: "header without a colon", form: ok("headers", "X-Team 42"), field: "headers", want: "Name: value"},
		// Refused by the store:
		{name: "store: two keys of one name", form: formValues("name", "newprov", "base_url", "https://api.example.com/v1",
			"newkey_name", "dup", "newkey_value", "env:STORE_ENV_KEY", "newkey_name", "dup", "newkey_value", "env:ENV_PROVIDER_KEY"),
			field: "newkey", want: "another key of this provider is called"},
		// Refused by Options.Check (the gateway compiles the result):
		{name: "check: an unset variable", form: ok("newkey_value", "env:NOT_SET_ANYWHERE"), field: "newkey", want: "NOT_SET_ANYWHERE is not set"},
		{name: "check: a bad base URL", form: ok("base_url", "ftp://x.example"), field: "base_url", want: "", typed: "ftp://x.example"},
		{name: "check: an unknown preset", form: ok("base_url", "", "preset", "nosuchpreset"), field: "preset", want: "nosuchpreset"},
		{name: "check: a header llmproxy never sends", form: ok("headers", "X-Forwarded-For: 1.2.3.4"), field: "headers", want: "never sends"},
		{name: "check: responses on anthropic", form: ok("kind", "anthropic", "responses", "native"), field: "responses", want: "only openai"},
	})

	t.Run("delete a provider a route uses", func(t *testing.T) {
		before := e.entries()
		w := e.do(request{path: "/admin/providers/delete", form: formValues("name", "used")})
		if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), `id="page-error"`) ||
			!strings.Contains(w.Body.String(), "uses-it") {
			t.Fatalf("status %d: the refusal does not name the route", w.Code)
		}
		if !reflect.DeepEqual(e.entries(), before) {
			t.Error("the store changed")
		}
	})
	t.Run("edit a file provider", func(t *testing.T) {
		w := e.do(request{path: "/admin/providers/edit?name=fileprov"})
		if w.Code != http.StatusNotFound {
			t.Errorf("edit form for a config file entry: %d", w.Code)
		}
		w = e.do(request{path: "/admin/providers/save", form: formValues("original", "fileprov", "base_url", "https://x.example/v1")})
		if w.Code != http.StatusUnprocessableEntity {
			t.Errorf("saving over a config file entry: %d", w.Code)
		}
		w = e.do(request{path: "/admin/providers/delete", form: formValues("name", "fileprov")})
		if w.Code != http.StatusUnprocessableEntity {
			t.Errorf("deleting a config file entry: %d", w.Code)
		}
	})
}

// A literal key is never sent back: after a refusal the field is empty and
// says why.
func TestProviderFormNeverEchoesASecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	w := e.do(request{path: "/admin/providers/save", form: formValues(
		"name", "p", "base_url", "https://api.example.com/v1", "weight", "x", "newkey_name", "main", "newkey_value", storeSecret)})
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	if strings.Contains(body, storeSecret) || strings.Contains(body, storeSecret[len(storeSecret)-8:]) {
		t.Fatal("the re-rendered form holds the literal key")
	}
	if msg := fieldErrorOf(body, "newkey"); !strings.Contains(msg, "again") {
		t.Errorf("no request to type the key again: %q", msg)
	}
	if !strings.Contains(body, `value="main"`) {
		t.Error("the key's name was lost")
	}
}

func TestLiteralKeysNeedTheSecretKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noSecretKey: true})
	e.login()
	page := e.do(request{path: "/admin/providers/new"}).Body.String()
	if !strings.Contains(page, `id="literal-off"`) || !strings.Contains(page, "LLMPROXY_SECRET_KEY") {
		t.Error("the form does not say why literal keys cannot be saved")
	}
	runRefused(t, e, "/admin/providers/save", []refusedCase{
		{name: "literal", form: formValues("name", "p", "base_url", "https://api.example.com/v1", "newkey_value", storeSecret), field: "newkey", want: "LLMPROXY_SECRET_KEY"},
	})
	// env:NAME still works.
	w := e.do(request{path: "/admin/providers/save", form: formValues("name", "p", "base_url", "https://api.example.com/v1", "newkey_value", "env:STORE_ENV_KEY")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("env key without a secret key: %d %s", w.Code, w.Body)
	}
}

func TestProviderLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	w := e.do(request{path: "/admin/providers/save", form: formValues(
		"name", "acme", "base_url", "https://api.acme.example/v1", "weight", "2", "models", "acme-*, acme-large",
		"headers", "OpenAI-Organization: org-1\nX-Api-Token: "+headerSecret,
		"newkey_name", "primary", "newkey_value", storeSecret,
		"newkey_name", "", "newkey_value", "env:STORE_ENV_KEY")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	got := e.entries().Providers
	if len(got) != 1 || got[0].Name != "acme" || got[0].Weight != 2 || !slices.Equal(got[0].Models, []string{"acme-*", "acme-large"}) ||
		len(got[0].Keys) != 2 || got[0].Keys[0].Secret != storeSecret || got[0].Keys[1].Env != "STORE_ENV_KEY" ||
		got[0].Headers["X-Api-Token"] != headerSecret {
		t.Fatalf("stored %+v", got)
	}
	if e.applies.Load() != 1 {
		t.Errorf("Apply called %d times", e.applies.Load())
	}
	found := false
	for _, p := range e.snap.Load().Providers() {
		if p.Name == "acme" && p.Origin == "store" && len(p.Keys()) == 2 {
			found = true
		}
	}
	if !found {
		t.Fatal("the running snapshot has no acme provider")
	}
	// Flash after the redirect, and the list shows it editable.
	list := e.do(request{path: "/admin/providers"}).Body.String()
	if !strings.Contains(list, `id="flash"`) || !strings.Contains(list, `data-edit-provider="acme"`) {
		t.Error("no flash or no edit link after saving")
	}
	if strings.Contains(list, `data-edit-provider="fileprov"`) || !strings.Contains(list, "read-only") {
		t.Error("the config file's provider is editable")
	}

	// Edit: rename the first key, drop the second, keep the header secret
	// behind [kept], add a key.
	edit := e.do(request{path: "/admin/providers/edit?name=acme"}).Body.String()
	if !strings.Contains(edit, "X-Api-Token: "+keptValue) || strings.Contains(edit, headerSecret) {
		t.Fatal("the edit form shows a credential header's value")
	}
	ids := regexp.MustCompile(`name="keyname_(\d+)"`).FindAllStringSubmatch(edit, -1)
	if len(ids) != 2 {
		t.Fatalf("edit form keys: %v", ids)
	}
	w = e.do(request{path: "/admin/providers/save", form: formValues(
		"original", "acme", "name", "ignored", "base_url", "https://api.acme.example/v2",
		"headers", "X-Api-Token: "+keptValue, "keyname_"+ids[0][1], "renamed", "removekey", ids[1][1],
		"newkey_value", "env:ENV_PROVIDER_KEY")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", w.Code, w.Body)
	}
	p := e.entries().Providers[0]
	if p.Name != "acme" || p.BaseURL != "https://api.acme.example/v2" || len(p.Keys) != 2 || p.Keys[0].Name != "renamed" ||
		p.Keys[0].Secret != storeSecret || p.Keys[1].Env != "ENV_PROVIDER_KEY" || p.Headers["X-Api-Token"] != headerSecret || len(p.Headers) != 1 {
		t.Fatalf("after edit: %+v", p)
	}
	// The audit log says what happened, by whom, without a secret.
	log := e.auditLog()
	if len(log) != 2 || log[0].Action != "provider.update" || log[1].Action != "provider.create" || log[0].Target != "acme" {
		t.Fatalf("audit %+v", log)
	}
	for _, a := range log {
		if a.Actor != "admin 192.0.2.10" {
			t.Errorf("actor %q", a.Actor)
		}
		for _, s := range []string{storeSecret, headerSecret, envSecret} {
			if strings.Contains(a.Target+a.Detail, s) {
				t.Errorf("audit entry holds a secret: %+v", a)
			}
		}
	}
	if !strings.Contains(log[0].Detail, "keys removed: key-2") && !strings.Contains(log[0].Detail, "keys removed: STORE_ENV_KEY") {
		t.Errorf("audit detail %q does not name the removed key", log[0].Detail)
	}

	// Delete.
	w = e.do(request{path: "/admin/providers/delete", form: formValues("name", "acme")})
	if w.Code != http.StatusSeeOther || len(e.entries().Providers) != 0 {
		t.Fatalf("delete: %d, %d left", w.Code, len(e.entries().Providers))
	}
	for _, p := range e.snap.Load().Providers() {
		if p.Name == "acme" {
			t.Error("the deleted provider still runs")
		}
	}
}

func TestModelForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	ok := func(kv ...string) url.Values {
		v := formValues("name", "*gpt-4*", "target_provider", "fileprov", "target_model", "gpt-4o", "target_weight", "")
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	runRefused(t, e, "/admin/models/save", []refusedCase{
		{name: "no name", form: ok("name", ""), field: "name", want: "Required"},
		{name: "the config file's model", form: ok("name", "file-model"), field: "name", want: "config file"},
		{name: "no target", form: ok("target_provider", "", "target_model", ""), field: "targets", want: "at least one"},
		{name: "a target without provider", form: ok("target_provider", ""), field: "targets", want: "provider"},
		{name: "bad weight", form: ok("target_weight", "heavy"), field: "targets", want: "whole number"},
		{name: "bad strategy", form: ok("strategy", "fastest"), field: "strategy", want: "choices"},
		{name: "negative price", form: ok("input_per_1m", "-1"), field: "pricing", want: "0 or more"},
		{name: "bad currency", form: ok("currency", "US$"), field: "pricing", want: "code"},
		{name: "metadata not an object", form: ok("metadata", "[1,2]"), field: "metadata", want: "JSON object"},
		{name: "bad context window", form: ok("context_window", "1e6"), field: "context_window", want: "whole number"},
		// Refused by Options.Check:
		{name: "check: unknown provider", form: ok("target_provider", "nosuchprov"), field: "targets", want: "nosuchprov", typed: "nosuchprov"},
	})
	w := e.do(request{path: "/admin/models/save", form: ok(
		"strategy", "round_robin", "currency", "usd", "input_per_1m", "2.5", "output_per_1m", "10", "cached_per_1m", "1.25",
		"metadata", `{"family":"gpt-4"}`, "flags", "vision, tools", "context_window", "128000")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", w.Code, w.Body)
	}
	m := e.entries().Models
	if len(m) != 1 || m[0].Name != "*gpt-4*" || m[0].Strategy != "round_robin" || m[0].Pricing == nil ||
		m[0].Pricing.InputPer1M != 2.5 || *m[0].Pricing.CachedPer1M != 1.25 || m[0].Metadata["family"] != "gpt-4" ||
		!slices.Equal(m[0].Flags, []string{"vision", "tools"}) || m[0].ContextWindow != 128000 {
		t.Fatalf("stored %+v", m)
	}
	running := false
	for _, r := range e.snap.Load().Routes() {
		running = running || r.Name == "*gpt-4*" && r.Origin == "store"
	}
	if !running {
		t.Fatal("the route does not run")
	}
	list := e.do(request{path: "/admin/models"}).Body.String()
	if !strings.Contains(list, `data-edit-model="*gpt-4*"`) || strings.Contains(list, `data-edit-model="file-model"`) {
		t.Error("the models page: store route not editable, or file route editable")
	}
	edit := e.do(request{path: "/admin/models/edit?name=" + url.QueryEscape("*gpt-4*")})
	if edit.Code != http.StatusOK || !strings.Contains(edit.Body.String(), `value="gpt-4o"`) {
		t.Fatalf("edit form: %d", edit.Code)
	}
	w = e.do(request{path: "/admin/models/delete", form: formValues("name", "*gpt-4*")})
	if w.Code != http.StatusSeeOther || len(e.entries().Models) != 0 {
		t.Fatalf("delete: %d", w.Code)
	}
}

func TestClientKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	ok := func(kv ...string) url.Values {
		v := formValues("name", "alice")
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	runRefused(t, e, "/admin/keys/save", []refusedCase{
		{name: "no name", form: ok("name", ""), field: "name", want: "Required"},
		{name: "the config file's key name", form: ok("name", "file-client"), field: "name", want: "config file"},
		{name: "rpm not a number", form: ok("rpm", "lots"), field: "rpm", want: "whole number", typed: "lots"},
		{name: "negative tpm", form: ok("tpm", "-5"), field: "tpm", want: "whole number"},
		{name: "bad budget", form: ok("budget", "five dollars"), field: "budget", want: "AMOUNT"},
		{name: "budget per week", form: ok("budget", "5/week"), field: "budget", want: "AMOUNT"},
		{name: "zero budget", form: ok("budget", "0/day"), field: "budget", want: "positive"},
		{name: "bad expiry", form: ok("expires", "next tuesday"), field: "expires", want: "date"},
		{name: "expiry in the past", form: ok("expires", "2020-01-01"), field: "expires", want: "passed"},
	})

	w := e.do(request{path: "/admin/keys/save", form: ok("models", "file-model, gpt-*", "rpm", "60", "budget", "5 usd/day", "expires", "2027-01-31")})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/keys/created" {
		t.Fatalf("create: %d to %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	created := e.do(request{path: "/admin/keys/created"})
	m := regexp.MustCompile(`<code id="key-secret" class="mono">(llmp-[A-Za-z0-9_-]{32})</code>`).FindStringSubmatch(created.Body.String())
	if created.Code != http.StatusOK || m == nil {
		t.Fatalf("created page: %d, no secret", created.Code)
	}
	secret := m[1]
	// Shown once.
	again := e.do(request{path: "/admin/keys/created"})
	if again.Code != http.StatusGone || strings.Contains(again.Body.String(), secret) {
		t.Fatalf("second view: %d, secret shown again: %v", again.Code, strings.Contains(again.Body.String(), secret))
	}
	// The store holds the digest only.
	keys := e.entries().ClientKeys
	if len(keys) != 1 || keys[0].Digest != access.Digest(secret) || keys[0].RPM != 60 || keys[0].Budget == nil ||
		keys[0].Budget.Amount != 5 || keys[0].Budget.Period != "day" || keys[0].Expires.Format("2006-01-02") != "2027-01-31" {
		t.Fatalf("stored %+v", keys)
	}
	if strings.Contains(dumpEntries(e.entries()), secret) {
		t.Fatal("the store holds the secret")
	}
	for _, p := range allPages {
		if body := e.do(request{path: p}).Body.String(); strings.Contains(body, secret) {
			t.Errorf("%s shows the client key's secret", p)
		}
	}
	for _, a := range e.auditLog() {
		if strings.Contains(a.Detail+a.Target, secret) {
			t.Error("the audit log holds the secret")
		}
	}
	// The running configuration accepts it at once.
	authenticate := func() error {
		r, _ := http.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		_, err := e.snap.Load().Keys().Authenticate(r, e.now())
		return err
	}
	if err := authenticate(); err != nil {
		t.Fatalf("the new key does not authenticate: %v", err)
	}

	// Edit its limits; the digest stays.
	w = e.do(request{path: "/admin/keys/save", form: ok("id", itoa64(keys[0].ID), "name", "alice-2", "rpm", "")})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", w.Code, w.Body)
	}
	if k := e.entries().ClientKeys[0]; k.Name != "alice-2" || k.RPM != 0 || k.Digest != keys[0].Digest {
		t.Fatalf("after edit %+v", k)
	}
	if err := authenticate(); err != nil {
		t.Fatalf("the edited key does not authenticate: %v", err)
	}

	// Revoke: the very next request is refused.
	w = e.do(request{path: "/admin/keys/revoke", form: formValues("id", itoa64(keys[0].ID))})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if err := authenticate(); err == nil {
		t.Fatal("the revoked key still authenticates")
	}
	if k := e.entries().ClientKeys[0]; k.RevokedAt.IsZero() {
		t.Fatal("not revoked in the store")
	}
	list := e.do(request{path: "/admin/keys"}).Body.String()
	if !strings.Contains(list, `data-client-key="alice-2" data-status="revoked"`) || strings.Contains(list, `data-revoke-key="alice-2"`) {
		t.Error("the keys page does not show the key revoked")
	}
	if !strings.Contains(list, `data-client-key="file-client"`) || strings.Contains(list, `data-revoke-key="file-client"`) {
		t.Error("the config file's key is missing or revocable")
	}
	actions := []string{}
	for _, a := range e.auditLog() {
		actions = append(actions, a.Action)
	}
	if !slices.Equal(actions, []string{"client_key.revoke", "client_key.update", "client_key.create"}) {
		t.Errorf("audit actions %v", actions)
	}
	// Revoking twice is refused, and changes nothing.
	rev := e.revision()
	if w := e.do(request{path: "/admin/keys/revoke", form: formValues("id", itoa64(keys[0].ID))}); w.Code != http.StatusUnprocessableEntity || e.revision() != rev {
		t.Errorf("second revoke: %d", w.Code)
	}
}

// Revoking must work even when the configuration could not be checked
// (an environment variable gone since start).
func TestRevokeIsNeverHeldUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	e.do(request{path: "/admin/keys/save", form: formValues("name", "bob")})
	id := e.entries().ClientKeys[0].ID
	e.h.opts.Check = func(store.Entries) error { return &config.SettingError{Setting: "x", Msg: "broken"} }
	w := e.do(request{path: "/admin/keys/revoke", form: formValues("id", itoa64(id))})
	if w.Code != http.StatusSeeOther || e.entries().ClientKeys[0].RevokedAt.IsZero() {
		t.Fatalf("revoke with a failing check: %d", w.Code)
	}
}

// A key revoked while the configuration cannot be rebuilt (a provider
// key's variable unset since start) is refused on its next request all
// the same, and the page says both.
func TestRevokeTakesEffectWhenApplyFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	e.do(request{path: "/admin/keys/save", form: formValues("name", "bob")})
	created := e.do(request{path: "/admin/keys/created"}).Body.String()
	m := regexp.MustCompile(`<code id="key-secret" class="mono">(llmp-[A-Za-z0-9_-]{32})</code>`).FindStringSubmatch(created)
	if m == nil {
		t.Fatal("no secret shown")
	}
	authenticate := func(secret string) error {
		r, _ := http.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		_, err := e.snap.Load().Keys().Authenticate(r, e.now())
		return err
	}
	if err := authenticate(m[1]); err != nil {
		t.Fatalf("the new key does not authenticate: %v", err)
	}
	delete(e.vars, "ENV_PROVIDER_KEY")
	w := e.do(request{path: "/admin/keys/revoke", form: formValues("id", itoa64(e.entries().ClientKeys[0].ID))})
	if w.Code != http.StatusSeeOther || e.entries().ClientKeys[0].RevokedAt.IsZero() {
		t.Fatalf("revoke: %d", w.Code)
	}
	if err := authenticate(m[1]); !errors.Is(err, access.ErrWrong) {
		t.Fatalf("the revoked key, on its next request: %v, want %v", err, access.ErrWrong)
	}
	if err := authenticate(fileClientKey); err != nil {
		t.Errorf("the file's client key: %v", err)
	}
	flash := regexp.MustCompile(`<div id="flash"[^>]*>([^<]*)</div>`).FindStringSubmatch(e.do(request{path: "/admin/keys"}).Body.String())
	if flash == nil || !strings.Contains(flash[1], "bob revoked") || !strings.Contains(flash[1], "could not be rebuilt") || !strings.Contains(flash[1], "ENV_PROVIDER_KEY") {
		t.Errorf("the page does not say the key is revoked and the rest not applied: %q", flash)
	}
}

func TestApplyFailureIsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	e.h.opts.Apply = func(context.Context) error { return errBoom }
	w := e.do(request{path: "/admin/models/save", form: formValues("name", "m", "target_provider", "fileprov")})
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", w.Code)
	}
	if !strings.Contains(w.Body.String(), "could not be rebuilt") {
		t.Error("the page does not say the change was saved but not applied")
	}
	// A new key's secret is still shown: it was saved.
	w = e.do(request{path: "/admin/keys/save", form: formValues("name", "carol")})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/keys/created" {
		t.Fatalf("key create with a failing apply: %d %q", w.Code, w.Header().Get("Location"))
	}
	page := e.do(request{path: "/admin/keys/created"}).Body.String()
	if !strings.Contains(page, `id="key-secret"`) || !strings.Contains(page, "could not be rebuilt") {
		t.Error("the secret or the warning is missing")
	}
}

type boom struct{}

func (boom) Error() string { return "boom" }

var errBoom error = boom{}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// dumpEntries renders everything the store returned, for secret scans.
func dumpEntries(e store.Entries) string { return fmt.Sprintf("%+v", e) }
