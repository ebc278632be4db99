package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewRefusesWeakPasswords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	base := e.h.opts
	for _, tc := range []struct {
		name, password string
		ok             bool
	}{
		{"empty", "", false},
		{"eleven characters", "abcdefghijk", false},
		{"twelve characters", "abcdefghijkl", true},
		{"seed 001's example", "123456", false},
		{"a placeholder of twelve characters or more", "administrator", false},
		{"eleven Cyrillic characters", "пароль-длин", false},
		{"placeholder in any case", "My-Secret-Password-123", false},
		{"your- prefix", "your-very-own-password", false},
		{"one repeated character", "aaaaaaaaaaaaaaaa", false},
		{"one repeated Chinese character", "密密密密密密密密密密密密", false},
		{"twelve Chinese characters", "这是一个很长的中文管理密码啊", true},
		{"a real one", testPassword, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Password = tc.password
			_, err := New(o)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%q) = %v, want ok=%v", tc.password, err, tc.ok)
			}
			if err != nil && tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("the error quotes the password: %v", err)
			}
		})
	}
}

func TestNewNeedsItsParts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name   string
		break_ func(*Options)
	}{
		{"store", func(o *Options) { o.Store = nil }},
		{"check", func(o *Options) { o.Check = nil }},
		{"apply", func(o *Options) { o.Apply = nil }},
		{"snapshot", func(o *Options) { o.Snapshot = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := e.h.opts
			tc.break_(&o)
			if _, err := New(o); err == nil {
				t.Fatal("New accepted options without " + tc.name)
			}
		})
	}
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	return nil
}

func TestLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		password string
		tls      bool
		status   int
		addr     string      // the peer; default a remote address
		header   http.Header // what a reverse proxy adds
		secure   bool        // the cookie must be Secure
	}{
		{name: "right password", password: testPassword, status: http.StatusSeeOther},
		{name: "right password over TLS", password: testPassword, tls: true, status: http.StatusSeeOther, secure: true},
		{name: "behind a TLS proxy on this machine", password: testPassword, status: http.StatusSeeOther, secure: true,
			addr: "127.0.0.1:41000", header: http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"198.51.100.20"}}},
		{name: "behind a plain-HTTP proxy on this machine", password: testPassword, status: http.StatusSeeOther,
			addr: "[::1]:41000", header: http.Header{"X-Forwarded-Proto": {"http"}}},
		{name: "a remote client claiming TLS", password: testPassword, status: http.StatusSeeOther,
			addr: "198.51.100.21:41000", header: http.Header{"X-Forwarded-Proto": {"https"}}},
		{name: "wrong password", password: "correct-horse-battery-staple-43", status: http.StatusUnauthorized},
		{name: "empty password", password: "", status: http.StatusUnauthorized},
		{name: "the password with a trailing newline", password: testPassword + "\n", status: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			w := e.do(request{path: "/admin/login", form: url.Values{"password": {tc.password}}, tls: tc.tls, addr: tc.addr, header: tc.header})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			c := sessionCookie(t, w.Result())
			if tc.status != http.StatusSeeOther {
				if c != nil {
					t.Fatal("a wrong password got a session cookie")
				}
				if !strings.Contains(w.Body.String(), `id="login-error"`) {
					t.Error("no message next to the password field")
				}
				return
			}
			if got := w.Header().Get("Location"); got != "/admin/providers" {
				t.Errorf("redirect to %q", got)
			}
			if c == nil {
				t.Fatal("no session cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/admin" || c.Secure != tc.secure {
				t.Errorf("cookie attributes: HttpOnly=%v SameSite=%v Path=%q Secure=%v (want %v)", c.HttpOnly, c.SameSite, c.Path, c.Secure, tc.secure)
			}
			if c.MaxAge <= 0 || time.Duration(c.MaxAge)*time.Second > AbsoluteTimeout {
				t.Errorf("cookie Max-Age %d: want at most the absolute lifetime", c.MaxAge)
			}
			if raw := w.Header().Get("Set-Cookie"); strings.Contains(raw, testPassword) {
				t.Error("the cookie holds the password")
			}
			// The id is stored hashed: the cookie's value is not a key of
			// the session table.
			e.h.mu.Lock()
			for id := range e.h.sessions {
				if string(id[:]) == c.Value {
					t.Error("the session table holds the cookie's value")
				}
			}
			e.h.mu.Unlock()
			e.cookie = c.Value
			if p := e.do(request{path: "/admin/providers"}); p.Code != http.StatusOK {
				t.Errorf("the session does not open the providers page: %d", p.Code)
			}
		})
	}
}

func TestPagesNeedASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, p := range []string{"/admin", "/admin/providers", "/admin/models/new", "/admin/keys", "/admin/test", "/admin/usage", "/admin/audit", "/admin/whatever"} {
		w := e.do(request{path: p})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/login" {
			t.Errorf("GET %s without a session: %d to %q", p, w.Code, w.Header().Get("Location"))
		}
	}
	if w := e.do(request{path: "/admin/api/health"}); w.Code != http.StatusUnauthorized {
		t.Errorf("health without a session: %d", w.Code)
	}
	for _, p := range []string{"/admin/providers/save", "/admin/keys/revoke", "/admin/test", "/admin/logout"} {
		w := e.do(request{path: p, form: url.Values{"name": {"x"}}})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d", p, w.Code)
		}
	}
	if n := len(e.auditLog()); n != 0 {
		t.Errorf("%d audit entries after refused requests", n)
	}
	// A forged cookie is no session either.
	e.cookie = randomToken()
	if w := e.do(request{path: "/admin/providers"}); w.Code != http.StatusSeeOther {
		t.Errorf("a made-up session id: %d", w.Code)
	}
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	attempt := func(addr, password string) int {
		t.Helper()
		return e.do(request{path: "/admin/login", addr: addr, form: url.Values{"password": {password}}}).Code
	}
	const a, b = "198.51.100.7:1000", "198.51.100.8:1000"
	for i := range freeFailures {
		if got := attempt(a, "wrong password "+strconv.Itoa(i)); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, got)
		}
	}
	// Throttled now: even the right password waits, with Retry-After.
	w := e.do(request{path: "/admin/login", addr: a, form: url.Values{"password": {testPassword}}})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", freeFailures, w.Code)
	}
	if sessionCookie(t, w.Result()) != nil {
		t.Fatal("a throttled attempt got a session")
	}
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), `id="login-error"`) {
		t.Error("the throttled page says nothing")
	}
	// Per address: another one is not slowed down. (Same port, other IP;
	// and the same IP from another port is the same client.)
	if got := attempt(b, testPassword); got != http.StatusSeeOther {
		t.Errorf("another address: %d", got)
	}
	if got := attempt("198.51.100.7:2000", testPassword); got != http.StatusTooManyRequests {
		t.Errorf("the same IP from another port: %d", got)
	}
	// IPv6: one /64 is one client.
	for i := range freeFailures {
		attempt("[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:443", "nope")
	}
	if got := attempt("[2001:db8:1:2:ffff::9]:443", testPassword); got != http.StatusTooManyRequests {
		t.Errorf("another address of the same IPv6 /64: %d", got)
	}

	// Behind a reverse proxy on this machine each client has its own
	// throttle, by the address the proxy appended; a remote client's own
	// X-Forwarded-For changes nothing.
	const proxy = "127.0.0.1:50000"
	behind := func(forwarded, password string) int {
		t.Helper()
		return e.do(request{path: "/admin/login", addr: proxy, header: http.Header{"X-Forwarded-For": {forwarded}},
			form: url.Values{"password": {password}}}).Code
	}
	for i := range freeFailures {
		behind("203.0.113.50, 203.0.113.9", "wrong "+strconv.Itoa(i))
	}
	if got := behind("203.0.113.9", testPassword); got != http.StatusTooManyRequests {
		t.Errorf("the throttled client behind the proxy: %d", got)
	}
	if got := behind("203.0.113.50, 203.0.113.10", testPassword); got != http.StatusSeeOther {
		t.Errorf("another client behind the proxy: %d (one throttle for all of them)", got)
	}
	if got := e.do(request{path: "/admin/login", addr: a, header: http.Header{"X-Forwarded-For": {"203.0.113.77"}},
		form: url.Values{"password": {testPassword}}}).Code; got != http.StatusTooManyRequests {
		t.Errorf("a throttled remote client escaped by writing X-Forwarded-For: %d", got)
	}

	// When the wait is over, one more failure doubles it.
	e.advance(time.Duration(retry) * time.Second)
	if got := attempt(a, "still wrong"); got != http.StatusUnauthorized {
		t.Fatalf("after the wait: %d", got)
	}
	w = e.do(request{path: "/admin/login", addr: a, form: url.Values{"password": {testPassword}}})
	second, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code != http.StatusTooManyRequests || second <= retry {
		t.Fatalf("second backoff: %d, Retry-After %d after %d", w.Code, second, retry)
	}
	// The backoff is capped.
	for range 30 {
		e.advance(maxBackoff)
		attempt(a, "wrong again")
	}
	w = e.do(request{path: "/admin/login", addr: a, form: url.Values{"password": {testPassword}}})
	if capped, _ := strconv.Atoi(w.Header().Get("Retry-After")); capped > int(maxBackoff/time.Second) {
		t.Errorf("Retry-After %d beyond the cap", capped)
	}
	// After the wait, the right password works and clears the record.
	e.advance(maxBackoff)
	if got := attempt(a, testPassword); got != http.StatusSeeOther {
		t.Fatalf("the right password after the wait: %d", got)
	}
	if got := attempt(a, "one slip"); got != http.StatusUnauthorized {
		t.Errorf("a slip after a success: %d (the count was not reset)", got)
	}
}

// heldBody is a login form whose first Read reports that the handler got
// that far (the attempt was let through), then waits for release.
type heldBody struct {
	r       io.Reader
	once    sync.Once
	reached chan<- bool
	release <-chan struct{}
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.once.Do(func() { b.reached <- true; <-b.release })
	return b.r.Read(p)
}

// Attempts sent together, their bodies held back until all have arrived,
// are let through one by one against the count: a fresh address gets its
// free tries and no more, one whose wait is over gets one — not as many as
// it sends at once.
func TestLoginThrottleHoldsForAttemptsSentTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	together := func(addr string, n int) (checked int) {
		t.Helper()
		reached := make(chan bool, n) // true: let through; false: answered without reading
		release := make(chan struct{})
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			form := url.Values{"password": {"guess " + strconv.Itoa(i)}}.Encode()
			r := httptest.NewRequest(http.MethodPost, "/admin/login",
				&heldBody{r: strings.NewReader(form), reached: reached, release: release})
			r.RemoteAddr = addr
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			wg.Go(func() {
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				codes[i] = w.Code
				if w.Code == http.StatusTooManyRequests {
					reached <- false
				}
			})
		}
		for range n { // every attempt let through or turned away, none answered yet
			<-reached
		}
		close(release)
		wg.Wait()
		for i, c := range codes {
			switch c {
			case http.StatusUnauthorized:
				checked++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("attempt %d: %d", i, c)
			}
		}
		return checked
	}
	const addr = "198.51.100.70:1000"
	if got := together(addr, 20); got != freeFailures {
		t.Fatalf("20 attempts at once from a fresh address: %d checked against the password, want %d", got, freeFailures)
	}
	e.advance(maxBackoff) // the wait is over: one attempt is due
	if got := together(addr, 20); got != 1 {
		t.Fatalf("20 attempts at once after the wait: %d checked against the password, want 1", got)
	}
	// The right password, let through, still clears the count.
	e.advance(maxBackoff)
	if got := e.do(request{path: "/admin/login", addr: addr, form: url.Values{"password": {testPassword}}}).Code; got != http.StatusSeeOther {
		t.Fatalf("the right password after the wait: %d", got)
	}
	if got := together(addr, 8); got != freeFailures {
		t.Fatalf("after a success, 8 attempts at once: %d checked, want %d", got, freeFailures)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		steps []time.Duration // time passing before each request, all but the last within the session
		poll  bool            // the steps are health polls (which do not keep a session alive)
	}{
		{"idle for longer than the idle timeout", []time.Duration{IdleTimeout + time.Second}, false},
		{"active, until the absolute timeout", func() []time.Duration {
			var s []time.Duration
			for range int(AbsoluteTimeout / (20 * time.Minute)) {
				s = append(s, 20*time.Minute)
			}
			return append(s, 20*time.Minute)
		}(), false},
		{"only the live health poll, past the idle timeout", []time.Duration{10 * time.Minute, 10 * time.Minute, 10 * time.Minute, time.Minute}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			e.login()
			for i, d := range tc.steps {
				e.advance(d)
				last := i == len(tc.steps)-1
				path := "/admin/providers"
				if tc.poll && !last {
					path = "/admin/api/health"
				}
				w := e.do(request{path: path})
				switch {
				case !last && w.Code != http.StatusOK:
					t.Fatalf("step %d (%v in): %d, want the session still open", i, d, w.Code)
				case last && (w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/login"):
					t.Fatalf("last step: %d to %q, want the login page", w.Code, w.Header().Get("Location"))
				}
			}
			// An expired session's token opens nothing either.
			if w := e.do(request{path: "/admin/keys/revoke", form: url.Values{"id": {"1"}}}); w.Code != http.StatusUnauthorized {
				t.Errorf("POST with the expired session: %d", w.Code)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	old := e.cookie
	w := e.do(request{path: "/admin/logout", form: url.Values{}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/login" {
		t.Fatalf("logout: %d to %q", w.Code, w.Header().Get("Location"))
	}
	c := sessionCookie(t, w.Result())
	if c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout did not clear the cookie: %+v", c)
	}
	// The old cookie, replayed, is worth nothing.
	e.cookie = old
	if w := e.do(request{path: "/admin/providers"}); w.Code != http.StatusSeeOther {
		t.Errorf("the old session after logout: %d", w.Code)
	}
	// Logging out needs the CSRF token too (a forged logout is a nuisance).
	e.login()
	if w := e.do(request{path: "/admin/logout", form: url.Values{}, noCSRF: true}); w.Code != http.StatusForbidden {
		t.Errorf("logout without the token: %d", w.Code)
	}
}

// The token in the X-CSRF-Token header (a script's way) saves every form
// as the form field does; a form that cannot be read is a 400 and changes
// nothing.
func TestCSRFHeaderOnEveryForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/admin/providers/save", formValues("name", "by-header", "base_url", "https://api.example.com/v1", "newkey_value", "env:STORE_ENV_KEY")},
		{"/admin/models/save", formValues("name", "by-header-*", "target_provider", "fileprov", "target_model", "gpt-4o")},
		{"/admin/keys/save", formValues("name", "by-header")},
	} {
		before := e.revision()
		w := e.do(request{path: tc.path, form: tc.form, noCSRF: true, header: http.Header{"X-Csrf-Token": {e.csrf}}})
		if w.Code != http.StatusSeeOther || e.revision() == before {
			t.Errorf("%s with the token in the header: %d (name error %q), store changed %v",
				tc.path, w.Code, fieldErrorOf(w.Body.String(), "name"), e.revision() != before)
		}
	}
	for name, body := range map[string]string{
		"a bad escape": "name=x%zz&csrf=" + url.QueryEscape(e.csrf),
		"over 1 MiB":   "name=" + strings.Repeat("a", 1<<20) + "&csrf=" + url.QueryEscape(e.csrf),
	} {
		r := httptest.NewRequest(http.MethodPost, "/admin/keys/save", strings.NewReader(body))
		r.RemoteAddr = testClientAddr
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Csrf-Token", e.csrf)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: e.cookie})
		before := e.revision()
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || e.revision() != before {
			t.Errorf("%s: %d %.200q, store changed %v; want 400 and no change", name, w.Code, w.Body, e.revision() != before)
		}
		if strings.Contains(w.Body.String(), "%zz") || strings.Contains(w.Body.String(), "aaaa") {
			t.Errorf("%s: the answer echoes the form: %q", name, w.Body)
		}
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	other := newEnv(t, envOptions{})
	other.login()
	form := url.Values{"name": {"csrf-test"}, "base_url": {"https://api.example.com/v1"}}
	// The right token with its first character changed (a random token
	// may begin with the replacement itself).
	wrong := "x" + e.csrf[1:]
	if e.csrf[0] == 'x' {
		wrong = "y" + e.csrf[1:]
	}
	for _, tc := range []struct {
		name   string
		q      request
		status int
	}{
		{"no token", request{noCSRF: true}, http.StatusForbidden},
		{"wrong token", request{form: url.Values{"csrf": {wrong}}}, http.StatusForbidden},
		{"another session's token", request{form: url.Values{"csrf": {other.csrf}}}, http.StatusForbidden},
		{"cross-site, right token", request{header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}, http.StatusForbidden},
		{"another origin, right token", request{header: http.Header{"Origin": {"https://evil.example"}}}, http.StatusForbidden},
		{"token in the header", request{noCSRF: true, header: http.Header{"X-Csrf-Token": {e.csrf}}}, http.StatusSeeOther},
		{"same origin, right token", request{header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.path = "/admin/providers/save"
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			for k, v := range q.form {
				f[k] = v
			}
			f.Set("name", "csrf-"+strings.ReplaceAll(tc.name, " ", "-")[:8])
			f.Set("newkey_value", "env:STORE_ENV_KEY")
			q.form = f
			before := e.revision()
			w := e.do(q)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if changed := e.revision() != before; changed != (tc.status == http.StatusSeeOther) {
				t.Errorf("store changed: %v", changed)
			}
		})
	}
	// The login form is guarded against cross-site posts too.
	w := e.do(request{path: "/admin/login", form: url.Values{"password": {testPassword}}, noCSRF: true,
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}}})
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site login: %d", w.Code)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	anon := []request{
		{path: "/admin"}, {path: "/admin/login"}, {path: "/admin/providers"}, {path: "/admin/api/health"},
		{path: "/admin/assets/admin.css"}, {path: "/admin/assets/admin.js"}, {path: "/admin/assets/nope.js"},
		{path: "/admin/assets/../admin.go"}, {path: "/admin/login", form: url.Values{"password": {"nope"}}},
		{path: "/admin/login", form: url.Values{"password": {"x"}}, header: http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{path: "/admin/providers?lang=zh"},
	}
	check := func(q request) {
		t.Helper()
		w := e.do(q)
		h := w.Header()
		if h.Get("Content-Security-Policy") != CSP {
			t.Errorf("%s %s (%d): CSP %q", q.method, q.path, w.Code, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s (%d): missing a security header: %v", q.path, w.Code, h)
		}
		if !strings.HasPrefix(q.path, "/admin/assets/") && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", q.path, h.Get("Cache-Control"))
		}
	}
	for _, q := range anon {
		check(q)
	}
	e.login()
	for _, p := range allPages {
		check(request{path: p})
	}
	check(request{path: "/admin/keys/revoke", form: url.Values{"id": {"999"}}})
	check(request{path: "/admin/keys/revoke", form: url.Values{"id": {"999"}}, noCSRF: true})
	if !strings.Contains(CSP, "default-src 'self'") || strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "http") {
		t.Errorf("CSP allows more than 'self': %s", CSP)
	}
}

func TestLanguageSwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.login()
	w := e.do(request{path: "/admin/models/edit?name=x&lang=zh"})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/admin/models/edit?name=x" {
		t.Fatalf("switch: %d to %q", w.Code, w.Header().Get("Location"))
	}
	var lang *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == LangCookie {
			lang = c
		}
	}
	if lang == nil || lang.Value != "zh" || lang.Path != "/admin" {
		t.Fatalf("language cookie %+v", lang)
	}
	r := request{path: "/admin/providers", header: http.Header{"Cookie": {LangCookie + "=zh"}, "Accept-Language": {"en"}}}
	if body := e.do(r).Body.String(); !strings.Contains(body, `lang="zh-CN"`) || !strings.Contains(body, "服务商") {
		t.Error("the cookie's language does not win over Accept-Language")
	}
	// Anything but en or zh is ignored.
	if w := e.do(request{path: "/admin/providers?lang=fr"}); w.Code != http.StatusOK {
		t.Errorf("?lang=fr: %d", w.Code)
	}
}
