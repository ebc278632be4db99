package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/server"
)

const token = "dashboard-test-token-3f9a1c"

// chromium finds the browser: LLMPROXY_CHROMIUM, else Debian's chromium.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("LLMPROXY_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("LLMPROXY_BROWSER_TESTS") == "1" {
		t.Fatal("LLMPROXY_BROWSER_TESTS=1 but no Chromium found (apt-get install chromium)")
	}
	t.Skip("no Chromium: the dashboard browser test needs it (CI installs it; set LLMPROXY_BROWSER_TESTS=1 to require it)")
	return ""
}

// screenshotDir is where the test writes its screenshots.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("LLMPROXY_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	t.Logf("screenshots go to %s", abs)
	return abs
}

// observed collects what the page did: every request it made, and every
// console error or uncaught exception.
type observed struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

func (o *observed) listen(ev any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		o.requests = append(o.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			o.errors = append(o.errors, fmt.Sprintf("console.%s", ev.Type))
		}
	case *runtime.EventExceptionThrown:
		o.errors = append(o.errors, "exception: "+ev.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			o.errors = append(o.errors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	}
}

func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium(t)
	shots := screenshotDir(t)

	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","choices":[]}`)
	}), nil)
	cfg := config.Default()
	cfg.UpstreamCA = fake.CA.CAFile
	cfg.AuthToken = token
	cfg.Presets = map[string]preset.Override{"openai": {URL: fake.URL}}
	srv, err := server.New(cfg, server.Options{Version: "1.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() { stopServe(); <-served }()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()

	obs := &observed{}
	if err := chromedp.Listen(ctx, obs.listen); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	must(err)
	_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	must(err)
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	must(err)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, _ = chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: base,
		})
	}

	step := func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, d)
	}
	eval := func(js string) string {
		t.Helper()
		sctx, cancel := step(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	waitFor := func(what, js string) {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	click := func(sel string) {
		t.Helper()
		sctx, cancel := step(ctx, 10*time.Second)
		defer cancel()
		must(chromedp.Do(sctx, chromedp.Click(sel)))
	}
	shot := func(name string) {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	setMedia := func(scheme string) {
		t.Helper()
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		must(err)
	}
	load := func() {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		must(chromedp.Do(sctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#presets tbody tr[data-preset="openai"]`)))
	}

	// English from Accept-Language, light from the system.
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "en-US,en;q=0.9"}})
	must(err)
	setMedia("light")
	load()
	if got := eval(`document.querySelector("h1").textContent`); got != "Your private gateway to LLM APIs" {
		t.Errorf("English heading: %q", got)
	}
	if n := eval(`String(document.querySelectorAll("#presets tbody tr").length)`); n < "2" && len(n) < 2 {
		t.Errorf("preset rows: %s", n)
	}

	// The copy button gives the full base URL on this server.
	click(`button.copy[data-preset="openai"]`)
	waitFor("the copy", `document.body.dataset.copied !== undefined`)
	if got, want := eval(`document.body.dataset.copied`), base+"/openai/v1"; got != want {
		t.Errorf("copied %q, want %q", got, want)
	}
	sctx, scancel := step(ctx, 5*time.Second)
	clip, err := chromedp.Run(sctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	scancel()
	if err == nil && clip != base+"/openai/v1" {
		t.Errorf("clipboard holds %q", clip)
	} else if err != nil {
		t.Logf("clipboard not readable in this headless browser (%v); checked the copied value instead", err)
	}

	// The system's theme decides until the switch is used.
	bg := func() string { return eval(`getComputedStyle(document.body).backgroundColor`) }
	light := bg()
	setMedia("dark")
	waitFor("the system's dark theme", `getComputedStyle(document.body).backgroundColor !== "`+light+`"`)
	dark := bg()
	setMedia("light")
	waitFor("light again", `getComputedStyle(document.body).backgroundColor === "`+light+`"`)

	// Live numbers: the token form shows, the token unlocks /stats, and
	// proxied requests appear in the openai row.
	waitFor("the token form", `!document.getElementById("token-form").hidden`)
	sctx, scancel = step(ctx, 10*time.Second)
	must(chromedp.Do(sctx, chromedp.SendKeys(`#token-input`, token), chromedp.Click(`#token-form button[type="submit"]`)))
	scancel()
	waitFor("the totals", `document.querySelectorAll("#totals .stat").length > 0`)
	if got := eval(`sessionStorage.getItem("llmproxy.token") === "` + token + `" && localStorage.getItem("llmproxy.token") === null ? "session" : "elsewhere"`); got != "session" {
		t.Errorf("the token must live in the tab's session only: %s", got)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Post(base+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{}`))
		must(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitFor("3 requests in the openai row", `document.querySelector('tr[data-preset="openai"] td.requests').textContent === "3"`)

	// Desktop screenshots in both themes, via the switch; the first screen
	// alone as well, for the README.
	eval(`window.scrollTo(0, 0); "top"`)
	sctx, scancel = step(ctx, 10*time.Second)
	top, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	scancel()
	must(err)
	must(os.WriteFile(filepath.Join(shots, "desktop-light-top.png"), top, 0o644))
	shot("desktop-light")
	click(`#theme-switch`)
	waitFor("the dark theme", `document.documentElement.dataset.theme === "dark"`)
	if got := bg(); got != dark {
		t.Errorf("the switch's dark background %s differs from the system's dark %s", got, dark)
	}
	shot("desktop-dark")
	click(`#theme-switch`)
	waitFor("the light theme", `document.documentElement.dataset.theme === "light"`)

	// The language switch, and its choice kept across a reload.
	click(`#lang-switch`)
	waitFor("Chinese", `document.documentElement.lang === "zh-CN"`)
	if got := eval(`document.querySelector("h1").textContent`); got != "通往大模型 API 的私有网关" {
		t.Errorf("Chinese heading: %q", got)
	}
	load()
	waitFor("Chinese after a reload", `document.querySelector("h1").textContent === "通往大模型 API 的私有网关"`)
	click(`#lang-switch`)
	waitFor("English", `document.documentElement.lang === "en"`)

	// Chinese from Accept-Language on a first visit.
	eval(`localStorage.clear(); "ok"`)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}})
	must(err)
	load()
	waitFor("Chinese from Accept-Language", `document.querySelector("h1").textContent === "通往大模型 API 的私有网关"`)

	// A phone: no horizontal scrolling, the table turned into cards.
	sctx, scancel = step(ctx, 10*time.Second)
	must(chromedp.Do(sctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))))
	scancel()
	load()
	waitFor("the layout", `document.querySelector("#presets thead") !== null`)
	if got := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
		t.Errorf("the page scrolls sideways on a phone: %s wide in %s", eval(`String(document.documentElement.scrollWidth)`), eval(`String(window.innerWidth)`))
	}
	if got := eval(`getComputedStyle(document.querySelector("#presets thead")).display`); got != "none" {
		t.Errorf("phone layout: table header display %q", got)
	}
	shot("phone-light")
	click(`#theme-switch`)
	waitFor("the dark theme on the phone", `document.documentElement.dataset.theme === "dark"`)
	shot("phone-dark")

	// Nothing went to another host, and nothing went wrong.
	obs.mu.Lock()
	defer obs.mu.Unlock()
	own, _ := url.Parse(base)
	if len(obs.requests) < 5 {
		t.Errorf("only %d requests seen: the listener is not working", len(obs.requests))
	}
	for _, r := range obs.requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Host != own.Host) {
			t.Errorf("the page asked another host: %s", r)
		}
	}
	for _, e := range obs.errors {
		t.Errorf("console: %s", e)
	}
}
