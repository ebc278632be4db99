package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/privacy"
)

// testTimeout bounds one test request: one token takes seconds, a provider
// that does not answer in a minute has answered enough.
const testTimeout = 60 * time.Second

// maxTestBody is how much of an answer the test keeps to find an error in.
const maxTestBody = 64 << 10

type testData struct {
	Available                      bool
	Models, Providers              []string
	Model, Provider, ProviderModel string
	Result                         *testResult
	Errors                         errs
}

type testResult struct {
	Target     string
	Status     int
	StatusText string
	OK         bool
	TTFT       string // "" when no byte came
	Total      string
	Error      string
	ErrorFrom  string // "provider" or "llmproxy"
	// KeyChanges are the key and breaker states the test changed: the
	// gateway answers a refused key with its own error, so this is where
	// the provider's verdict shows.
	KeyChanges []string
}

func (h *Handler) testPage(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "test", "nav_test")
	v.Data = h.testData(&testData{})
	h.render(w, r, http.StatusOK, "test", v)
}

func (h *Handler) testData(d *testData) *testData {
	d.Available = h.opts.Gateway != nil
	snap := h.opts.Snapshot()
	d.Models, d.Providers = nil, nil
	for _, rt := range snap.Routes() {
		if !strings.Contains(rt.Name, "*") {
			d.Models = append(d.Models, rt.Name)
		}
	}
	for _, p := range snap.Providers() {
		d.Providers = append(d.Providers, p.Name)
	}
	if d.Errors == nil {
		d.Errors = errs{}
	}
	return d
}

func (h *Handler) testRun(w http.ResponseWriter, r *http.Request) {
	v := h.view(w, r, "test", "nav_test")
	d := h.testData(&testData{
		Model:    strings.TrimSpace(r.PostFormValue("model")),
		Provider: strings.TrimSpace(r.PostFormValue("provider")), ProviderModel: strings.TrimSpace(r.PostFormValue("provider_model")),
	})
	v.Data = d
	if !d.Available {
		h.render(w, r, http.StatusServiceUnavailable, "test", v)
		return
	}
	snap := h.opts.Snapshot()
	var api gateway.API
	var model, provider, target string
	switch r.PostFormValue("kind") {
	case "provider":
		var prov *gateway.Provider
		for _, p := range snap.Providers() {
			if p.Name == d.Provider {
				prov = p
			}
		}
		if prov == nil {
			d.Errors.add("provider", v.T("err_choice"))
			break
		}
		provider, api = prov.Name, apiOf(prov.Kind)
		model = d.ProviderModel
		if model == "" {
			model = h.modelFor(r.Context(), snap, prov.Name)
		}
		if model == "" {
			d.Errors.add("provider_model", v.T("err_test_model"))
		}
		target = v.T("test_target_provider", provider, model)
	default:
		model = d.Model
		if model == "" {
			d.Errors.add("model", v.T("err_required"))
			break
		}
		api = apiOf(routeKind(snap, model))
		target = v.T("test_target_model", model)
	}
	if len(d.Errors) > 0 {
		h.render(w, r, http.StatusUnprocessableEntity, "test", v)
		return
	}
	before := snap.HealthReport(time.Now())
	res := h.runTest(r, api, model, provider)
	res.Target = target
	res.KeyChanges = healthChanges(v, before, snap.HealthReport(time.Now()))
	d.Result = &res
	h.render(w, r, http.StatusOK, "test", v)
}

// healthChanges describes the keys and breakers whose state differs
// between two health reports.
func healthChanges(v *view, before, after []gateway.ProviderHealth) []string {
	was := map[string]string{}
	for _, p := range before {
		was[p.Name] = p.Breaker
		for _, k := range p.Keys {
			was[p.Name+"/"+k.Name] = k.State
		}
	}
	var out []string
	for _, p := range after {
		if prev, ok := was[p.Name]; ok && prev != p.Breaker {
			out = append(out, v.T("test_breaker_change", p.Name, v.BreakerLabel(p.Breaker)))
		}
		for _, k := range p.Keys {
			prev, ok := was[p.Name+"/"+k.Name]
			if !ok || prev == k.State {
				continue
			}
			state := v.StateLabel(k.State)
			if k.Until != nil {
				state += " " + v.T("until", k.Until.UTC().Format("2006-01-02 15:04 UTC"))
			}
			if k.Reason != "" {
				state += ": " + k.Reason
			}
			out = append(out, v.T("test_key_change", k.Name, p.Name, state))
		}
	}
	return out
}

// apiOf is the API a provider kind speaks.
func apiOf(k gateway.Kind) gateway.API {
	switch k {
	case gateway.KindAnthropic:
		return gateway.Anthropic
	case gateway.KindGemini:
		return gateway.Gemini
	}
	return gateway.OpenAI
}

// routeKind is the kind of the first provider of the route a model takes:
// the API the test must speak for the gateway to route it.
func routeKind(snap *gateway.Snapshot, model string) gateway.Kind {
	kinds := map[string]gateway.Kind{}
	for _, p := range snap.Providers() {
		kinds[p.Name] = p.Kind
	}
	var match *gateway.Route
	for _, rt := range snap.Routes() {
		if rt.Name == model {
			match = rt
			break
		}
		if p, err := access.CompilePattern(rt.Name); err == nil && p.Match(model) && match == nil {
			match = rt
		}
	}
	if match != nil {
		if ts := match.Targets(); len(ts) > 0 {
			return kinds[ts[0].Provider]
		}
	}
	return gateway.KindOpenAI
}

// modelFor picks a model to test a provider with: the upstream model of
// the first route that sends it requests, else the first plain name in
// its saved model list.
func (h *Handler) modelFor(ctx context.Context, snap *gateway.Snapshot, provider string) string {
	for _, rt := range snap.Routes() {
		for _, t := range rt.Targets() {
			if t.Provider != provider {
				continue
			}
			if t.Model != "" {
				return t.Model
			}
			if !strings.Contains(rt.Name, "*") {
				return rt.Name
			}
		}
	}
	if e, err := h.opts.Store.Entries(ctx); err == nil {
		for _, p := range e.Providers {
			if p.Name != provider {
				continue
			}
			for _, m := range p.Models {
				if !strings.Contains(m, "*") {
					return m
				}
			}
		}
	}
	return ""
}

// testRequest is a one-token streamed completion in the API's own format.
func testRequest(api gateway.API, model string) (path string, hdr http.Header, body []byte) {
	hdr = http.Header{"Content-Type": {"application/json"}}
	prompt := "Reply with one word: OK"
	switch api {
	case gateway.Anthropic:
		hdr.Set("Anthropic-Version", "2023-06-01")
		body, _ = json.Marshal(map[string]any{
			"model": model, "max_tokens": 1, "stream": true,
			"messages": []map[string]string{{"role": "user", "content": prompt}},
		})
		return "/v1/messages", hdr, body
	case gateway.Gemini:
		body, _ = json.Marshal(map[string]any{
			"contents":         []map[string]any{{"role": "user", "parts": []map[string]string{{"text": prompt}}}},
			"generationConfig": map[string]any{"maxOutputTokens": 1},
		})
		return "/v1beta/models/" + url.PathEscape(model) + ":streamGenerateContent?alt=sse", hdr, body
	}
	body, _ = json.Marshal(map[string]any{
		"model": model, "max_tokens": 1, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	})
	return "/v1/chat/completions", hdr, body
}

// runTest sends the test through the proxy's own handler, in process, as
// the operator (no credential travels), and times it.
func (h *Handler) runTest(r *http.Request, api gateway.API, model, provider string) (res testResult) {
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	ctx = access.WithCaller(ctx, access.OperatorCaller())
	if provider != "" {
		ctx = gateway.WithProvider(ctx, provider)
	}
	path, hdr, body := testRequest(api, model)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return testResult{Status: http.StatusBadRequest, StatusText: "Bad Request", Error: err.Error(), ErrorFrom: "llmproxy"}
	}
	req.Header, req.Host, req.RemoteAddr, req.RequestURI = hdr, r.Host, r.RemoteAddr, path

	pw := &probeWriter{header: http.Header{}, start: time.Now()}
	func() {
		// After the body started, a failure aborts the stream
		// (http.ErrAbortHandler), as it would a client's.
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					panic(p)
				}
				pw.aborted = true
			}
		}()
		h.opts.Gateway.ServeHTTP(pw, req)
	}()
	total := time.Since(pw.start)

	pw.mu.Lock()
	defer pw.mu.Unlock()
	res.Status = pw.status
	if res.Status == 0 {
		res.Status = http.StatusOK
	}
	res.StatusText = http.StatusText(res.Status)
	res.Total = formatDuration(total)
	if !pw.first.IsZero() && res.Status < 300 {
		// An error's body is no token.
		res.TTFT = formatDuration(pw.first.Sub(pw.start))
	}
	msg := answerError(res.Status, pw.body.Bytes())
	if pw.aborted && msg == "" {
		msg = "the stream was cut off"
	}
	if msg != "" {
		res.ErrorFrom = "provider"
		if pw.header.Get("X-Proxy-Error") != "" {
			res.ErrorFrom = "llmproxy"
		}
		res.Error = truncate(h.redactor(r.Context()).String(msg), 600)
	}
	res.OK = res.Status < 300 && res.Error == ""
	return res
}

// redactor scrubs every provider key the panel knows of (the store's
// literals and the variables its references name) and every credential
// format the privacy package knows: a provider's error may quote a key.
func (h *Handler) redactor(ctx context.Context) *privacy.Redactor {
	var secrets []string
	if e, err := h.opts.Store.Entries(ctx); err == nil {
		for _, p := range e.Providers {
			for _, k := range p.Keys {
				secrets = append(secrets, k.Secret)
				if k.Env != "" {
					secrets = append(secrets, strings.TrimSpace(os.Getenv(k.Env)))
				}
			}
		}
	}
	return privacy.NewRedactor(secrets...)
}

// answerError finds the error in an answer: the body of a failed one, or
// an error event in a stream that started well.
func answerError(status int, body []byte) string {
	if status >= 300 {
		if msg := errorMessage(body); msg != "" {
			return msg
		}
		if text := strings.TrimSpace(string(body)); text != "" {
			return text
		}
		return cmpOr(http.StatusText(status), fmt.Sprintf("HTTP %d", status))
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), maxTestBody)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		if msg := errorMessage([]byte(strings.TrimSpace(data))); msg != "" {
			return msg
		}
	}
	return ""
}

// errorMessage reads the error of a JSON body in the shapes providers use:
// {"error":{"message":…}} (OpenAI, Gemini, llmproxy), {"type":"error",
// "error":{…}} (Anthropic), {"error":"…"} and {"message":…}; an array
// (Gemini's JSON stream) is read element by element.
func errorMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(body, &list) == nil {
			for _, item := range list {
				if msg := errorMessage(item); msg != "" {
					return msg
				}
			}
		}
		return ""
	}
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	if len(v.Error) > 0 && string(v.Error) != "null" {
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			return s
		}
		var e struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Status  string `json:"status"`
			Code    any    `json:"code"`
		}
		if json.Unmarshal(v.Error, &e) == nil {
			kind := cmpOr(e.Type, e.Status)
			switch {
			case e.Message != "" && kind != "":
				return kind + ": " + e.Message
			case e.Message != "":
				return e.Message
			case kind != "":
				return kind
			}
			return string(v.Error)
		}
	}
	if v.Type == "error" && v.Message != "" {
		return v.Message
	}
	return ""
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1 ms"
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// probeWriter is the in-memory ResponseWriter the test request is
// answered into: it notes the status, when the first body byte came, and
// keeps the start of the body to read an error from.
type probeWriter struct {
	mu      sync.Mutex
	header  http.Header
	status  int
	start   time.Time
	first   time.Time
	body    bytes.Buffer
	aborted bool
}

var (
	_ http.ResponseWriter = (*probeWriter)(nil)
	_ http.Flusher        = (*probeWriter)(nil)
)

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if code >= 100 && code < 200 || w.status != 0 {
		return // informational answers are not the answer
	}
	w.status = code
}

func (w *probeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if len(p) > 0 && w.first.IsZero() {
		w.first = time.Now()
	}
	if room := maxTestBody - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *probeWriter) Flush() {}
