package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/llmproxy/llmproxy/internal/browsertest"
	"github.com/llmproxy/llmproxy/preset"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/server"
)

// serve runs a server for cfg on a loopback port until the test ends and
// returns its base URL.
func serve(t *testing.T, cfg *config.Config, opts server.Options) string {
	t.Helper()
	srv, err := server.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-served })
	return "http://" + ln.Addr().String()
}

// statsDoc is the part of GET /stats the gateway section shows.
type statsDoc struct {
	Providers []struct {
		Name         string     `json:"name"`
		Breaker      string     `json:"breaker"`
		BreakerUntil *time.Time `json:"breaker_until"`
		Keys         []struct {
			Name     string     `json:"name"`
			Masked   string     `json:"masked"`
			State    string     `json:"state"`
			Until    *time.Time `json:"until"`
			Reason   string     `json:"reason"`
			Requests int64      `json:"requests"`
			Failures int64      `json:"failures"`
		} `json:"keys"`
	} `json:"providers"`
	Usage []struct {
		Client    string           `json:"client"`
		Model     string           `json:"model"`
		Requests  int64            `json:"requests"`
		Input     int64            `json:"input_tokens"`
		Cached    int64            `json:"cached_input_tokens"`
		Output    int64            `json:"output_tokens"`
		Reasoning int64            `json:"reasoning_tokens"`
		Cost      map[string]int64 `json:"cost_nanos"`
	} `json:"usage"`
	Limited []struct {
		Client  string `json:"client"`
		Limit   string `json:"limit"`
		Refused int64  `json:"refused"`
	} `json:"limited"`
}

func fetchStats(t *testing.T, client *http.Client, base string) statsDoc {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc statsDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// chat asks the gateway for model with a client key and returns the status.
func chat(t *testing.T, client *http.Client, base, key, model string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// moneyNumber reads the amount out of a formatted price ("$0.0251",
// "CN¥1,234.50").
var moneyNumber = regexp.MustCompile(`[0-9][0-9,]*(\.[0-9]+)?`)

func TestDashboardInBrowser(t *testing.T) {
	chrome := browsertest.Chromium(t, "the dashboard browser test")
	shots := browsertest.ScreenshotDir(t, "")

	// The preset the live numbers count, and three gateway providers:
	// alpha's first key is rate limited for an hour, its second refused, its
	// third fine; beta is fine; gamma answers 503 until its breaker opens.
	fake := providertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","choices":[]}`)
	}), nil)
	coolingKey, refusedKey := gwEnv["ALPHA_KEY_1"], gwEnv["ALPHA_KEY_2"]
	alpha := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "alpha", CachedTokens: 3,
		Reply: []providertest.Delta{{Reasoning: "Let me think about that."}, {Text: "Hello from alpha"}},
		Fault: func(r providertest.FaultRequest) providertest.Fault {
			switch r.Key {
			case coolingKey:
				return providertest.RateLimited("3600")
			case refusedKey:
				return providertest.Status(401)
			}
			return providertest.Fault{}
		}}, nil)
	beta := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "beta"}, nil)
	gamma := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "gamma",
		Fault: func(providertest.FaultRequest) providertest.Fault { return providertest.Status(503) }}, nil)
	cfg := gatewayConfig(t, upstreams{CAFile: fake.CA.CAFile, OpenAI: fake.URL, Alpha: alpha.URL, Beta: beta.URL, Gamma: gamma.URL})
	base := serve(t, cfg, server.Options{Version: "1.0.0-test", Getenv: func(k string) string { return gwEnv[k] }, Admin: adminStub})
	// A server without gateway or admin panel, to see the page without them.
	plainCfg := config.Default()
	plainBase := serve(t, plainCfg, server.Options{Version: "1.0.0-test"})

	ctx, obs := browsertest.Start(t, chrome, false)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The page shows times on the viewer's clock: fix it, to compare.
	_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
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
	text := func(sel string) string {
		t.Helper()
		return eval(`(() => { const n = document.querySelector(` + strconv.Quote(sel) + `); return n ? n.textContent : "<none>"; })()`)
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
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		must(browsertest.Click(sctx, sel))
	}
	shot := func(name string) {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	shotOf := func(name, sel string) {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.Screenshot(sel))
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
	loadFrom := func(b string) {
		t.Helper()
		sctx, cancel := step(ctx, 20*time.Second)
		defer cancel()
		must(chromedp.Do(sctx, chromedp.Navigate(b+"/"), chromedp.WaitVisible(`#presets tbody tr[data-preset="openai"]`)))
	}
	load := func() { t.Helper(); loadFrom(base) }

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

	// The header links to the admin panel, and nothing else of it.
	if got := eval(`(() => { const a = document.getElementById("admin-link"); return a ? a.getAttribute("href") + " " + a.textContent : "none"; })()`); got != "/admin Admin" {
		t.Errorf("admin link: %q, want /admin named Admin", got)
	}

	// The preset that holds its key on this server says so, and its usage
	// example asks for a client key instead of a provider key.
	if got := text(`tr[data-preset="claude"] .key-badge`); got != "key on the server" {
		t.Errorf("claude's server-key marker: %q", got)
	}
	if got := eval(`String(document.querySelectorAll('tr[data-preset="openai"] .key-badge').length)`); got != "0" {
		t.Error("the openai preset, which holds no key, is marked as holding one")
	}
	click(`#tabs button[data-tab="anthropic"]`)
	if code, note := text(`#example-code`), text(`#example-note`); !strings.Contains(code, `api_key="<client key>"`) || !strings.Contains(note, "client key") {
		t.Errorf("the keyed claude preset's example does not ask for a client key:\n%s\n%s", code, note)
	}
	click(`#tabs button[data-tab="openai_py"]`)
	if code := text(`#example-code`); !strings.Contains(code, `api_key="sk-..."`) {
		t.Errorf("the openai preset (no server key) takes the provider's key: %s", code)
	}

	// The gateway's usage examples, with this server's address.
	for _, tc := range []struct{ tab, want string }{
		{"curl", base + "/v1/chat/completions \\\n  -H \"Authorization: Bearer <client key>\""},
		{"openai_py", `OpenAI(base_url="` + base + `/v1", api_key="<client key>")`},
		{"openai_js", `new OpenAI({ baseURL: "` + base + `/v1", apiKey: "<client key>" })`},
		{"anthropic", `anthropic.Anthropic(base_url="` + base + `", api_key="<client key>")`},
		{"gemini", `genai.Client(api_key="<client key>", http_options=types.HttpOptions(base_url="` + base + `"))`},
	} {
		click(`#gw-tabs button[data-tab="` + tc.tab + `"]`)
		if code := text(`#gw-example-code`); !strings.Contains(code, tc.want) {
			t.Errorf("gateway example %s lacks %q:\n%s", tc.tab, tc.want, code)
		}
	}
	click(`#gw-copy-example`)
	waitFor("the gateway example's copy", `document.body.dataset.copied.includes("genai.Client")`)
	click(`#gw-tabs button[data-tab="curl"]`)

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
	if got := text(`#gw-usage tbody td`); got != "waiting for numbers…" {
		t.Errorf("the usage table before the token: %q", got)
	}
	sctx, scancel = step(ctx, 10*time.Second)
	must(chromedp.Do(sctx, chromedp.SendKeys(`#token-input`, token), chromedp.Click(`#token-form button[type="submit"]`)))
	scancel()
	waitFor("the totals", `document.querySelectorAll("#totals .stat").length > 0`)
	if got := eval(`sessionStorage.getItem("llmproxy.token") === "` + token + `" && localStorage.getItem("llmproxy.token") === null ? "session" : "elsewhere"`); got != "session" {
		t.Errorf("the token must live in the tab's session only: %s", got)
	}
	waitFor("the empty usage table", `document.querySelector("#gw-usage tbody td").textContent === "No gateway requests yet."`)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Post(base+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{}`))
		must(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitFor("3 requests in the openai row", `document.querySelector('tr[data-preset="openai"] td.requests').textContent === "3"`)

	// Gateway traffic while the page is open: alice's three requests try
	// every alpha key (one cools, one is disabled), bob's second is over
	// his one request a minute.
	for i := range 3 {
		if code := chat(t, client, base, aliceKey, "super-brain"); code != 200 {
			t.Fatalf("alice's request %d: %d", i, code)
		}
	}
	if code := chat(t, client, base, bobKey, "cheap-chat"); code != 200 {
		t.Fatalf("bob's first request: %d", code)
	}
	if code := chat(t, client, base, bobKey, "cheap-chat"); code != 429 {
		t.Fatalf("bob's second request: %d, want 429 (rpm)", code)
	}
	// gamma's failures open its breaker (the count that takes belongs to
	// the gateway: ask until /stats says so).
	gammaOpen := func() *time.Time {
		for _, p := range fetchStats(t, client, base).Providers {
			if p.Name == "gamma" && p.Breaker == "open" {
				return p.BreakerUntil
			}
		}
		return nil
	}
	var breakerUntil *time.Time
	for i := 0; breakerUntil == nil; i++ {
		if i == 20 {
			t.Fatal("gamma's breaker did not open after 20 failed requests")
		}
		if code := chat(t, client, base, aliceKey, "flaky"); code < 500 {
			t.Fatalf("a request to the failing gamma: %d", code)
		}
		breakerUntil = gammaOpen()
	}
	if breakerUntil == nil {
		t.Fatal("gamma's breaker is open without breaker_until")
	}
	waitFor("the usage rows", `(() => {
		const a = document.querySelector('#gw-usage tr[data-client="alice"] td.requests');
		const b = document.querySelector('#gw-usage tr[data-client="bob"] td.requests');
		return a && b && a.textContent === "3" && b.textContent === "1";
	})()`)
	waitFor("bob's refusal", `document.querySelector('#gw-limited tr[data-client="bob"][data-limit="rpm"]') !== null`)
	// The last change: once the page shows it, it shows what /stats says now.
	waitFor("gamma's open breaker", `(() => {
		const n = document.querySelector('#gw-providers tr[data-provider="gamma"] .breaker .state');
		return n !== null && n.dataset.state === "open";
	})()`)
	doc := fetchStats(t, client, base)

	// Provider keys: by name and masked, with their health.
	masked := func(secret string) string { return "…" + secret[len(secret)-4:] }
	keyRow := func(provider, key string) string {
		return `#gw-providers tr[data-provider="` + provider + `"][data-key="` + key + `"]`
	}
	for _, p := range doc.Providers {
		for _, k := range p.Keys {
			row := keyRow(p.Name, k.Name)
			if got := eval(`(() => { const n = document.querySelector('` + row + ` .key-state .state'); return n ? n.dataset.state : "<none>"; })()`); got != k.State {
				t.Errorf("%s/%s shows state %q, /stats says %q", p.Name, k.Name, got, k.State)
			}
			if got, want := text(row+` td.attempts`), strconv.FormatInt(k.Requests, 10); got != want {
				t.Errorf("%s/%s attempts %q, want %s", p.Name, k.Name, got, want)
			}
			if got, want := text(row+` td.failures`), strconv.FormatInt(k.Failures, 10); got != want {
				t.Errorf("%s/%s failures %q, want %s", p.Name, k.Name, got, want)
			}
			if k.State == "cooling" {
				if k.Until == nil {
					t.Fatalf("%s/%s cooling without until", p.Name, k.Name)
				}
				if got, want := text(row+` .until`), "until "+k.Until.UTC().Format("15:04:05"); got != want {
					t.Errorf("%s/%s: %q, want %q", p.Name, k.Name, got, want)
				}
			}
		}
	}
	for _, tc := range []struct {
		provider, key, state, reason string
	}{
		{"alpha", "ALPHA_KEY_1", "cooling", "rate limited"},
		{"alpha", "ALPHA_KEY_2", "disabled", "the provider refused the key (HTTP 401)"},
		{"alpha", "ALPHA_KEY_3", "ok", "<none>"},
		{"beta", "BETA_KEY_1", "ok", "<none>"},
		{"claude", "CLAUDE_KEY", "ok", "<none>"},
	} {
		row := keyRow(tc.provider, tc.key)
		if got := text(row + ` .key-state .state`); got != tc.state {
			t.Errorf("%s/%s state %q, want %q", tc.provider, tc.key, got, tc.state)
		}
		if got := text(row + ` .reason`); got != tc.reason {
			t.Errorf("%s/%s reason %q, want %q", tc.provider, tc.key, got, tc.reason)
		}
		if got, want := text(row+` .masked`), masked(gwEnv[tc.key]); got != want {
			t.Errorf("%s/%s masked %q, want %q", tc.provider, tc.key, got, want)
		}
	}
	if got := text(`#gw-providers tr[data-provider="alpha"] .breaker .state`); got != "closed" {
		t.Errorf("alpha's breaker: %q", got)
	}
	// The breaker stays open for half a minute: the page shows it until then.
	if got := text(`#gw-providers tr[data-provider="gamma"] .breaker .state`); got != "open" {
		t.Errorf("gamma's breaker: %q, want open", got)
	}
	if got, want := text(`#gw-providers tr[data-provider="gamma"] .breaker .until`), "until "+breakerUntil.UTC().Format("15:04:05"); got != want {
		t.Errorf("gamma's breaker: %q, want %q", got, want)
	}
	// No secret anywhere in the document, not even in an attribute.
	html := eval(`document.documentElement.outerHTML`)
	for _, s := range secrets() {
		if strings.Contains(html, s) {
			t.Errorf("the page shows a secret ending in %s", masked(s))
		}
	}

	// Tokens and cost: the numbers of /stats, the cost in its currency.
	for _, u := range doc.Usage {
		row := `#gw-usage tr[data-client="` + u.Client + `"][data-model="` + u.Model + `"]`
		for col, want := range map[string]int64{"requests": u.Requests, "input_tokens": u.Input, "cached_input_tokens": u.Cached,
			"output_tokens": u.Output, "reasoning_tokens": u.Reasoning} {
			if got := strings.ReplaceAll(text(row+` td.`+col), ",", ""); got != strconv.FormatInt(want, 10) {
				t.Errorf("%s/%s %s: %q, want %d", u.Client, u.Model, col, got, want)
			}
		}
		if len(u.Cost) != 1 {
			t.Fatalf("%s/%s cost %v: want one currency", u.Client, u.Model, u.Cost)
		}
		for currency, nanos := range u.Cost {
			got := text(row + ` td.cost`)
			symbol := map[string]string{"usd": "$", "cny": "CN¥"}[currency]
			amount, err := strconv.ParseFloat(strings.ReplaceAll(moneyNumber.FindString(got), ",", ""), 64)
			want := float64(nanos) / 1e9
			if !strings.HasPrefix(got, symbol) || err != nil || math.Abs(amount-want) > max(want*0.005, 0.005) {
				t.Errorf("%s/%s cost %q, want %s%.6f", u.Client, u.Model, got, symbol, want)
			}
		}
	}
	if alice := text(`#gw-usage tr[data-client="alice"] td.reasoning_tokens`); alice == "0" || alice == "<none>" {
		t.Errorf("alice's reasoning tokens: %q", alice)
	}
	if got := text(`#gw-usage tfoot td.requests`); got != "4" {
		t.Errorf("total requests %q, want 4", got)
	}
	if got := text(`#gw-limited tr[data-client="bob"][data-limit="rpm"] td.refused`); got != "1" {
		t.Errorf("bob's rpm refusals: %q", got)
	}

	// How cost reads: at least two decimals, three significant digits below
	// one unit, one amount per currency; a code Intl does not know keeps
	// its name.
	for _, tc := range []struct{ name, nanos, want string }{
		{"dollars", `{"usd": 1056000000}`, "$1.06"},
		{"fractions of a cent", `{"usd": 105000}`, "$0.000105"},
		{"half a dollar", `{"usd": 500000000}`, "$0.50"},
		{"thousands", `{"usd": 1234500000000}`, "$1,234.50"},
		{"two currencies", `{"usd": 1000000000, "eur": 2000000000}`, "€2.00 + $1.00"},
		{"not an ISO code", `{"credits": 1500000000}`, "1.50 credits"},
		{"nothing", `{}`, "–"},
		{"zero", `{"usd": 0}`, "–"},
	} {
		if got := eval(`fmtCost(` + tc.nanos + `)`); got != tc.want {
			t.Errorf("cost %s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// What this gateway did not produce: a provider without keys, a
	// probing breaker, cache writes (shown only when some row has them).
	// One script renders them and puts the live numbers back, so the
	// 3-second refresh cannot interleave.
	var shown struct {
		NoKeys, Probing, WritesHeader, Writes, Client, Before string
	}
	must(json.Unmarshal([]byte(eval(`(() => {
		const live = lastStats;
		const before = document.querySelector("#gw-usage th.cache-write").hidden;
		lastStats = {totals: live.totals, routes: live.routes,
			providers: [{name: "local", kind: "openai", origin: "config", hosts: ["vllm.internal"], breaker: "half_open", keys: []}],
			usage: [{client: "carol", model: "claude-x", provider: "local", provider_key: "", requests: 2,
				input_tokens: 1000, cached_input_tokens: 0, cache_write_tokens: 1234567, output_tokens: 5, reasoning_tokens: 0}]};
		renderGateway();
		const q = (sel) => { const n = document.querySelector(sel); return n ? n.textContent : "<none>"; };
		const out = {
			NoKeys: q('#gw-providers tr[data-provider="local"] td.muted'),
			Probing: q('#gw-providers tr[data-provider="local"] .breaker .state'),
			WritesHeader: String(!document.querySelector("#gw-usage th.cache-write").hidden),
			Writes: q('#gw-usage tr[data-client="carol"] td.cache_write_tokens'),
			Client: q('#gw-usage tr[data-client="carol"] td.client'),
			Before: String(before),
		};
		lastStats = live;
		renderGateway();
		return JSON.stringify(out);
	})()`)), &shown))
	if shown != (struct{ NoKeys, Probing, WritesHeader, Writes, Client, Before string }{"no keys", "probing", "true", "1,234,567", "carol", "true"}) {
		t.Errorf("synthetic gateway numbers shown as %+v", shown)
	}
	if got := eval(`String(document.querySelector("#gw-usage th.cache-write").hidden)`); got != "true" {
		t.Error("the cache-write column stays after the rows with cache writes are gone")
	}

	// Desktop screenshots in both themes, via the switch; the first screen
	// alone as well, for the README, and the gateway section alone.
	eval(`window.scrollTo(0, 0); "top"`)
	sctx, scancel = step(ctx, 10*time.Second)
	top, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	scancel()
	must(err)
	must(os.WriteFile(filepath.Join(shots, "desktop-light-top.png"), top, 0o644))
	shot("desktop-light")
	shotOf("gateway-light", "#gateway")
	click(`#theme-switch`)
	waitFor("the dark theme", `document.documentElement.dataset.theme === "dark"`)
	if got := bg(); got != dark {
		t.Errorf("the switch's dark background %s differs from the system's dark %s", got, dark)
	}
	shot("desktop-dark")
	shotOf("gateway-dark", "#gateway")
	click(`#theme-switch`)
	waitFor("the light theme", `document.documentElement.dataset.theme === "light"`)

	// Every label of the gateway section (and the other new ones) in both
	// languages: each changes with the switch, none shows a text key.
	labels := `JSON.stringify([...document.querySelectorAll("#gateway h2, #gateway h3, #gateway > p, #gateway th, #gateway .state, #gateway .reason, #gateway .until, #gateway tr.empty td, #gateway tfoot td:first-child, #gateway .limit .muted, #gateway .tab, #gw-example-note, #admin-link, .key-badge, #features li")].map((n) => n.textContent))`
	var en, zh []string
	must(json.Unmarshal([]byte(eval(labels)), &en))
	noKeys := func(lang string) {
		t.Helper()
		// t() falls back to the key itself when a text is missing everywhere.
		if got := eval(`JSON.stringify([...document.querySelectorAll("body *")].flatMap((n) => [...n.childNodes]).filter((c) => c.nodeType === 3 && /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/.test(c.textContent.trim())).map((c) => c.textContent.trim()))`); got != "[]" {
			t.Errorf("%s: text keys shown instead of labels: %s", lang, got)
		}
	}
	noKeys("en")
	click(`#lang-switch`)
	waitFor("Chinese", `document.documentElement.lang === "zh-CN"`)
	if got := eval(`document.querySelector("h1").textContent`); got != "通往大模型 API 的私有网关" {
		t.Errorf("Chinese heading: %q", got)
	}
	must(json.Unmarshal([]byte(eval(labels)), &zh))
	noKeys("zh")
	if len(en) != len(zh) || len(en) < 40 {
		t.Fatalf("%d English labels, %d Chinese", len(en), len(zh))
	}
	han := regexp.MustCompile(`\p{Han}`)
	for i := range en {
		// The SDK tabs' names (curl, OpenAI · Python…) are the same in both.
		if strings.HasPrefix(en[i], "curl") || strings.Contains(en[i], "OpenAI ·") || en[i] == "Anthropic" || en[i] == "Gemini" {
			continue
		}
		if en[i] == zh[i] || !han.MatchString(zh[i]) {
			t.Errorf("label %d is not translated: %q / %q", i, en[i], zh[i])
		}
	}
	if got := text(keyRow("alpha", "ALPHA_KEY_1") + ` .until`); !strings.HasPrefix(got, "至 ") {
		t.Errorf("Chinese until: %q", got)
	}
	shotOf("gateway-zh", "#gateway")
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

	// A phone: no horizontal scrolling of the page; the preset table turned
	// into cards, the gateway's tables scrolling inside their frames.
	sctx, scancel = step(ctx, 10*time.Second)
	must(chromedp.Do(sctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))))
	scancel()
	load()
	waitFor("the layout", `document.querySelector("#presets thead") !== null`)
	waitFor("the gateway's rows", `document.querySelector('#gw-usage tr[data-client="alice"]') !== null`)
	if got := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
		t.Errorf("the page scrolls sideways on a phone: %s wide in %s", eval(`String(document.documentElement.scrollWidth)`), eval(`String(window.innerWidth)`))
	}
	if got := eval(`getComputedStyle(document.querySelector("#presets thead")).display`); got != "none" {
		t.Errorf("phone layout: table header display %q", got)
	}
	if got := eval(`(() => { const w = document.querySelector("#gw-usage").parentElement; return String(w.scrollWidth > w.clientWidth && getComputedStyle(w).overflowX === "auto"); })()`); got != "true" {
		t.Error("phone layout: the usage table does not scroll inside its frame")
	}
	eval(`window.scrollTo(0, 0); "top"`)
	sctx, scancel = step(ctx, 10*time.Second)
	top, err = chromedp.Run(sctx, chromedp.CaptureScreenshot())
	scancel()
	must(err)
	must(os.WriteFile(filepath.Join(shots, "phone-light-top.png"), top, 0o644))
	shot("phone-light")
	shotOf("gateway-phone-light", "#gateway")
	click(`#theme-switch`)
	waitFor("the dark theme on the phone", `document.documentElement.dataset.theme === "dark"`)
	shot("phone-dark")
	shotOf("gateway-phone-dark", "#gateway")

	// A server without gateway or admin panel: neither shows.
	loadFrom(plainBase)
	waitFor("the plain server's live numbers", `document.querySelectorAll("#totals .stat").length > 0`)
	if got := eval(`String(document.getElementById("admin-link") === null && document.getElementById("gateway").hidden && document.querySelectorAll(".key-badge").length === 0)`); got != "true" {
		t.Error("without gateway and admin panel the page still shows the admin link, the gateway section or a server-key marker")
	}

	// Nothing went to another host, and nothing went wrong.
	own := map[string]bool{}
	for _, b := range []string{base, plainBase} {
		u, _ := url.Parse(b)
		own[u.Host] = true
	}
	requests := obs.Requests()
	if len(requests) < 5 {
		t.Errorf("only %d requests seen: the listener is not working", len(requests))
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && !own[u.Host]) {
			t.Errorf("the page asked another host: %s", r)
		}
	}
	for _, e := range obs.Errors() {
		t.Errorf("console: %s", e)
	}
}

// A request the upstream failed (unreachable: a 502) is one failed request
// in the preset's row and in the totals, not an upstream error and a 5xx
// added together.
func TestDashboardCountsAFailedRequestOnce(t *testing.T) {
	chrome := browsertest.Chromium(t, "the dashboard's failed-request count")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := config.Default()
	cfg.Presets = map[string]preset.Override{"openai": {URL: "http://" + dead}}
	base := serve(t, cfg, server.Options{Version: "test"})
	resp, err := http.Post(base+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("an unreachable upstream: %d, want 502", resp.StatusCode)
	}

	ctx, _ := browsertest.Start(t, chrome, false)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`(() => { const n = document.querySelector('tr[data-preset="openai"] td.requests'); return n && n.textContent === "1"; })()`,
		chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	row, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('tr[data-preset="openai"] td.errors').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	total, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#totals .stat')].find((s) => s.querySelector('.label').textContent === "Failed requests").querySelector('.value').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if row != "1" || total != "1" {
		t.Errorf("after 1 failed request: the row says %s failed, the totals %s; want 1 and 1", row, total)
	}
}
