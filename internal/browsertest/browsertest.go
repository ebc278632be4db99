// Package browsertest starts the headless Chromium that the pages' tests
// (the dashboard, the admin panel, the panel walk through the binary) drive
// with chromedp, and records what a page did: every request it made and
// every console error, uncaught exception or browser log error (a CSP
// violation is one).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium finds the browser: $LLMPROXY_CHROMIUM, else Debian's chromium
// (or chromium-browser, google-chrome). Without one the test is skipped,
// or fails when LLMPROXY_BROWSER_TESTS=1 (as in CI). what names the test
// for the skip message.
func Chromium(t testing.TB, what string) string {
	t.Helper()
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
	t.Skipf("no Chromium: %s needs it (CI installs it; set LLMPROXY_BROWSER_TESTS=1 to require it)", what)
	return ""
}

// ScreenshotDir is where a test writes its screenshots, made if need be:
// $LLMPROXY_SCREENSHOTS/sub (the variable itself when sub is empty), else
// testdata/screenshots of the package.
func ScreenshotDir(t testing.TB, sub string) string {
	t.Helper()
	dir := filepath.Join("testdata", "screenshots")
	if env := os.Getenv("LLMPROXY_SCREENSHOTS"); env != "" {
		dir = filepath.Join(env, sub)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	t.Logf("screenshots go to %s", abs)
	return abs
}

// Events collects what the page did.
type Events struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

// Listen records one chromedp event.
func (e *Events) Listen(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests = append(e.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			msg := fmt.Sprintf("console.%s", ev.Type)
			if len(ev.Args) > 0 && ev.Args[0].Value != nil {
				msg += " " + string(ev.Args[0].Value)
			}
			e.errors = append(e.errors, msg)
		}
	case *runtime.EventExceptionThrown:
		e.errors = append(e.errors, "exception: "+ev.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			e.errors = append(e.errors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	}
}

// Requests returns the URLs the page asked for so far.
func (e *Events) Requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// Errors returns the console errors, exceptions and log errors so far.
func (e *Events) Errors() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.errors)
}

// Start runs the headless Chromium at chrome (1280×900, a fresh profile,
// no background networking) until the test ends, and returns its browser
// context with the network, log and runtime domains on and every event
// recorded in the returned Events. With acceptDialogs, every confirm()
// is accepted (the panels' delete and revoke buttons ask one).
func Start(t testing.TB, chrome string, acceptDialogs bool) (context.Context, *Events) {
	t.Helper()
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
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	events := &Events{}
	err := chromedp.Listen(ctx, func(ev any) {
		events.Listen(ev)
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok && acceptDialogs {
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	}
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx, events
}

// Click clicks the element sel selects, once it is there on a loaded page.
// chromedp finds the element's node, then clicks it; a page that replaced
// the node in between (a navigation still settling in chromedp's view of
// the page, after a form post) fails the click with "Could not find node
// with given id", before anything was clicked, and the click is tried
// again.
func Click(ctx context.Context, sel string) error {
	ready := fmt.Sprintf(`document.readyState === "complete" && document.querySelector(%q) !== null`, sel)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		return fmt.Errorf("waiting for %s: %w", sel, err)
	}
	for try := 1; ; try++ {
		err := chromedp.Do(ctx, chromedp.Click(sel))
		if err != nil && try < 3 && strings.Contains(err.Error(), "Could not find node with given id") {
			continue
		}
		return err
	}
}
