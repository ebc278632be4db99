package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/socket"
)

// twoProviders is the attempt loop's usual ground: A with keys a1 and a2,
// B with b1, and the model m served by A then B (fallback).
func twoProviders(t *testing.T, w *world, maxAttempts int) *Snapshot {
	t.Helper()
	cfg := newConfig(t, openaiProvider("A", "a1", "a2"), openaiProvider("B", "b1"), route("m", "A", "B"))
	cfg.Gateway.MaxAttempts = maxAttempts
	return w.compile(cfg)
}

// The providers' own words that must never reach the client when they
// speak of llmproxy's key.
const providerSecretWords = "Incorrect API key provided: sk-a1-…cdef, organization org-operator"

// The order of (provider, key) attempts for each outcome of the first
// attempt, and what the client gets.
func TestAttemptOrder(t *testing.T) {
	t.Parallel()
	dialErr := &socket.Error{Op: socket.OpDial, Err: errors.New("connection refused")}
	headerTimeout := &socket.Error{Op: socket.OpRead, Sent: true, Err: socket.ErrResponseHeaderTimeout}
	for _, tc := range []struct {
		name        string
		maxAttempts int
		scripts     map[string][]reply
		attempts    []string
		status      int    // what the client gets: an answer's status or an *Error's
		code        string // the *Error's code, when the gateway answers itself
		body        string // the answer's body, when it is the provider's
	}{
		{name: "success", scripts: nil, attempts: []string{"A/a1"}, status: 200, body: okBody},
		{name: "429 rotates to the next key", scripts: map[string][]reply{"A/a1": {status(429, `{"error":"slow down"}`, "Retry-After", "7")}},
			attempts: []string{"A/a1", "A/a2"}, status: 200, body: okBody},
		{name: "402 rotates to the next key", scripts: map[string][]reply{"A/a1": {status(402, `{"error":"pay"}`)}},
			attempts: []string{"A/a1", "A/a2"}, status: 200},
		{name: "429 insufficient_quota rotates to the next key", scripts: map[string][]reply{"A/a1": {status(429, `{"error":{"code":"insufficient_quota"}}`)}},
			attempts: []string{"A/a1", "A/a2"}, status: 200},
		{name: "401 rotates to the next key", scripts: map[string][]reply{"A/a1": {status(401, providerSecretWords)}},
			attempts: []string{"A/a1", "A/a2"}, status: 200},
		{name: "403 rotates to the next key", scripts: map[string][]reply{"A/a1": {status(403, providerSecretWords)}},
			attempts: []string{"A/a1", "A/a2"}, status: 200},
		{name: "500 moves to the next target", scripts: map[string][]reply{"A": {status(500, "oops")}},
			attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "502 moves to the next target", scripts: map[string][]reply{"A": {status(502, "")}}, attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "503 moves to the next target", scripts: map[string][]reply{"A": {status(503, "")}}, attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "504 moves to the next target", scripts: map[string][]reply{"A": {status(504, "")}}, attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "408 moves to the next target", scripts: map[string][]reply{"A": {status(408, "")}}, attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "connection failure moves to the next target", scripts: map[string][]reply{"A": {failure(dialErr)}},
			attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "timeout before the headers moves to the next target", scripts: map[string][]reply{"A": {failure(headerTimeout)}},
			attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "context deadline moves to the next target", scripts: map[string][]reply{"A": {failure(context.DeadlineExceeded)}},
			attempts: []string{"A/a1", "B/b1"}, status: 200},
		{name: "200 broken before its first byte moves on", scripts: map[string][]reply{"A": {brokenBody(&socket.Error{Op: socket.OpResponse, Err: errTest})}},
			attempts: []string{"A/a1", "B/b1"}, status: 200, body: okBody},
		{name: "400 is the client's own", scripts: map[string][]reply{"A": {status(400, `{"error":"bad messages"}`)}},
			attempts: []string{"A/a1"}, status: 400, body: `{"error":"bad messages"}`},
		{name: "404 is the client's own", scripts: map[string][]reply{"A": {status(404, `nope`)}}, attempts: []string{"A/a1"}, status: 404, body: "nope"},
		{name: "413 is the client's own", scripts: map[string][]reply{"A": {status(413, `big`)}}, attempts: []string{"A/a1"}, status: 413, body: "big"},
		{name: "422 is the client's own", scripts: map[string][]reply{"A": {status(422, `bad`)}}, attempts: []string{"A/a1"}, status: 422, body: "bad"},
		{name: "501 is not retried", scripts: map[string][]reply{"A": {status(501, `no`)}}, attempts: []string{"A/a1"}, status: 501, body: "no"},
		{name: "5xx everywhere: the last answer as it is",
			scripts:  map[string][]reply{"A/a1": {status(500, "first")}, "B": {status(502, "second")}, "A/a2": {status(503, "third", "X-Upstream", "a2")}},
			attempts: []string{"A/a1", "B/b1", "A/a2"}, status: 503, body: "third"},
		{name: "max_attempts 2 bounds the attempts", maxAttempts: 2,
			scripts:  map[string][]reply{"A": {status(500, "first")}, "B": {status(500, "second")}},
			attempts: []string{"A/a1", "B/b1"}, status: 500, body: "second"},
		{name: "max_attempts 1 bounds the attempts", maxAttempts: 1,
			scripts:  map[string][]reply{"A": {status(500, "first")}},
			attempts: []string{"A/a1"}, status: 500, body: "first"},
		{name: "every key rate limited: llmproxy's own 429",
			scripts:  map[string][]reply{"A": {status(429, providerSecretWords, "Retry-After", "7")}, "B": {status(429, providerSecretWords, "Retry-After", "9")}},
			attempts: []string{"A/a1", "A/a2", "B/b1"}, status: 429, code: "rate_limit_exceeded"},
		{name: "every key refused: llmproxy's own 502",
			scripts:  map[string][]reply{"A": {status(401, providerSecretWords)}, "B": {status(403, providerSecretWords)}},
			attempts: []string{"A/a1", "A/a2", "B/b1"}, status: 502, code: "provider_key_rejected"},
		{name: "every key out of quota: llmproxy's own 429 insufficient_quota",
			scripts:  map[string][]reply{"A": {status(402, providerSecretWords)}, "B": {status(429, `{"error":{"code":"insufficient_quota","message":"`+providerSecretWords+`"}}`)}},
			attempts: []string{"A/a1", "A/a2", "B/b1"}, status: 429, code: "insufficient_quota"},
		{name: "a 5xx after a refused key: the 5xx as it is",
			scripts:  map[string][]reply{"A/a1": {status(401, providerSecretWords)}, "A/a2": {status(500, "down")}, "B": {status(500, "down too")}},
			attempts: []string{"A/a1", "A/a2", "B/b1"}, status: 500, body: "down too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			for who, replies := range tc.scripts {
				w.script(who, replies...)
			}
			snap := twoProviders(t, w, tc.maxAttempts)
			res := w.do(snap, chatRequest("m"), nil)
			if got := w.attempts(); !equalStrings(got, tc.attempts) {
				t.Errorf("attempts %v, want %v", got, tc.attempts)
			}
			if got := statusOf(res); got != tc.status {
				t.Fatalf("client got %d (err %v), want %d", got, res.err, tc.status)
			}
			w.allClosed(t)
			if tc.code != "" {
				ge := gatewayError(t, res.err)
				if ge.Code != tc.code {
					t.Errorf("code %q, want %q", ge.Code, tc.code)
				}
				if strings.Contains(ge.Message, "sk-") || strings.Contains(ge.Message, "org-operator") || strings.Contains(ge.Message, "Incorrect") {
					t.Errorf("llmproxy's error quotes the provider: %q", ge.Message)
				}
				if tc.status == 429 && ge.RetryAfter <= 0 {
					t.Errorf("a 429 without RetryAfter")
				}
				return
			}
			if res.err != nil {
				t.Fatalf("err %v", res.err)
			}
			if tc.body != "" && string(res.body) != tc.body {
				t.Errorf("body %q, want %q", res.body, tc.body)
			}
			// Every attempt carried the whole body: the buffer is replayed.
			for _, s := range w.requests() {
				if !strings.Contains(string(s.body), `"messages":[{"role":"user","content":"hi"}]`) {
					t.Errorf("%s got the body %q", s, s.body)
				}
			}
			for _, tg := range snap.routes["m"].targets {
				if n := tg.bal.Inflight.Load(); n != 0 {
					t.Errorf("%s: %d requests still counted in flight", tg.provider.Name, n)
				}
			}
		})
	}
}

// What each outcome does to the key's health and the provider's breaker.
func TestAttemptOutcomeHealth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		first    reply
		date     time.Duration // Retry-After: an HTTP date this far ahead
		state    KeyState
		cool     time.Duration // expected cooldown of a1 from the request's time
		slack    time.Duration // what the header's precision allows
		reason   string
		failures int // A's breaker
	}{
		{name: "Retry-After seconds", first: status(429, "", "Retry-After", "7"), state: KeyCooling, cool: 7 * time.Second, reason: "rate limited"},
		{name: "Retry-After fraction", first: status(429, "", "Retry-After", "2.5"), state: KeyCooling, cool: 2500 * time.Millisecond, reason: "rate limited"},
		{name: "Retry-After HTTP date", first: status(429, ""), date: 120 * time.Second,
			state: KeyCooling, cool: 120 * time.Second, slack: time.Second, reason: "rate limited"},
		{name: "retry-after-ms", first: status(429, "", "retry-after-ms", "1500"), state: KeyCooling, cool: 1500 * time.Millisecond, reason: "rate limited"},
		{name: "retry-after-ms wins over Retry-After", first: status(429, "", "retry-after-ms", "1500", "Retry-After", "30"),
			state: KeyCooling, cool: 1500 * time.Millisecond, reason: "rate limited"},
		{name: "no Retry-After: the default", first: status(429, ""), state: KeyCooling, cool: defaultCooldown, reason: "rate limited"},
		{name: "a Retry-After in the past: the default", first: status(429, "", "Retry-After", "Mon, 02 Jan 2006 15:04:05 GMT"),
			state: KeyCooling, cool: defaultCooldown, reason: "rate limited"},
		{name: "402 rests an hour", first: status(402, ""), state: KeyCooling, cool: quotaCooldown, reason: "quota exhausted"},
		{name: "insufficient_quota rests an hour", first: status(429, `{"error":{"type":"insufficient_quota"}}`, "Retry-After", "3"),
			state: KeyCooling, cool: quotaCooldown, reason: "quota exhausted"},
		{name: "401 disables", first: status(401, ""), state: KeyDisabled, reason: "the provider refused the key (HTTP 401)"},
		{name: "403 disables", first: status(403, ""), state: KeyDisabled, reason: "the provider refused the key (HTTP 403)"},
		{name: "500 counts toward the breaker, not the key", first: status(500, ""), state: KeyOK, failures: 1},
		{name: "no connection counts toward the breaker", first: failure(&socket.Error{Op: socket.OpDial, Err: errTest}), state: KeyOK, failures: 1},
		{name: "broken before the first byte counts toward the breaker", first: brokenBody(errTest), state: KeyOK, failures: 1},
		{name: "400 changes nothing", first: status(400, ""), state: KeyOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			before := time.Now()
			if tc.date > 0 {
				tc.first.header.Set("Retry-After", before.Add(tc.date).UTC().Format(http.TimeFormat))
			}
			w.script("A/a1", tc.first)
			snap := twoProviders(t, w, 0)
			w.do(snap, chatRequest("m"), nil)
			after := time.Now()
			a1 := keyOf(t, snap, "A", "a1")
			state, until, reason := a1.Health().State(after)
			if state != tc.state || reason != tc.reason {
				t.Errorf("a1: %s %q, want %s %q", state, reason, tc.state, tc.reason)
			}
			if tc.state == KeyCooling {
				lo, hi := before.Add(tc.cool-tc.slack), after.Add(tc.cool+tc.slack)
				if until.Before(lo) || until.After(hi) {
					t.Errorf("a1 cools until %v from the request, want %v", until.Sub(before), tc.cool)
				}
			}
			if got := snap.providers["A"].breaker.fails; got != tc.failures {
				t.Errorf("A's breaker counts %d failures, want %d", got, tc.failures)
			}
			if st, _, _ := keyOf(t, snap, "A", "a2").Health().State(after); st != KeyOK {
				t.Errorf("a2 is %s", st)
			}
		})
	}
}

// Anthropic answers a spent balance with 400 "credit balance is too low":
// a quota, not the client's mistake. Any other 400 is the client's own.
func TestAnthropicCreditBalance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		body     string
		attempts []string
		status   int
	}{
		{"credit balance", `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`,
			[]string{"C/c1", "C/c2"}, 200},
		{"another 400", `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"}}`,
			[]string{"C/c1"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.script("C/c1", status(400, tc.body))
			w.script("C/c2", answer200(`{"type":"message"}`))
			cfg := newConfig(t, config.Provider{Name: "C", Kind: "anthropic", BaseURL: "https://api.anthropic.com",
				Keys: []string{secret("c1"), secret("c2")}}, route("claude", "C"))
			snap := w.compile(cfg)
			r := messagesRequest("claude")
			res := w.do(snap, r, nil)
			w.allClosed(t)
			if got := w.attempts(); !equalStrings(got, tc.attempts) {
				t.Errorf("attempts %v, want %v", got, tc.attempts)
			}
			if statusOf(res) != tc.status {
				t.Errorf("status %d (%v), want %d", statusOf(res), res.err, tc.status)
			}
			if tc.status == 400 && string(res.body) != tc.body {
				t.Errorf("the client's 400 changed: %q", res.body)
			}
			state, _, _ := keyOf(t, snap, "C", "c1").Health().State(time.Now())
			if want := map[int]KeyState{200: KeyCooling, 400: KeyOK}[tc.status]; state != want {
				t.Errorf("c1 is %s, want %s", state, want)
			}
		})
	}
}

func messagesRequest(model string) *http.Request {
	r := chatRequest(model)
	r.URL.Path = "/v1/messages"
	r.RequestURI = "/v1/messages"
	r.Header.Set("Anthropic-Version", "2023-06-01")
	return r
}

// Failures that are nobody else's to fix end the loop at once: the client
// left, the address guard refused, or the client's own body failed.
func TestAttemptStopsAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		cancel    bool
		firstByte bool // a 200 whose body fails before its first byte
	}{
		{"client gone", context.Canceled, true, false},
		{"client gone before the first byte", context.Canceled, true, true},
		{"address guard", &netguard.BlockedError{Why: "loopback"}, false, false},
		{"the client's body failed", &socket.Error{Op: socket.OpBody, Err: errTest}, false, false},
		{"the client's body too large", &http.MaxBytesError{Limit: 10}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tc.firstByte {
				w.script("A", brokenBody(tc.err))
			} else {
				w.script("A", failure(tc.err))
			}
			snap := twoProviders(t, w, 0)
			r := chatRequest("m")
			if tc.cancel {
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				r = r.WithContext(ctx)
			}
			res := w.do(snap, r, nil)
			if got := w.attempts(); !equalStrings(got, []string{"A/a1"}) {
				t.Errorf("attempts %v, want only A/a1", got)
			}
			if !errors.Is(res.err, tc.err) {
				t.Errorf("err %v, want %v", res.err, tc.err)
			}
			if n := snap.providers["A"].breaker.fails; n != 0 {
				t.Errorf("A's breaker counted %d failures for a failure that was not A's", n)
			}
			if n := snap.routes["m"].targets[0].bal.Inflight.Load(); n != 0 {
				t.Errorf("in flight: %d", n)
			}
		})
	}
}

// A 200 whose body breaks before its first byte, when no other attempt is
// possible, is handed to the client: the error surfaces on its read.
func TestBrokenFirstByteWithNothingElseToTry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("A", brokenBody(errTest))
	snap := w.compile(newConfig(t, openaiProvider("A", "a1"), route("m", "A")))
	res := w.do(snap, chatRequest("m"), nil)
	if res.err != nil || res.resp == nil || res.resp.StatusCode != 200 {
		t.Fatalf("got %v %v, want the 200", res.resp, res.err)
	}
	if !errors.Is(res.readErr, errTest) {
		t.Errorf("reading the body: %v, want the provider's failure", res.readErr)
	}
	w.allClosed(t)
	if got := w.attempts(); !equalStrings(got, []string{"A/a1"}) {
		t.Errorf("attempts %v", got)
	}
}

// A body that breaks after its first byte is never retried: the client
// has seen a byte, and the failure surfaces on its read.
func TestNoRetryAfterTheFirstByte(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("A", reply{status: 200, header: http.Header{"Content-Type": {"text/event-stream"}}, body: "data: {}\n\n", bodyErr: errTest})
	snap := twoProviders(t, w, 0)
	res := w.do(snap, chatRequest("m"), nil)
	if res.err != nil || res.resp.StatusCode != 200 {
		t.Fatalf("got %v %v", res.resp, res.err)
	}
	if string(res.body) != "data: {}\n\n" || !errors.Is(res.readErr, errTest) {
		t.Errorf("body %q, read error %v: want the first bytes, then the failure", res.body, res.readErr)
	}
	if got := w.attempts(); !equalStrings(got, []string{"A/a1"}) {
		t.Errorf("attempts %v, want one", got)
	}
}

// All keys disabled: llmproxy's own 503, and no provider is called.
func TestAllKeysDisabled(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := twoProviders(t, w, 0)
	for _, k := range []*Key{keyOf(t, snap, "A", "a1"), keyOf(t, snap, "A", "a2"), keyOf(t, snap, "B", "b1")} {
		k.Health().Disable("test")
	}
	res := w.do(snap, chatRequest("m"), nil)
	ge := gatewayError(t, res.err)
	if ge.Status != http.StatusServiceUnavailable || ge.Code != "no_provider_key" {
		t.Errorf("got %d %s, want 503 no_provider_key", ge.Status, ge.Code)
	}
	if got := w.attempts(); len(got) != 0 {
		t.Errorf("attempts %v, want none", got)
	}
}

// A provider whose keys cannot be used here (the admin store's, locked)
// still holds keys: its requests are refused, never sent without a key;
// another target with keys is used instead.
func TestUnusableKeysAreNotNoKeys(t *testing.T) {
	t.Parallel()
	locked := openaiProvider("L")
	locked.Unusable = 2
	w := newWorld(t)
	snap := w.compile(newConfig(t, locked, route("m", "L")))
	res := w.do(snap, chatRequest("m"), nil)
	ge := gatewayError(t, res.err)
	if ge.Status != http.StatusServiceUnavailable || ge.Code != "no_provider_key" || !strings.Contains(ge.Message, "LLMPROXY_SECRET_KEY") {
		t.Errorf("got %d %s %q, want 503 no_provider_key naming the secret key", ge.Status, ge.Code, ge.Message)
	}
	if got := w.attempts(); len(got) != 0 {
		t.Errorf("attempts %v, want none", got)
	}

	w = newWorld(t)
	snap = w.compile(newConfig(t, locked, openaiProvider("B", "b1"), route("m", "L", "B")))
	if res := w.do(snap, chatRequest("m"), nil); res.err != nil {
		t.Fatal(res.err)
	}
	if got := w.attempts(); len(got) != 1 || got[0] != "B/b1" {
		t.Errorf("attempts %v, want B/b1 only", got)
	}
}

// Every key cooling: the one that comes back soonest is still tried.
func TestAllKeysCoolingTheSoonestIsTried(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	snap := twoProviders(t, w, 0)
	now := time.Now()
	keyOf(t, snap, "A", "a1").Health().RateLimited(now, 60*time.Second)
	keyOf(t, snap, "A", "a2").Health().RateLimited(now, 30*time.Second)
	keyOf(t, snap, "B", "b1").Health().RateLimited(now, 90*time.Second)
	res := w.do(snap, chatRequest("m"), nil)
	if statusOf(res) != 200 {
		t.Fatalf("status %d %v", statusOf(res), res.err)
	}
	if got := w.attempts(); !equalStrings(got, []string{"A/a2"}) {
		t.Errorf("attempts %v, want [A/a2] (the soonest back)", got)
	}
}

// A cooling key is a last resort: while another target has a key that is
// not cooling, that target goes first.
//
// BUG: pickKey returns a cooling key of the first target (its soonest)
// even when a later target has a healthy key, so a provider with one key
// that answered 429 is tried again on every request during its cooldown
// (and, after a 429, another cooling key of the same provider is tried
// before a healthy provider): the cooldown does not keep requests off it,
// and with max_attempts 2 the healthy provider may never be reached.
func TestCoolingKeyIsALastResort(t *testing.T) {
	t.Parallel()
	t.Run("the first target's only key cools", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		snap := w.compile(newConfig(t, openaiProvider("A", "a1"), openaiProvider("B", "b1"), route("m", "A", "B")))
		keyOf(t, snap, "A", "a1").Health().RateLimited(time.Now(), time.Minute)
		w.do(snap, chatRequest("m"), nil)
		if got := w.attempts(); !equalStrings(got, []string{"B/b1"}) {
			t.Errorf("attempts %v, want [B/b1]: A's only key is cooling", got)
		}
	})
	t.Run("after a 429 the other key cools", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.script("A", status(429, ""))
		cfg := newConfig(t, openaiProvider("A", "a1", "a2"), openaiProvider("B", "b1"), route("m", "A", "B"))
		cfg.Gateway.MaxAttempts = 2
		snap := w.compile(cfg)
		keyOf(t, snap, "A", "a2").Health().RateLimited(time.Now(), time.Minute)
		res := w.do(snap, chatRequest("m"), nil)
		if got := w.attempts(); !equalStrings(got, []string{"A/a1", "B/b1"}) {
			t.Errorf("attempts %v, want [A/a1 B/b1]: a2 is cooling and B is healthy", got)
		}
		if statusOf(res) != 200 {
			t.Errorf("status %d (%v), want B's 200", statusOf(res), res.err)
		}
	})
}

// The answer kept for the client speaks of llmproxy's key whenever the
// attempt that produced it carried one, whatever the last attempt was.
//
// BUG: exhausted decides "injected" from the last attempt's key
// (report.Key), not from the attempt whose answer it kept: when a keyed
// provider refuses llmproxy's key (401) and a keyless provider then fails
// without an answer, the client gets the provider's 401 as it is — quoting
// the provider's words about llmproxy's key and telling the client its own
// key is wrong — instead of 502 provider_key_rejected.
func TestKeptAnswerJudgedByItsOwnAttempt(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("A", status(401, providerSecretWords))
	w.script("L", failure(&socket.Error{Op: socket.OpDial, Err: errTest}))
	cfg := newConfig(t, openaiProvider("A", "a1"), config.Provider{Name: "L", BaseURL: "http://ollama.lan:11434/v1"}, route("m", "A", "L"))
	snap := w.compile(cfg)
	res := w.do(snap, chatRequest("m"), nil)
	if got := w.attempts(); !equalStrings(got, []string{"A/a1", "L/-"}) {
		t.Fatalf("attempts %v", got)
	}
	if res.resp != nil {
		t.Fatalf("the client got the provider's %d %q, want llmproxy's 502 provider_key_rejected", res.resp.StatusCode, res.body)
	}
	if ge := gatewayError(t, res.err); ge.Code != "provider_key_rejected" {
		t.Errorf("code %s", ge.Code)
	}
}

// llmproxy's own 429 says when the first key comes back.
func TestRateLimitErrorRetryAfter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("A/a1", status(429, "", "Retry-After", "20"))
	w.script("A/a2", status(429, "", "Retry-After", "7"))
	w.script("B/b1", status(429, "", "Retry-After", "9"))
	snap := twoProviders(t, w, 0)
	res := w.do(snap, chatRequest("m"), nil)
	ge := gatewayError(t, res.err)
	if ge.Status != 429 || ge.RetryAfter <= 0 || ge.RetryAfter > 7*time.Second {
		t.Errorf("got %d RetryAfter %v, want 429 and the soonest key's 7s", ge.Status, ge.RetryAfter)
	}
}

// The client's own key on a keyless preset with several upstreams: its
// 401 comes back as it is, and nothing is disabled or retried.
func TestKeylessPresetPassesTheClientsRefusal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.script("local", status(401, `{"error":"bad key"}`))
	cfg := config.Default()
	cfg.Presets = map[string]presetOverride{"local": {Upstreams: []string{"https://a.lan", "https://b.lan"}}}
	snap := w.compile(cfg)
	prov := snap.Preset("local")
	r := httptestRequest(http.MethodPost, "/local/v1/chat/completions", `{"model":"x"}`)
	r.Header.Set("Authorization", "Bearer the-clients-own-key")
	plan, err := snap.PresetPlan(r, prov, "/v1/chat/completions", &access.Caller{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res := w.roundTrip(plan, r)
	if res.err != nil || res.resp.StatusCode != 401 || string(res.body) != `{"error":"bad key"}` {
		t.Fatalf("got %v %q %v, want the 401 as it is", res.resp, res.body, res.err)
	}
	reqs := w.requests()
	if len(reqs) != 1 {
		t.Fatalf("attempts %v, want one", w.attempts())
	}
	if got := reqs[0].header.Get("Authorization"); got != "Bearer the-clients-own-key" {
		t.Errorf("the client's own key did not go upstream: %q", got)
	}
}

// A keyless preset's upstreams take turns and fail over on 5xx, 429 and
// connection failures before the first byte.
func TestPresetUpstreamsFailOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		first reply
	}{
		{"503", status(503, "")},
		{"429", status(429, "")},
		{"no connection", failure(&socket.Error{Op: socket.OpDial, Err: errTest})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			var hosts []string
			w.script("local", tc.first, answer200("{}"))
			cfg := config.Default()
			cfg.Presets = map[string]presetOverride{"local": {Upstreams: []string{"https://a.lan", "https://b.lan"}}}
			snap := w.compile(cfg)
			r := httptestRequest(http.MethodPost, "/local/v1/chat/completions", `{"model":"x"}`)
			plan, err := snap.PresetPlan(r, snap.Preset("local"), "/v1/chat/completions", &access.Caller{}, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			res := w.roundTrip(plan, r)
			if statusOf(res) != 200 {
				t.Fatalf("status %d %v", statusOf(res), res.err)
			}
			for _, s := range w.requests() {
				hosts = append(hosts, s.url.Host)
				if string(s.body) != `{"model":"x"}` {
					t.Errorf("%s got %q", s.url.Host, s.body)
				}
			}
			if len(hosts) != 2 || hosts[0] == hosts[1] {
				t.Errorf("upstreams tried %v, want both", hosts)
			}
		})
	}
}

// A preset with server-side keys injects its key in place of the client's
// credential, strips ?key=, and rotates keys on 429.
func TestKeyedPreset(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.env["OPENAI_API_KEY"] = secret("o1")
	w.env["OPENAI_API_KEY_2"] = secret("o2")
	w.script("openai/o1", status(429, ""))
	cfg := config.Default()
	cfg.Presets = map[string]presetOverride{"openai": {Keys: []string{"env:OPENAI_API_KEY", "env:OPENAI_API_KEY_2"}}}
	snap := w.compile(cfg)
	r := httptestRequest(http.MethodPost, "/openai/v1/chat/completions?key=ck-client&x=1", `{"model":"gpt-4o"}`)
	r.Header.Set("Authorization", "Bearer ck-client-key-000000000000")
	r.Header.Set("X-Api-Key", "ck-client-key-000000000000")
	r.Header.Set("OpenAI-Organization", "org-client")
	plan, err := snap.PresetPlan(r, snap.Preset("openai"), "/v1/chat/completions", access.OperatorCaller(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res := w.roundTrip(plan, r)
	if statusOf(res) != 200 {
		t.Fatalf("status %d %v", statusOf(res), res.err)
	}
	if got := w.attempts(); !equalStrings(got, []string{"openai/o1", "openai/o2"}) {
		t.Errorf("attempts %v", got)
	}
	for _, s := range w.requests() {
		if s.url.String() != "https://api.openai.com/v1/chat/completions?x=1" {
			t.Errorf("URL %s", s.url)
		}
		if s.header.Get("X-Api-Key") != "" || s.header.Get("Openai-Organization") != "" {
			t.Errorf("client credentials or organisation went upstream: %v", s.header)
		}
	}
	if res.plan.Result().Key != "OPENAI_API_KEY_2" {
		t.Errorf("result key %q", res.plan.Result().Key)
	}
}

// Health changes are published to other replicas exactly once each.
func TestAttemptPublishes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rec := &recorder{}
	w.health.Shared = rec
	w.script("A/a1", status(429, "", "Retry-After", "5"))
	w.script("A/a2", status(401, ""))
	w.script("B", status(200, okBody))
	snap := twoProviders(t, w, 0)
	w.do(snap, chatRequest("m"), nil)
	got := rec.kinds()
	if !equalStrings(got, []string{"A:cooldown", "A:disable"}) {
		t.Errorf("published %v, want one cooldown and one disable", got)
	}
}
