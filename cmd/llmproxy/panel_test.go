//go:build linux

package main

// The admin panel wired into the binary: serve run in this process by
// run(), exactly as main runs it (the store in --data-dir, the panel, usage
// recording, budgets restored at start), driven by a real Chromium and by
// plain HTTP, with the official SDKs calling the gateway and fake TLS
// providers behind it. (linux: the helpers reused from emptyroot_test.go.)

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/chromedp/chromedp"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/admin"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/browsertest"
	"github.com/llmproxy/llmproxy/providertest"
	"github.com/llmproxy/llmproxy/store"
)

// ---- llmproxy serve, in this process ----

// llmproxyProc is one `llmproxy serve` started by run(): a signal is a
// cancelled context, a restart a second run() on the same data dir.
type llmproxyProc struct {
	t       *testing.T
	addr    string // host:port it listens on
	logs    *logWatch
	cancel  context.CancelFunc
	done    chan int
	code    int
	stopped bool
}

// startLLMProxy runs serve with args (plus a JSON log, and 127.0.0.1:0 unless
// args say --listen) and waits until it listens.
func startLLMProxy(t *testing.T, args ...string) *llmproxyProc {
	t.Helper()
	if !slices.Contains(args, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	argv := append([]string{"llmproxy", "serve", "--log-format", "json"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	p := &llmproxyProc{t: t, logs: &logWatch{addr: make(chan string, 1)}, cancel: cancel, done: make(chan int, 1)}
	go func() { p.done <- run(ctx, argv, io.Discard, p.logs) }()
	select {
	case p.addr = <-p.logs.addr:
	case code := <-p.done:
		cancel()
		p.stopped, p.code = true, code
		t.Fatalf("llmproxy exited with %d before listening:\n%s", code, p.logs)
	case <-time.After(30 * time.Second):
		p.stop()
		t.Fatalf("llmproxy did not listen:\n%s", p.logs)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *llmproxyProc) base() string { return "http://" + p.addr }

// stop cancels serve's context (what SIGTERM does through
// signal.NotifyContext) and returns its exit status.
func (p *llmproxyProc) stop() int {
	if p.stopped {
		return p.code
	}
	p.stopped = true
	p.cancel()
	select {
	case p.code = <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("llmproxy did not stop:\n%s", p.logs)
	}
	return p.code
}

// restart stops p and starts serve again with args on the same address.
func (p *llmproxyProc) restart(args ...string) *llmproxyProc {
	p.t.Helper()
	if code := p.stop(); code != exitOK {
		p.t.Fatalf("llmproxy exited with %d:\n%s", code, p.logs)
	}
	return startLLMProxy(p.t, append(args, "--listen", p.addr)...)
}

// hangup sends this process SIGHUP, which serve's reloadOnHangup takes.
// Only while a serve runs: without a handler SIGHUP ends the test binary.
func (p *llmproxyProc) hangup() {
	p.t.Helper()
	if p.stopped {
		p.t.Fatal("SIGHUP with no serve running would end the test binary")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		p.t.Fatal(err)
	}
}

// secretKeyHex is a fresh LLMPROXY_SECRET_KEY: 32 random bytes in hex.
func secretKeyHex() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// leaks returns which of secrets s holds, whole or all but their last four
// characters (masking shows those four, never more).
func leaks(s string, secrets []string) []string {
	var out []string
	for _, secret := range secrets {
		if len(secret) > 8 && strings.Contains(s, secret[:len(secret)-4]) {
			out = append(out, "…"+secret[len(secret)-4:])
		}
	}
	return out
}

// ---- the panel over plain HTTP, as a browser would post its forms ----

// adminSession is a logged-in panel session: a cookie jar and the CSRF
// token every change carries.
type adminSession struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

var (
	csrfInput    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	keySecretRE  = regexp.MustCompile(`id="key-secret"[^>]*>([^<]+)<`)
	revokeFormRE = regexp.MustCompile(`name="id" value="(\d+)">\s*<button[^>]*data-revoke-key="([^"]+)"`)
	keyNameRE    = regexp.MustCompile(`id="keyname-(\d+)"`)
)

func adminLogin(t *testing.T, base, password string) *adminSession {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &adminSession{t: t, base: base, hc: &http.Client{Jar: jar, Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(s.hc.CloseIdleConnections)
	if code, body := s.post("/admin/login", url.Values{"password": {password}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", code, body)
	}
	_, body := s.get("/admin/providers")
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the providers page:\n%s", body)
	}
	s.csrf = m[1]
	return s
}

func (s *adminSession) do(req *http.Request) (int, string) {
	s.t.Helper()
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (s *adminSession) get(path string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	return s.do(req)
}

// post sends a form, with the session's CSRF token once it has one.
func (s *adminSession) post(path string, form url.Values) (int, string) {
	s.t.Helper()
	if s.csrf != "" {
		form.Set("csrf", s.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// save posts a form that must be accepted (303 to the list).
func (s *adminSession) save(path string, kv ...string) {
	s.t.Helper()
	form := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Add(kv[i], kv[i+1])
	}
	if code, body := s.post(path, form); code != http.StatusSeeOther {
		s.t.Fatalf("POST %s: %d, want 303:\n%s", path, code, pageError(body))
	}
}

// createKey creates a client key in the panel and returns its secret,
// read from the page that shows it once.
func (s *adminSession) createKey(kv ...string) string {
	s.t.Helper()
	s.save("/admin/keys/save", kv...)
	_, body := s.get("/admin/keys/created")
	m := keySecretRE.FindStringSubmatch(body)
	if m == nil {
		s.t.Fatalf("no secret on the created page:\n%s", pageError(body))
	}
	return m[1]
}

// revokeKey revokes the active client key called name.
func (s *adminSession) revokeKey(name string) {
	s.t.Helper()
	_, body := s.get("/admin/keys")
	for _, m := range revokeFormRE.FindAllStringSubmatch(body, -1) {
		if m[2] == name {
			s.save("/admin/keys/revoke", "id", m[1])
			return
		}
	}
	s.t.Fatalf("no revoke button for %s", name)
}

// pageError is the part of a panel page that says what went wrong.
func pageError(body string) string {
	var out []string
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`id="(?:form-error|page-error)"[^>]*>([^<]*)<`),
		regexp.MustCompile(`<p class="field-error" id="(err-[^"]+)">([^<]*)</p>`),
	} {
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			out = append(out, strings.Join(m[1:], ": "))
		}
	}
	if len(out) == 0 {
		return body
	}
	return strings.Join(out, "\n")
}

// ---- the gateway, as a client calls it ----

// chat sends one OpenAI chat completion to llmproxy and returns the status
// and body.
func chat(t *testing.T, hc *http.Client, base, key, model string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func newHTTPClient(t *testing.T) *http.Client {
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func openaiSDK(hc *http.Client, base, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key),
		option.WithMaxRetries(0), option.WithHTTPClient(hc))
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say something.")}}
}

// sdkChat asks model through the SDK, plainly or streamed, and returns the
// answer's text.
func sdkChat(ctx context.Context, c openai.Client, model string, stream bool) (string, error) {
	if !stream {
		resp, err := c.Chat.Completions.New(ctx, chatParams(model))
		if err != nil {
			return "", err
		}
		if len(resp.Choices) == 0 {
			return "", errors.New("no choices")
		}
		return resp.Choices[0].Message.Content, nil
	}
	s := c.Chat.Completions.NewStreaming(ctx, chatParams(model))
	defer s.Close()
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	if len(acc.Choices) == 0 {
		return "", errors.New("no choices")
	}
	return acc.Choices[0].Message.Content, nil
}

// statusOf is the HTTP status an SDK call failed with, 0 for another error.
func statusOf(err error) int {
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe.StatusCode
	}
	return 0
}

// ---- the browser walk ----

// The walk's secrets: none may appear on a page after it was first shown,
// in a log, or anywhere the fake provider looks but its own header.
const (
	walkPassword    = "walk-admin-password-4f9c2e1a"
	walkProviderKey = "sk-walk-provider-literal-7c1e9a2b3d4f"
	walkUpstream    = "gpt-upstream-walk-2025"
)

// walkReply is the fake's answer; its token counts price the usage.
var walkReply = []providertest.Delta{providertest.Text("Walk "), providertest.Text("answer")}

type walkView struct {
	phone       bool
	lang, theme string
}

func (v walkView) String() string {
	width := "desktop"
	if v.phone {
		width = "phone"
	}
	return width + "-" + v.theme + "-" + v.lang
}

// TestPanelWalkThroughTheBinary is the "done means": a real
// Chromium walks the panel of the real serve — log in, add a provider (a
// fake OpenAI over TLS, with a literal key the store encrypts), a priced
// model route and client keys; the openai-go SDK uses a key through /v1
// (plain and streamed); the usage page shows the requests and their cost;
// the key is revoked and refused over HTTP; serve restarts on the same data
// dir and everything is still there, the encrypted provider key included;
// with another LLMPROXY_SECRET_KEY the server starts, says the key cannot
// be decrypted and answers an error without reaching the provider. Half
// the walk is in English, half in Chinese, with screenshots of its steps at
// desktop and phone width, light and dark.
func TestPanelWalkThroughTheBinary(t *testing.T) {
	chrome := browsertest.Chromium(t, "the panel walk through the binary")
	shots := browsertest.ScreenshotDir(t, "llmproxy")
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("ADMIN_PASSWORD", walkPassword)
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Name: "walkfake", Keys: []string{walkProviderKey}, Reply: walkReply}, nil)
	args := []string{"--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile}
	srv := startLLMProxy(t, args...)
	procs := []*llmproxyProc{srv}
	base := srv.base()
	hc := newHTTPClient(t)

	// What no page, log or screenshot may hold: the provider key always
	// (it is typed into the form, never shown), a client key's secret once
	// its one page was shown.
	var secretsMu sync.Mutex
	secrets := []string{walkProviderKey}
	forbidden := func() []string {
		secretsMu.Lock()
		defer secretsMu.Unlock()
		return slices.Clone(secrets)
	}

	// The revoke button asks confirm(): accepted.
	ctx, events := browsertest.Start(t, chrome, true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
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
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("waiting for %s: %v (page: %s)", what, last, eval(`location.pathname`))
	}
	// clean checks the page's DOM, the values typed into it included.
	clean := func(where string) {
		t.Helper()
		dom := eval(`document.documentElement.outerHTML + "\n" + [...document.querySelectorAll("input, textarea, select")].map(e => e.value).join("\n")`)
		if l := leaks(dom, forbidden()); len(l) > 0 {
			t.Errorf("%s: the page holds the secrets %v", where, l)
		}
	}
	// open loads a page and checks it holds no secret.
	open := func(path, sel string) {
		t.Helper()
		do(chromedp.Navigate(base+path), chromedp.WaitVisible(sel))
		clean(path)
	}
	fill := func(sel, value string) {
		t.Helper()
		do(chromedp.SetValue(sel, value))
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
		clean("screenshot " + name)
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	// The language is the panel's cookie (?lang= sets it, as the switch
	// does), the theme the script's localStorage.
	htmlLang := map[string]string{"en": "en", "zh": "zh-CN"}
	walk := walkView{lang: "en", theme: "light"}
	setView := func(v walkView, path, sel string) {
		t.Helper()
		if v.phone {
			do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		} else {
			do(chromedp.EmulateViewport(1280, 900))
		}
		eval(`localStorage.setItem("llmproxy.theme", "` + v.theme + `"); "ok"`)
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		open(path+sep+"lang="+v.lang, sel)
		if got := eval(`document.documentElement.lang`); got != htmlLang[v.lang] {
			t.Errorf("%s (%s): the page is in %q", path, v, got)
		}
		if got := eval(`document.documentElement.dataset.theme || ""`); got != v.theme {
			t.Errorf("%s (%s): theme %q", path, v, got)
		}
	}
	// Each width, theme and language at least once; every combination
	// when screenshots were asked for ($LLMPROXY_SCREENSHOTS).
	views := []walkView{{false, "en", "light"}, {false, "zh", "dark"}, {true, "zh", "light"}, {true, "en", "dark"}}
	if os.Getenv("LLMPROXY_SCREENSHOTS") != "" {
		views = nil
		for _, phone := range []bool{false, true} {
			for _, lang := range []string{"en", "zh"} {
				for _, theme := range []string{"light", "dark"} {
					views = append(views, walkView{phone, lang, theme})
				}
			}
		}
	}
	// shotAll screenshots a step (a page reached by GET) in every view, and
	// comes back to the walk's own.
	shotAll := func(step, path, sel string) {
		t.Helper()
		for _, v := range views {
			setView(v, path, sel)
			if v.phone {
				if got := eval(`String(document.documentElement.scrollWidth <= window.innerWidth + 1)`); got != "true" {
					t.Errorf("%s (%s) scrolls sideways on a phone", step, v)
				}
			}
			shot(step + "-" + v.String())
		}
		setView(walk, path, sel)
	}
	fakeSaw := func(from int) []providertest.Request { return fake.Requests()[from:] }

	// 1. Log in, in English.
	open("/admin?lang=en", "#login-password")
	shotAll("walk-01-login", "/admin/login", "#login-password")
	fill("#login-password", walkPassword)
	click("#login-submit")
	waitFor("the providers page", `document.body.dataset.page === "providers"`)

	// 2. A provider: the fake, with a literal key (encrypted in the store).
	open("/admin/providers/new", "#provider-form")
	fill("#provider-name", "walkprov")
	fill("#provider-base-url", fake.URL+"/v1")
	fill("#newkey-name-0", "main")
	shot("walk-02-provider-form-" + walk.String())
	fill("#newkey-value-0", walkProviderKey)
	click("#provider-save")
	waitFor("the saved provider", `document.querySelector('[data-provider="walkprov"]') !== null && document.getElementById("flash") !== null`)
	clean("the providers page")
	if got := eval(`document.querySelector('tr[data-key-of="walkprov"] td.mono').textContent`); !strings.Contains(got, walkProviderKey[len(walkProviderKey)-4:]) {
		t.Errorf("the key is not shown masked by its last four characters: %q", got)
	}
	shotAll("walk-03-providers", "/admin/providers", `[data-provider="walkprov"]`)

	// 3. A model route to it, renamed upstream, with pricing.
	open("/admin/models/new", "#model-form")
	fill("#model-name", "walk-chat")
	fill("#target-provider-0", "walkprov")
	fill("#target-model-0", walkUpstream)
	fill("#model-currency", "usd")
	fill("#model-price-input", "100")
	fill("#model-price-output", "400")
	shot("walk-04-model-form-" + walk.String())
	click("#model-save")
	waitFor("the saved route", `document.querySelector('tr[data-model="walk-chat"]') !== null`)
	shotAll("walk-05-models", "/admin/models", `tr[data-model="walk-chat"]`)

	// 4. Two client keys, each secret read from the page that shows it
	// once: "walker" is used and revoked, "keeper" outlives the restart.
	createKey := func(name, step string) string {
		t.Helper()
		open("/admin/keys/new", "#key-form")
		fill("#key-name", name)
		click("#key-save")
		waitFor("the secret", `document.getElementById("key-secret") !== null`)
		secret := eval(`document.getElementById("key-secret").textContent`)
		if !strings.HasPrefix(secret, admin.SecretPrefix) || len(secret) < 32 {
			t.Fatalf("secret %q", secret)
		}
		if step != "" {
			shot(step + "-" + walk.String())
		}
		secretsMu.Lock()
		secrets = append(secrets, secret)
		secretsMu.Unlock()
		click("#key-done")
		waitFor("the keys page", `document.querySelector('tr[data-client-key="`+name+`"]') !== null`)
		clean("the keys page after " + name + " was created")
		return secret
	}
	walker := createKey("walker", "walk-06-key-created")
	keeper := createKey("keeper", "")
	shotAll("walk-07-keys", "/admin/keys", `tr[data-client-key="walker"]`)

	// 5. The panel's own test: one completion through the real gateway.
	open("/admin/test", "#test-model-form")
	fill("#test-model", "walk-chat")
	click("#test-model-submit")
	waitFor("the test result", `document.getElementById("test-result") !== null`)
	if got := eval(`document.getElementById("test-status").textContent`); got != "200 OK" {
		t.Errorf("test status %q: %s", got, eval(`(document.getElementById("test-error") || {}).textContent || ""`))
	}
	shot("walk-08-test-" + walk.String())

	// 6. The key used by the openai-go SDK through /v1, plainly and
	// streamed: the provider sees its own key and the upstream model name,
	// never the client key.
	before := len(fake.Requests())
	for _, stream := range []bool{false, true} {
		text, err := sdkChat(t.Context(), openaiSDK(hc, base, walker), "walk-chat", stream)
		if err != nil || text != "Walk answer" {
			t.Fatalf("SDK (stream %v): %q, %v", stream, text, err)
		}
	}
	used := fakeSaw(before)
	if len(used) != 2 {
		t.Fatalf("the fake received %d requests, want 2", len(used))
	}
	var wantCost int64
	for i, r := range used {
		if got := r.Header.Get("Authorization"); got != "Bearer "+walkProviderKey {
			t.Errorf("request %d: Authorization %q, want the provider key", i, got)
		}
		var body struct{ Model string }
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Model != walkUpstream {
			t.Errorf("request %d went upstream as model %q (%v), want %s", i, body.Model, err, walkUpstream)
		}
		var all strings.Builder
		fmt.Fprintf(&all, "%s\n%s\n%v\n", r.URI, r.Body, r.Header)
		if strings.Contains(all.String(), walker) || strings.Contains(all.String(), keeper) {
			t.Errorf("request %d carried a client key to the provider", i)
		}
		// Priced at 100 and 400 per million: 1e5 and 4e5 nanos a token.
		tokens := providertest.CountTokens(r.Body, walkReply)
		wantCost += int64(tokens.Prompt)*100_000 + int64(tokens.Completion)*400_000
	}

	// 7. In Chinese now (the switch link): the usage page shows the two
	// requests and their cost once the recorder has written them. The
	// recorder writes every 2 s, and a streamed answer is counted when its
	// handler returns, a moment after the SDK has read the end: the two
	// may land in separate writes, so the page is read again until it
	// shows both (or the deadline passes and the count is reported).
	click("#lang-switch")
	waitFor("Chinese", `document.documentElement.lang === "zh-CN"`)
	walk.lang = "zh"
	wantCostText := strconv.FormatFloat(float64(wantCost)/1e9, 'f', 4, 64) + " USD"
	usageRow := `document.querySelector('#usage-by-key tr[data-name="walker"]')`
	requests := ""
	for deadline := time.Now().Add(15 * time.Second); ; {
		open("/admin/usage", "#usage-chart")
		if eval(`String(`+usageRow+` !== null)`) == "true" {
			if requests = eval(usageRow + `.children[1].textContent`); requests == "2" {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if requests != "2" {
		t.Fatalf("usage page: walker made %q requests, want 2", requests)
	}
	if got := eval(usageRow + `.children[3].textContent`); got != wantCostText {
		t.Errorf("usage page: walker's cost %q, want %q", got, wantCostText)
	}
	waitFor("the chart", `Number(document.getElementById("usage-chart").dataset.bars || 0) > 0`)
	shotAll("walk-09-usage", "/admin/usage", "#usage-chart svg")

	// 8. Revoke walker in the browser (through the confirm dialog); the
	// real server refuses its next request over HTTP, keeper still works.
	open("/admin/keys", `button[data-revoke-key="walker"]`)
	if got := eval(`document.querySelector('tr[data-client-key="walker"] .usage-requests').textContent`); !strings.Contains(got, "2") {
		t.Errorf("the keys page shows walker's usage as %q", got)
	}
	click(`button[data-revoke-key="walker"]`)
	waitFor("the revoked key", `document.querySelector('tr[data-client-key="walker"]').dataset.status === "revoked"`)
	shot("walk-10-revoked-" + walk.String())
	before = len(fake.Requests())
	if _, err := sdkChat(t.Context(), openaiSDK(hc, base, walker), "walk-chat", false); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("the revoked key: %v, want HTTP 401", err)
	}
	if n := len(fakeSaw(before)); n != 0 {
		t.Errorf("the revoked key's request reached the provider (%d requests)", n)
	}
	if _, err := sdkChat(t.Context(), openaiSDK(hc, base, keeper), "walk-chat", true); err != nil {
		t.Errorf("keeper after walker's revocation: %v", err)
	}

	// 9. Restart on the same data dir: the provider, the route, the
	// revocation, the usage and keeper (the provider key decrypted with
	// the same LLMPROXY_SECRET_KEY) are all still there.
	do(chromedp.Navigate("about:blank")) // no live poll while serve is down
	srv = srv.restart(args...)
	procs = append(procs, srv)
	open("/admin", "#login-password") // sessions live in the process: log in again
	if got := eval(`document.documentElement.lang`); got != "zh-CN" {
		t.Errorf("after the restart the login page is in %q, want the chosen Chinese", got)
	}
	fill("#login-password", walkPassword)
	click("#login-submit")
	waitFor("the providers page", `document.body.dataset.page === "providers"`)
	if eval(`String(document.querySelector('[data-provider="walkprov"]:not(.read-only)') !== null)`) != "true" {
		t.Error("after the restart the provider is gone (or not editable)")
	}
	open("/admin/models", "#models")
	if eval(`String(document.querySelector('tr[data-model="walk-chat"]') !== null)`) != "true" {
		t.Error("after the restart the model route is gone")
	}
	open("/admin/keys", "#client-keys")
	for name, want := range map[string]string{"walker": "revoked", "keeper": "active"} {
		if got := eval(`(document.querySelector('tr[data-client-key="` + name + `"]') || {dataset: {}}).dataset.status || "missing"`); got != want {
			t.Errorf("after the restart %s is %s, want %s", name, got, want)
		}
	}
	open("/admin/usage", "#usage-chart")
	if got := eval(`(` + usageRow + ` || {children: [0, {textContent: "none"}]}).children[1].textContent`); got != "2" {
		t.Errorf("after the restart the usage page shows %q requests by walker, want 2", got)
	}
	shot("walk-11-usage-after-restart-" + walk.String())
	before = len(fake.Requests())
	if text, err := sdkChat(t.Context(), openaiSDK(hc, base, keeper), "walk-chat", false); err != nil || text != "Walk answer" {
		t.Errorf("keeper after the restart: %q, %v", text, err)
	}
	if saw := fakeSaw(before); len(saw) != 1 || saw[0].Header.Get("Authorization") != "Bearer "+walkProviderKey {
		t.Errorf("after the restart the provider did not get its key once (%d requests)", len(saw))
	}
	if _, err := sdkChat(t.Context(), openaiSDK(hc, base, walker), "walk-chat", false); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("the revoked key after the restart: %v, want HTTP 401", err)
	}

	// 10. Another LLMPROXY_SECRET_KEY: serve starts, says which key it
	// cannot decrypt, the panel marks it, and the route answers an error
	// without sending the provider anything.
	do(chromedp.Navigate("about:blank"))
	t.Setenv(EnvSecretKey, secretKeyHex())
	srv = srv.restart(args...)
	procs = append(procs, srv)
	logs := srv.logs.String()
	if !strings.Contains(logs, "cannot be decrypted") || !strings.Contains(logs, `"provider":"walkprov"`) {
		t.Errorf("no warning naming the provider whose key cannot be decrypted:\n%s", logs)
	}
	open("/admin", "#login-password")
	fill("#login-password", walkPassword)
	click("#login-submit")
	waitFor("the providers page", `document.body.dataset.page === "providers"`)
	// The list says the provider has a key it cannot use, as the edit form
	// does: an operator must not find a provider silently keyless.
	if eval(`String(document.querySelector('[data-provider="walkprov"] .key-locked') !== null)`) != "true" {
		t.Error("the providers page does not mark walkprov's key as locked (it lists no key at all)")
	}
	shot("walk-12-locked-key-providers-" + walk.String())
	open("/admin/providers/edit?name=walkprov", "#provider-form")
	if eval(`String(document.querySelector('#provider-form .key-locked') !== null)`) != "true" {
		t.Error("the provider's edit form does not mark its key as locked")
	}
	shot("walk-13-locked-key-form-" + walk.String())
	do(chromedp.Navigate("about:blank"))
	before = len(fake.Requests())
	if _, err := sdkChat(t.Context(), openaiSDK(hc, base, keeper), "walk-chat", false); err == nil {
		t.Error("with another secret key the route still answered")
	}
	if saw := fakeSaw(before); len(saw) != 0 {
		t.Errorf("with the provider key locked, %d request(s) reached the provider (Authorization %q)",
			len(saw), saw[0].Header.Get("Authorization"))
	}
	if code := srv.stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}

	// Nothing leaked: no log line holds a secret; the browser asked no
	// other host and logged no error.
	for i, p := range procs {
		logs := p.logs.String()
		if l := leaks(logs, forbidden()); len(l) > 0 {
			t.Errorf("run %d logged the secrets %v", i+1, l)
		}
		// Nor a prompt or an answer.
		if strings.Contains(logs, "Say something") || strings.Contains(logs, "Walk answer") {
			t.Errorf("run %d logged a prompt or a completion", i+1)
		}
	}
	own, _ := url.Parse(base)
	seen := events.Requests()
	if len(seen) < 30 {
		t.Errorf("only %d requests seen: the listener is not working", len(seen))
	}
	for _, req := range seen {
		u, err := url.Parse(req)
		if err != nil || (u.Scheme != "data" && u.Scheme != "about" && u.Host != own.Host) {
			t.Errorf("the page asked another host: %s", req)
		}
	}
	for _, msg := range events.Errors() {
		t.Errorf("console: %s", msg)
	}
}

// ---- the wiring, without a browser ----

// A change saved in the panel is served by the very next request (the
// snapshot swap, no wait), and open streams keep running through it.
func TestPanelChangeServedByTheNextRequest(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("NEXT_PROVIDER_KEY", "sk-next-provider-key-00000001")
	slowReply := []providertest.Delta{providertest.Text("one "), providertest.Text("two "), providertest.Text("three")}
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{"sk-next-provider-key-00000001"}}, nil)
	slow := providertest.NewOpenAI(t, &providertest.OpenAI{Reply: slowReply, ChunkDelay: 150 * time.Millisecond}, nil)
	srv := startLLMProxy(t, "--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile,
		"--admin-password", walkPassword)
	hc := newHTTPClient(t)
	s := adminLogin(t, srv.base(), walkPassword)

	s.save("/admin/providers/save", "name", "next", "base_url", fake.URL+"/v1", "newkey_value", "env:NEXT_PROVIDER_KEY")
	s.save("/admin/providers/save", "name", "slow", "base_url", slow.URL+"/v1")
	s.save("/admin/models/save", "name", "next-chat", "target_provider", "next", "target_model", "upstream-a")
	s.save("/admin/models/save", "name", "slow-chat", "target_provider", "slow", "target_model", "gpt-slow")
	key := s.createKey("name", "nexter")
	upstreamModel := func() string {
		reqs := fake.Requests()
		if len(reqs) == 0 {
			return "(none)"
		}
		var body struct{ Model string }
		json.Unmarshal(reqs[len(reqs)-1].Body, &body)
		return body.Model
	}
	if code, body := chat(t, hc, srv.base(), key, "next-chat"); code != http.StatusOK || upstreamModel() != "upstream-a" {
		t.Fatalf("right after the panel created them: %d %s (upstream model %q)", code, body, upstreamModel())
	}

	// A stream open while its route is deleted and its key revoked runs
	// to its end: it keeps the snapshot it started with.
	req, _ := http.NewRequest(http.MethodPost, srv.base()+"/v1/chat/completions",
		strings.NewReader(`{"model":"slow-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var streamed strings.Builder
	readEvent := func() bool {
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if line == "[DONE]" {
				return false
			}
			var chunk struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if json.Unmarshal([]byte(line), &chunk) == nil && len(chunk.Choices) > 0 {
				streamed.WriteString(chunk.Choices[0].Delta.Content)
			}
			return true
		}
		return false
	}
	if !readEvent() {
		t.Fatal("the stream ended before its first event")
	}

	tests := []struct {
		name   string
		change func()
		model  string
		want   int
		check  func(t *testing.T, body string)
	}{
		{"a target renamed", func() {
			s.save("/admin/models/save", "original", "next-chat", "target_provider", "next", "target_model", "upstream-b")
		}, "next-chat", http.StatusOK, func(t *testing.T, _ string) {
			if got := upstreamModel(); got != "upstream-b" {
				t.Errorf("upstream model %q, want upstream-b", got)
			}
		}},
		{"a route deleted", func() { s.save("/admin/models/delete", "name", "slow-chat") }, "slow-chat", http.StatusNotFound, nil},
		{"the key revoked", func() { s.revokeKey("nexter") }, "next-chat", http.StatusUnauthorized, func(t *testing.T, body string) {
			if !strings.Contains(body, "invalid_api_key") {
				t.Errorf("body %s", body)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			code, body := chat(t, hc, srv.base(), key, tc.model)
			if code != tc.want {
				t.Fatalf("the next request: %d, want %d: %s", code, tc.want, body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	for readEvent() {
	}
	if err := sc.Err(); err != nil || streamed.String() != "one two three" {
		t.Errorf("the open stream: %q, %v", streamed.String(), err)
	}
}

// A key revoked while the configuration cannot be rebuilt (a provider
// key's variable unset since start) is refused on its next request all
// the same: revoked in the panel, or in the store by another process
// (another replica, which this server's watch picks up). The keys not
// revoked keep working on the running configuration.
func TestRevokeTakesEffectWithAnUnsetVariable(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("REVOKE_PROVIDER_KEY", "sk-revoke-provider-key-0000001")
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{"sk-revoke-provider-key-0000001"}}, nil)
	dir := t.TempDir()
	srv := startLLMProxy(t, "--data-dir", dir, "--upstream-ca", providertest.CA(t).CAFile, "--admin-password", walkPassword)
	hc := newHTTPClient(t)
	s := adminLogin(t, srv.base(), walkPassword)
	s.save("/admin/providers/save", "name", "revp", "base_url", fake.URL+"/v1", "newkey_value", "env:REVOKE_PROVIDER_KEY")
	s.save("/admin/models/save", "name", "rev-chat", "target_provider", "revp")
	inPanel, elsewhere, kept := s.createKey("name", "in-panel"), s.createKey("name", "elsewhere"), s.createKey("name", "kept")
	for _, key := range []string{inPanel, elsewhere, kept} {
		if code, body := chat(t, hc, srv.base(), key, "rev-chat"); code != http.StatusOK {
			t.Fatalf("before: %d %s", code, body)
		}
	}
	os.Unsetenv("REVOKE_PROVIDER_KEY") // t.Setenv restores it

	t.Run("in the panel", func(t *testing.T) {
		s.revokeKey("in-panel")
		if code, body := chat(t, hc, srv.base(), inPanel, "rev-chat"); code != http.StatusUnauthorized {
			t.Fatalf("the next request: %d, want 401: %s", code, body)
		}
	})
	t.Run("in the store, by another process", func(t *testing.T) {
		e, _ := dataDirState(t, dir)
		i := slices.IndexFunc(e.ClientKeys, func(k store.ClientKey) bool { return k.Name == "elsewhere" })
		changeDataDir(t, dir, func(tx *store.Tx) error { return tx.RevokeClientKey(e.ClientKeys[i].ID) })
		eventually(t, "the revocation served", func() bool {
			code, _ := chat(t, hc, srv.base(), elsewhere, "rev-chat")
			return code == http.StatusUnauthorized
		})
	})
	if code, body := chat(t, hc, srv.base(), kept, "rev-chat"); code != http.StatusOK {
		t.Errorf("the key not revoked: %d %s", code, body)
	}
}

// SIGHUP re-reads the config file and keeps the store's entries on top of
// it; a panel change afterwards keeps the reloaded file's entries too.
func TestSIGHUPKeepsTheStoreEntries(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	t.Setenv("HUP_PROVIDER_KEY", "sk-hup-provider-key-000000001")
	fake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{"sk-hup-provider-key-000000001"}}, nil)
	const fileKey = "ck-hup-file-client-key-0000001"
	file := writeFile(t, "")
	write := func(models ...string) {
		yaml := "providers:\n  fileprov:\n    base_url: " + fake.URL + "/v1\n    keys: [env:HUP_PROVIDER_KEY]\nmodels:\n"
		for _, m := range models {
			yaml += "  " + m + ":\n    targets: [{provider: fileprov}]\n"
		}
		yaml += "client_keys:\n  - {name: file-client, key: " + fileKey + "}\n"
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("file-one")
	srv := startLLMProxy(t, "--config", file, "--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile,
		"--admin-password", walkPassword)
	hc := newHTTPClient(t)
	s := adminLogin(t, srv.base(), walkPassword)
	s.save("/admin/models/save", "name", "store-model", "target_provider", "fileprov")
	storeKey := s.createKey("name", "store-client")

	write("file-one", "file-two")
	srv.hangup()
	eventually(t, "the reloaded file's model", func() bool {
		code, _ := chat(t, hc, srv.base(), fileKey, "file-two")
		return code == http.StatusOK
	})
	check := func(when string) {
		t.Helper()
		for _, c := range []struct{ key, model string }{
			{storeKey, "store-model"}, {storeKey, "file-two"}, {fileKey, "store-model"}, {fileKey, "file-one"},
		} {
			if code, body := chat(t, hc, srv.base(), c.key, c.model); code != http.StatusOK {
				t.Errorf("%s: %s with the %s key: %d %s", when, c.model, map[string]string{storeKey: "store", fileKey: "file"}[c.key], code, body)
			}
		}
	}
	check("after SIGHUP")
	if _, page := s.get("/admin/models"); !strings.Contains(page, `data-edit-model="store-model"`) || !strings.Contains(page, `data-model="file-two"`) {
		t.Error("the models page does not show the store's route as editable beside the reloaded file's")
	}
	// The panel's change rebuilds from the file as it is now.
	s.save("/admin/models/save", "name", "store-two", "target_provider", "fileprov")
	check("after a panel change")
	if code, body := chat(t, hc, srv.base(), storeKey, "store-two"); code != http.StatusOK {
		t.Errorf("the new store route: %d %s", code, body)
	}
	if l := leaks(srv.logs.String(), []string{fileKey, storeKey, "sk-hup-provider-key-000000001"}); len(l) > 0 {
		t.Errorf("the log holds %v", l)
	}
}

// A budgeted key's spending is restored from the store at start: a key
// that spent its budget is refused after a restart, in the caller's
// format (Anthropic's here), while a key with budget left still works.
func TestBudgetSpendingSurvivesARestart(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvSecretKey, secretKeyHex())
	const providerKey = "sk-ant-budget-provider-key-0001"
	fake := providertest.NewAnthropic(t, &providertest.Anthropic{Keys: []string{providerKey}}, nil)
	args := []string{"--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile, "--admin-password", walkPassword}
	srv := startLLMProxy(t, args...)
	hc := newHTTPClient(t)
	s := adminLogin(t, srv.base(), walkPassword)
	s.save("/admin/providers/save", "name", "claude", "kind", "anthropic", "base_url", fake.URL, "newkey_value", providerKey)
	// A dollar per input token: one request costs more than "tight" may
	// spend in a day, far less than "roomy".
	s.save("/admin/models/save", "name", "dear", "target_provider", "claude", "target_model", "claude-sonnet-4-5",
		"currency", "usd", "input_per_1m", "1000000", "output_per_1m", "0")
	tight := s.createKey("name", "tight", "budget", "1/day")
	roomy := s.createKey("name", "roomy", "budget", "100000 usd/day")

	ask := func(key string) error {
		c := anthropic.NewClient(aoption.WithBaseURL(srv.base()), aoption.WithAPIKey(key),
			aoption.WithMaxRetries(0), aoption.WithHTTPClient(hc))
		_, err := c.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "dear", MaxTokens: 16,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
		return err
	}
	refusedForBudget := func(when string, err error) {
		t.Helper()
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s: %v, want the budget's 429", when, err)
		}
		raw := ae.RawJSON()
		if !strings.Contains(raw, `"rate_limit_error"`) || !strings.Contains(raw, "budget") {
			t.Errorf("%s: not Anthropic's format, or not the budget: %s", when, raw)
		}
		if ae.Response == nil || ae.Response.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", when)
		}
	}
	for _, key := range []string{tight, roomy} {
		if err := ask(key); err != nil {
			t.Fatalf("first request: %v", err)
		}
	}
	refusedForBudget("before the restart", ask(tight))
	// A budget follows the key, not its name: "tight" renamed keeps what
	// it spent, and a new key given its old name starts from nothing.
	_, page := s.get("/admin/keys")
	var tightID string
	for _, m := range revokeFormRE.FindAllStringSubmatch(page, -1) {
		if m[2] == "tight" {
			tightID = m[1]
		}
	}
	if tightID == "" {
		t.Fatal("no store id for tight on the keys page")
	}
	s.save("/admin/keys/save", "id", tightID, "name", "tight-renamed", "budget", "1/day")
	newTight := s.createKey("name", "tight", "budget", "1/day")

	srv = srv.restart(args...)
	sent := len(fake.Requests())
	refusedForBudget("after the restart, renamed", ask(tight))
	if len(fake.Requests()) != sent {
		t.Error("the over-budget request reached the provider")
	}
	if err := ask(roomy); err != nil {
		t.Errorf("a key with budget left, after the restart: %v", err)
	}
	if err := ask(newTight); err != nil {
		t.Errorf("a new key given a spent key's old name, after the restart: %v", err)
	}
}

// A provider key saved with one LLMPROXY_SECRET_KEY and read with another
// is locked: it does not block an unrelated change in the panel, an edit
// of its provider keeps it, and the right secret key unlocks it again.
func TestLockedProviderKeyDoesNotBlockPanelChanges(t *testing.T) {
	clearEnv(t)
	const sealedKey, openKey = "sk-sealed-provider-key-000000001", "sk-open-provider-key-0000000001"
	right := secretKeyHex()
	t.Setenv(EnvSecretKey, right)
	t.Setenv("OPEN_PROVIDER_KEY", openKey)
	sealedFake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{sealedKey}}, nil)
	openFake := providertest.NewOpenAI(t, &providertest.OpenAI{Keys: []string{openKey}}, nil)
	args := []string{"--data-dir", t.TempDir(), "--upstream-ca", providertest.CA(t).CAFile, "--admin-password", walkPassword}
	srv := startLLMProxy(t, args...)
	hc := newHTTPClient(t)
	s := adminLogin(t, srv.base(), walkPassword)
	s.save("/admin/providers/save", "name", "sealed", "base_url", sealedFake.URL+"/v1", "newkey_name", "main", "newkey_value", sealedKey)
	s.save("/admin/models/save", "name", "sealed-chat", "target_provider", "sealed")
	key := s.createKey("name", "user")
	if code, body := chat(t, hc, srv.base(), key, "sealed-chat"); code != http.StatusOK {
		t.Fatalf("with the right secret key: %d %s", code, body)
	}

	t.Setenv(EnvSecretKey, secretKeyHex())
	srv = srv.restart(args...)
	s = adminLogin(t, srv.base(), walkPassword)
	t.Run("an unrelated change", func(t *testing.T) {
		s.save("/admin/providers/save", "name", "open", "base_url", openFake.URL+"/v1", "newkey_value", "env:OPEN_PROVIDER_KEY")
		s.save("/admin/models/save", "name", "open-chat", "target_provider", "open")
		if code, body := chat(t, hc, srv.base(), key, "open-chat"); code != http.StatusOK {
			t.Errorf("the new route: %d %s", code, body)
		}
	})
	t.Run("an edit of the locked key's provider", func(t *testing.T) {
		_, form := s.get("/admin/providers/edit?name=sealed")
		m := keyNameRE.FindStringSubmatch(form)
		if m == nil || !strings.Contains(form, "key-locked") {
			t.Fatalf("the edit form does not show the locked key:\n%s", pageError(form))
		}
		s.save("/admin/providers/save", "original", "sealed", "name", "sealed", "base_url", sealedFake.URL+"/v1",
			"weight", "2", "keyname_"+m[1], "main")
	})

	t.Setenv(EnvSecretKey, right)
	srv = srv.restart(args...)
	if strings.Contains(srv.logs.String(), "cannot be decrypted") {
		t.Error("the right secret key still leaves a key locked: the edit lost it")
	}
	sent := len(sealedFake.Requests())
	if code, body := chat(t, hc, srv.base(), key, "sealed-chat"); code != http.StatusOK {
		t.Errorf("the sealed route with the right secret key again: %d %s", code, body)
	}
	if saw := sealedFake.Requests()[sent:]; len(saw) != 1 || saw[0].Header.Get("Authorization") != "Bearer "+sealedKey {
		t.Error("the provider did not get its key back")
	}
	if code, _ := chat(t, hc, srv.base(), key, "open-chat"); code != http.StatusOK {
		t.Error("the change made while the key was locked is gone")
	}
}

// The usage row of a caller without a client key carries store.NoClientID,
// not "" (rows written before ids were kept, which count for a key of
// their name): a client key named "operator" is never charged the
// operator's usage at a restart.
func TestUsageRowClientID(t *testing.T) {
	t.Parallel()
	ks, err := access.Compile([]config.ClientKey{{Name: "operator", Key: "ck-named-operator-0000000001"}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := ks.List()[0]
	for _, c := range []struct {
		caller *access.Caller
		want   string
	}{
		{nil, store.NoClientID},
		{&access.Caller{Kind: access.Operator}, store.NoClientID},
		{&access.Caller{Kind: access.Anonymous}, store.NoClientID},
		{&access.Caller{Kind: access.Client, Key: k}, k.ID},
	} {
		if got := clientID(c.caller); got != c.want || got == "" {
			t.Errorf("clientID(%+v) = %q, want %q", c.caller, got, c.want)
		}
	}
}
