package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/internal/leaktest"
	"github.com/llmproxy/llmproxy/preset"
)

func TestMain(m *testing.M) {
	leaktest.Main(m)
}

// The tests drive the gateway without a network: every provider's
// transport is a scripted fake that answers by (provider, key, attempt)
// and records what it received, plugged in through Deps.Transport.

// secret is the provider key a test configures under a short label: the
// fakes read the label back from the header the key arrived in, so that
// attempts read as "A/a1".
func secret(label string) string { return "sk-" + label + "-0123456789abcdef" }

func labelOf(secret string) string {
	s := strings.TrimPrefix(secret, "sk-")
	s, _, _ = strings.Cut(s, "-0123456789abcdef")
	return s
}

// reply is one scripted provider answer.
type reply struct {
	status  int
	header  http.Header
	body    string
	err     error // returned by RoundTrip instead of an answer
	bodyErr error // the answer's body fails after body (on its first Read when body is "")
}

func answer200(body string) reply {
	return reply{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: body}
}

// status returns an answer with a status, a body and header pairs.
func status(code int, body string, kv ...string) reply {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return reply{status: code, header: h, body: body}
}

func failure(err error) reply { return reply{err: err} }

// brokenBody is a 200 whose body fails before its first byte.
func brokenBody(err error) reply {
	return reply{status: 200, header: http.Header{"Content-Type": {"text/event-stream"}}, bodyErr: err}
}

const okBody = `{"id":"chatcmpl-1","object":"chat.completion","choices":[]}`

// sent is one request a fake provider received.
type sent struct {
	provider string
	key      string // the label of the provider key it carried; "" for none
	method   string
	url      *url.URL
	header   http.Header
	body     []byte
}

func (s sent) String() string {
	if s.key == "" {
		return s.provider + "/-"
	}
	return s.provider + "/" + s.key
}

// world is the fake providers of one test and what they received.
type world struct {
	t      testing.TB
	health *Health
	env    map[string]string

	mu      sync.Mutex
	scripts map[string][]reply // by "provider/label", else "provider"
	log     []sent
	closed  int // answer bodies closed
	bodies  int // answer bodies handed out

	// onServe, when set, sees each request as the provider receives it,
	// before it answers.
	onServe func(sent)
}

func newWorld(t testing.TB) *world {
	return &world{t: t, health: NewHealth(), env: map[string]string{}, scripts: map[string][]reply{}}
}

// script sets the answers of a provider ("A") or of one of its keys
// ("A/a1"), one per request in turn; the last repeats.
func (w *world) script(who string, replies ...reply) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scripts[who] = replies
}

func (w *world) deps() Deps {
	return Deps{
		Transport: func(name, _ string) http.RoundTripper { return w.transport(name) },
		Guarded:   w.transport("generic"),
		Health:    w.health,
		Getenv:    func(name string) string { return w.env[name] },
	}
}

func (w *world) transport(name string) http.RoundTripper {
	name = strings.TrimPrefix(name, ProviderPrefix) // the fakes go by the provider's own name
	return roundTripFunc(func(r *http.Request) (*http.Response, error) { return w.serve(name, r) })
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var _ http.RoundTripper = roundTripFunc(nil)

func (w *world) serve(name string, r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
	}
	s := sent{provider: name, key: labelOf(credentialOf(r.Header)), method: r.Method, url: r.URL, header: r.Header.Clone(), body: body}
	w.mu.Lock()
	w.log = append(w.log, s)
	rep, ok := w.next(name + "/" + s.key)
	if !ok {
		rep, ok = w.next(name)
	}
	onServe := w.onServe
	w.mu.Unlock()
	if onServe != nil {
		onServe(s)
	}
	if !ok {
		rep = answer200(okBody)
	}
	if rep.err != nil {
		return nil, rep.err
	}
	resp := &http.Response{
		StatusCode: rep.status, Status: strconv.Itoa(rep.status) + " " + http.StatusText(rep.status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rep.header.Clone(), ContentLength: -1, Request: r,
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	var rc io.ReadCloser = io.NopCloser(strings.NewReader(rep.body))
	if rep.bodyErr != nil { // the body's bytes, then the failure
		rc = io.NopCloser(io.MultiReader(strings.NewReader(rep.body), failingReader{rep.bodyErr}))
	}
	resp.Body = &countedBody{ReadCloser: rc, w: w}
	w.mu.Lock()
	w.bodies++
	w.mu.Unlock()
	return resp, nil
}

// next pops the next scripted answer; the last one repeats. Called with
// w.mu held.
func (w *world) next(who string) (reply, bool) {
	list := w.scripts[who]
	if len(list) == 0 {
		return reply{}, false
	}
	rep := list[0]
	if len(list) > 1 {
		w.scripts[who] = list[1:]
	}
	return rep, true
}

// credentialOf returns the provider key a request carries, in whichever
// header the provider takes it.
func credentialOf(h http.Header) string {
	if v := h.Get("Authorization"); v != "" {
		_, after, _ := strings.Cut(v, " ")
		return after
	}
	for _, name := range []string{"X-Api-Key", "X-Goog-Api-Key", "Api-Key"} {
		if v := h.Get(name); v != "" {
			return v
		}
	}
	return ""
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

type countedBody struct {
	io.ReadCloser
	w    *world
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() {
		b.w.mu.Lock()
		b.w.closed++
		b.w.mu.Unlock()
	})
	return b.ReadCloser.Close()
}

// allClosed fails the test when an answer body the providers handed out
// was never closed: a failed attempt's connection would leak.
func (w *world) allClosed(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed != w.bodies {
		t.Errorf("%d of %d answer bodies closed", w.closed, w.bodies)
	}
}

// attempts returns what the providers received, as "provider/key".
func (w *world) attempts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.log))
	for i, s := range w.log {
		out[i] = s.String()
	}
	return out
}

func (w *world) requests() []sent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sent(nil), w.log...)
}

// reset forgets the requests received so far.
func (w *world) reset() {
	w.mu.Lock()
	w.log = nil
	w.mu.Unlock()
}

// compile builds a snapshot of cfg on the world's fakes.
func (w *world) compile(cfg *config.Config) *Snapshot {
	w.t.Helper()
	snap, err := Compile(cfg, w.deps())
	if err != nil {
		w.t.Fatalf("Compile: %v", err)
	}
	return snap
}

// newConfig returns the default configuration with items (config.Provider,
// config.Model, config.ClientKey) added in order.
func newConfig(t testing.TB, items ...any) *config.Config {
	t.Helper()
	cfg := config.Default()
	for _, it := range items {
		var err error
		switch v := it.(type) {
		case config.Provider:
			err = cfg.AddProvider(v)
		case config.Model:
			err = cfg.AddModel(v)
		case config.ClientKey:
			cfg.ClientKeys = append(cfg.ClientKeys, v)
		default:
			t.Fatalf("newConfig: %T", it)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// openaiProvider is an OpenAI-compatible provider with keys labelled
// labels.
func openaiProvider(name string, labels ...string) config.Provider {
	p := config.Provider{Name: name, BaseURL: "https://" + strings.ToLower(name) + ".example/v1"}
	for _, l := range labels {
		p.Keys = append(p.Keys, secret(l))
	}
	return p
}

func route(name string, providers ...string) config.Model {
	m := config.Model{Name: name}
	for _, p := range providers {
		m.Targets = append(m.Targets, config.Target{Provider: p})
	}
	return m
}

// chatRequest is a Chat Completions request as a client sends it.
func chatRequest(model string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer ck-client-key-000000000000")
	return r
}

// result is what a request through the gateway gave the client.
type result struct {
	resp    *http.Response
	body    []byte
	readErr error // reading the answer's body failed
	err     error
	plan    *Plan
}

// do sends r through snap as the server does (serveGateway and forward):
// ParseCall → ModelPlan → RoundTrip, then reads and closes the answer.
func (w *world) do(snap *Snapshot, r *http.Request, caller *access.Caller) result {
	w.t.Helper()
	if caller == nil {
		caller = access.OperatorCaller()
	}
	call, err := ParseCall(r.Method, r.URL.EscapedPath(), r.Header)
	if err != nil {
		return result{err: err}
	}
	plan, err := snap.ModelPlan(r, call, caller, 1<<20)
	if err != nil {
		return result{err: err}
	}
	return w.roundTrip(plan, r)
}

// roundTrip sends r through a plan as the server's forward does.
func (w *world) roundTrip(plan *Plan, r *http.Request) result {
	w.t.Helper()
	out := r.WithContext(r.Context())
	out.Host, out.RequestURI = "", ""
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		out.Body = nil
	}
	resp, err := plan.RoundTrip(out)
	res := result{resp: resp, err: err, plan: plan}
	if resp != nil {
		res.body, res.readErr = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return res
}

// gatewayError returns err as an *Error, failing the test when it is not.
func gatewayError(t testing.TB, err error) *Error {
	t.Helper()
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v (%T), want a *gateway.Error", err, err)
	}
	return ge
}

func statusOf(r result) int {
	if r.resp != nil {
		return r.resp.StatusCode
	}
	var ge *Error
	if errors.As(r.err, &ge) {
		return ge.Status
	}
	return 0
}

// providerNames lists the providers of targets in order.
func providerNames(ts []*target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.provider.Name
	}
	return out
}

// keyOf returns a compiled provider key by label.
func keyOf(t testing.TB, snap *Snapshot, provider, label string) *Key {
	t.Helper()
	p := snap.providers[provider]
	if p == nil {
		t.Fatalf("no provider %s", provider)
	}
	for _, k := range p.keys {
		if k.secret == secret(label) {
			return k
		}
	}
	t.Fatalf("no key %s/%s", provider, label)
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var errTest = errors.New("scripted failure")

type presetOverride = preset.Override

func httptestRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// recorder is a Shared that records what is published.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Publish(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// kinds lists the events as "provider:kind".
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, ev := range r.events {
		out[i] = ev.Provider + ":" + string(ev.Kind)
	}
	return out
}

var _ Shared = (*recorder)(nil)
