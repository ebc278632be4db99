package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/llmproxy/llmproxy/internal/browsertest"

	"github.com/llmproxy/llmproxy/store"
)

// TestPanelInBrowser walks the panel in a real Chromium: log in, add a
// provider (a second key row added by the script), a model route and a
// client key (copied), run a test, watch a key's health change live and
// re-enable it, read usage (the chart drawn) and the audit log, revoke the
// key, log out — with screenshots of every page, at desktop and phone
// width, light and dark, English and Chinese. The whole llmproxy walk
// (an SDK through /v1, restart) is cmd/llmproxy's.
func TestPanelInBrowser(t *testing.T) {
	chrome := browsertest.Chromium(t, "the panel's browser test")
	shots := browsertest.ScreenshotDir(t, "admin")
	e := newEnv(t, envOptions{})
	e.h.now = time.Now // the browser's session lives in real time
	today := utcDay(time.Now())
	if err := e.st.AddUsage(context.Background(), []store.UsageRow{
		{Day: today.AddDate(0, 0, -3), Client: "file-client", Model: "file-model", Provider: "fileprov", Requests: 40, Input: 4000, Output: 900},
		{Day: today.AddDate(0, 0, -1), Client: "file-client", Model: "file-model", Provider: "fileprov", Requests: 25, Input: 2500, Output: 600},
		{Day: today.AddDate(0, 0, -1), Client: "operator", Model: "acme-chat", Provider: "acme", Requests: 12, Input: 1200, Output: 300, Currency: "usd", CostNanos: 42_000_000},
		{Day: today, Client: "alice", Model: "acme-chat", Provider: "acme", Requests: 5, Input: 500, Output: 100, Currency: "usd", CostNanos: 9_000_000},
	}); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: e.h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	// Delete and revoke buttons ask confirm(): accepted.
	ctx, obs := browsertest.Start(t, chrome, true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, _ = chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base,
		})
	}
	run := func(d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		must(chromedp.Do(sctx, actions...))
	}
	eval := func(js string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// waitFor polls a condition; a page that navigates meanwhile (a form
	// post) is polled again once the next one is there.
	waitFor := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool]("Boolean("+js+")"))
			cancel()
			if err == nil && ok {
				return
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("waiting for %s: %v", what, last)
	}
	open := func(path, sel string) {
		t.Helper()
		run(20*time.Second, chromedp.Navigate(base+path), chromedp.WaitVisible(sel))
	}
	fill := func(sel, value string) {
		t.Helper()
		run(10*time.Second, chromedp.SetValue(sel, value))
	}
	click := func(sel string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		must(browsertest.Click(sctx, sel))
	}
	shot := func(name string) {
		t.Helper()
		waitFor("the layout of "+name, `document.readyState === "complete" && document.documentElement.getBoundingClientRect().width > 0`)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	media := func(scheme string) {
		t.Helper()
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		must(err)
	}
	language := func(accept string) {
		t.Helper()
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": accept}})
		must(err)
	}

	language("en-US,en;q=0.9")
	media("light")

	// Log in (a wrong password first: the message is next to the field).
	open("/admin", "#login-password")
	shot("walk-login-desktop-light-en")
	fill("#login-password", "not the password")
	click("#login-submit")
	waitFor("the wrong-password message", `document.getElementById("login-error") !== null`)
	fill("#login-password", testPassword)
	click("#login-submit")
	waitFor("the providers page", `document.body.dataset.page === "providers"`)

	// A provider with two keys: the second row comes from "add another key".
	click("#provider-new")
	waitFor("the provider form", `document.getElementById("provider-form") !== null`)
	fill("#provider-name", "acme")
	fill("#provider-base-url", "https://api.acme.example/v1")
	fill("#newkey-name-0", "primary")
	fill("#newkey-value-0", storeSecret)
	click("#provider-add-key")
	waitFor("a second key row", `document.getElementById("newkey-value-1") !== null`)
	fill("#newkey-value-1", "env:STORE_ENV_KEY")
	shot("walk-provider-form-desktop-light-en")
	click("#provider-save")
	waitFor("the saved provider", `document.querySelector('[data-provider="acme"]') !== null && document.getElementById("flash") !== null`)
	if got := eval(`String(document.querySelectorAll('tr[data-key-of="acme"]').length)`); got != "2" {
		t.Errorf("acme has %s key rows, want 2", got)
	}

	// A refused form keeps what was typed and says where it went wrong.
	open("/admin/models/new", "#model-form")
	fill("#model-name", "acme-chat")
	click("#model-save")
	waitFor("the targets message", `document.getElementById("err-targets") !== null`)
	if got := eval(`document.getElementById("model-name").value`); got != "acme-chat" {
		t.Errorf("the refused form lost the name: %q", got)
	}
	run(10*time.Second, chromedp.SetValue("#target-provider-0", "acme"))
	fill("#target-model-0", "acme-chat-v2")
	fill("#model-price-input", "0.5")
	fill("#model-price-output", "1.5")
	click("#model-save")
	waitFor("the saved route", `document.querySelector('tr[data-model="acme-chat"]') !== null`)
	shot("walk-models-desktop-light-en")

	// A client key: created, shown once, copied.
	open("/admin/keys/new", "#key-form")
	fill("#key-name", "alice")
	fill("#key-models", "acme-*, file-model")
	fill("#key-rpm", "60")
	fill("#key-budget", "5/day")
	click("#key-save")
	waitFor("the secret", `document.getElementById("key-secret") !== null`)
	secret := eval(`document.getElementById("key-secret").textContent`)
	if !strings.HasPrefix(secret, SecretPrefix) {
		t.Fatalf("secret %q", secret)
	}
	shot("walk-key-created-desktop-light-en")
	click("#key-copy")
	waitFor("the copy", `document.body.dataset.copied === "yes"`)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	clip, err := chromedp.Run(sctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	scancel()
	if err == nil && clip != secret {
		t.Errorf("the clipboard holds %q", clip)
	}
	click("#key-done")
	waitFor("the keys page", `document.querySelector('tr[data-client-key="alice"]') !== null`)
	if strings.Contains(eval(`document.documentElement.outerHTML`), secret) {
		t.Error("the keys page shows the secret")
	}

	// Test the route through the (in-process) gateway.
	open("/admin/test", "#test-model-form")
	fill("#test-model", "acme-chat")
	click("#test-model-submit")
	waitFor("the result", `document.getElementById("test-result") !== null`)
	if got := eval(`document.getElementById("test-status").textContent`); got != "200 OK" {
		t.Errorf("test status %q", got)
	}
	shot("walk-test-result-desktop-light-en")

	// Key health, live: a key disabled behind the page's back shows up
	// within a poll, and the button puts it back.
	open("/admin/providers", `tr[data-key-of="acme"]`)
	waitFor("a first poll", `Number(document.body.dataset.healthPolls || 0) >= 1`)
	for _, p := range e.snap.Load().Providers() {
		if p.Name == "acme" {
			p.Keys()[0].Health().Disable("the provider refused the key (HTTP 401)")
		}
	}
	waitFor("the disabled state", `document.querySelector('tr[data-key-of="acme"][data-key-index="0"] .key-state').classList.contains("state-disabled")`)
	waitFor("the enable button", `!document.querySelector('tr[data-key-of="acme"][data-key-index="0"] .enable-form').hidden`)
	shot("walk-providers-key-disabled-desktop-light-en")
	click(`button[data-enable-key="acme/0"]`)
	waitFor("the key enabled", `document.getElementById("flash") !== null && document.querySelector('tr[data-key-of="acme"][data-key-index="0"] .key-state').classList.contains("state-ok")`)

	// Usage: the chart is drawn by the page, and redrawn per metric.
	open("/admin/usage", "#usage-chart")
	waitFor("bars", `Number(document.getElementById("usage-chart").dataset.bars || 0) > 0`)
	eval(`const m = document.getElementById("usage-metric"); m.value = "n"; m.dispatchEvent(new Event("change")); "ok"`)
	waitFor("the cost chart", `document.querySelector("#usage-chart text") !== null && [...document.querySelectorAll("#usage-chart text")].some(t => t.textContent.includes("USD"))`)
	eval(`const m2 = document.getElementById("usage-metric"); m2.value = "r"; m2.dispatchEvent(new Event("change")); "ok"`)
	shot("walk-usage-desktop-light-en")
	open("/admin/audit", "#audit")
	if n := eval(`String(document.querySelectorAll("tr.audit-row").length)`); n != "4" {
		t.Errorf("audit rows: %s", n)
	}
	shot("walk-audit-desktop-light-en")

	// Every page in both themes and both languages, at both widths, and
	// never wider than a phone's screen.
	pages := []struct{ name, path, sel string }{
		{"providers", "/admin/providers", `[data-provider="acme"]`},
		{"provider-form", "/admin/providers/edit?name=acme", "#provider-form"},
		{"models", "/admin/models", "#models"},
		{"model-form", "/admin/models/edit?name=acme-chat", "#model-form"},
		{"keys", "/admin/keys", "#client-keys"},
		{"key-form", "/admin/keys/new", "#key-form"},
		{"test", "/admin/test", "#test-model-form"},
		{"usage", "/admin/usage", "#usage-chart svg"},
		{"audit", "/admin/audit", "#audit"},
	}
	setTheme := func(theme string) {
		eval(`localStorage.setItem("llmproxy.theme", "` + theme + `"); "ok"`)
	}
	type view struct {
		phone       bool
		lang, theme string
	}
	// Each width, theme and language at least once; every combination
	// when screenshots were asked for ($LLMPROXY_SCREENSHOTS).
	views := []view{{false, "en", "light"}, {false, "zh", "dark"}, {true, "zh", "light"}, {true, "en", "dark"}}
	if os.Getenv("LLMPROXY_SCREENSHOTS") != "" {
		views = nil
		for _, phone := range []bool{false, true} {
			for _, lang := range []string{"en", "zh"} {
				for _, theme := range []string{"light", "dark"} {
					views = append(views, view{phone, lang, theme})
				}
			}
		}
	}
	accept := map[string]string{"en": "en-US,en;q=0.9", "zh": "zh-CN,zh;q=0.9"}
	nav := map[string]string{"en": "Providers", "zh": "服务商"}
	for _, vw := range views {
		width := "desktop"
		if vw.phone {
			width = "phone"
			run(10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		} else {
			run(10*time.Second, chromedp.EmulateViewport(1280, 900))
		}
		language(accept[vw.lang])
		setTheme(vw.theme)
		for _, p := range pages {
			open(p.path, p.sel)
			if got := eval(`document.getElementById("nav-providers").textContent`); got != nav[vw.lang] {
				t.Errorf("%s (%s): nav says %q", p.name, vw.lang, got)
			}
			if got := eval(`document.documentElement.dataset.theme || ""`); got != vw.theme {
				t.Errorf("%s: theme %q, want %q", p.name, got, vw.theme)
			}
			if vw.phone {
				if got := eval(`String(document.documentElement.scrollWidth <= window.innerWidth + 1)`); got != "true" {
					t.Errorf("%s (%s, %s) scrolls sideways on a phone: %s wide", p.name, vw.lang, vw.theme,
						eval(`String(document.documentElement.scrollWidth)`))
				}
			}
			shot(fmt.Sprintf("%s-%s-%s-%s", p.name, width, vw.theme, vw.lang))
		}
	}
	// The dark theme really is darker than the light one.
	setTheme("light")
	open("/admin/providers", `[data-provider="acme"]`)
	light := eval(`getComputedStyle(document.body).backgroundColor`)
	click("#theme-switch")
	waitFor("the dark theme", `document.documentElement.dataset.theme === "dark"`)
	if dark := eval(`getComputedStyle(document.body).backgroundColor`); dark == light {
		t.Errorf("the theme switch changed nothing (%s)", dark)
	}
	// The language switch link.
	language("en")
	open("/admin/keys", "#client-keys")
	click("#lang-switch")
	waitFor("Chinese", `document.documentElement.lang === "zh-CN"`)
	click("#lang-switch")
	waitFor("English", `document.documentElement.lang === "en"`)

	// Revoke (through the confirm dialog), then log out.
	run(10*time.Second, chromedp.EmulateViewport(1280, 900))
	open("/admin/keys", `button[data-revoke-key="alice"]`)
	click(`button[data-revoke-key="alice"]`)
	waitFor("the revoked key", `document.querySelector('tr[data-client-key="alice"]').dataset.status === "revoked"`)
	r, _ := http.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	if _, err := e.snap.Load().Keys().Authenticate(r, time.Now()); err == nil {
		t.Error("the revoked key still authenticates")
	}
	click("#logout")
	waitFor("the login page", `document.getElementById("login-password") !== null`)
	open("/admin/providers", "#login-password") // the session is gone

	own, _ := url.Parse(base)
	requests := obs.Requests()
	if len(requests) < 20 {
		t.Errorf("only %d requests seen: the listener is not working", len(requests))
	}
	for _, req := range requests {
		u, err := url.Parse(req)
		if err != nil || (u.Scheme != "data" && u.Host != own.Host) {
			t.Errorf("the page asked another host: %s", req)
		}
	}
	for _, msg := range obs.Errors() {
		// The wrong password (401) and the refused form (422) above are
		// meant: the browser logs every 4xx document.
		if strings.HasPrefix(msg, "log: Failed to load resource") &&
			(strings.HasSuffix(msg, "/admin/login") || strings.HasSuffix(msg, "/admin/models/save")) {
			continue
		}
		t.Errorf("console: %s", msg)
	}
}
