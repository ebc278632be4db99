package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/internal/relay"
	"github.com/llmproxy/llmproxy/jsonscan"
	"github.com/llmproxy/llmproxy/meter"
	"github.com/llmproxy/llmproxy/netguard"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/replay"
	"github.com/llmproxy/llmproxy/socket"
)

var _ http.RoundTripper = (*Plan)(nil)

// RoundTrip is the attempt loop, as Caddy's reverse proxy loops over
// upstreams: pick a target and key, send, judge the outcome, and move on
// to the next key or target while the client has seen nothing — until an
// answer comes, the attempts run out, or the failure is the client's own.
//
//   - Connection failures, timeouts before the response headers, 429 and
//     5xx move on; so does a 200 whose body fails before its first byte.
//   - 429 cools the key (Retry-After), an exhausted quota rests it long,
//     401/403 disables it; 5xx and connection failures count toward the
//     provider's circuit breaker.
//   - 400, 404, 413, 422 and every other answer are the client's own and
//     come back as they are.
//   - Once a body byte reached the client nothing is retried: a later
//     failure aborts the stream (the server's job).
//
// The plan owns the request it is given (it is built for one request):
// RoundTrip may change its URL, header and body.
func (p *Plan) RoundTrip(in *http.Request) (*http.Response, error) {
	if p.max == 1 && len(p.targets) == 1 && !p.inject && !p.gateway && !p.metered {
		return p.direct(in)
	}
	var (
		cur     *target
		verdict = moveOn
		lastErr error
	)
	for attempt := 0; attempt < p.max; attempt++ {
		t, k, probe, ok := p.pick(cur, verdict)
		if !ok {
			break
		}
		p.probe = probe
		cur = t
		more := attempt+1 < p.max && p.another(t, k)
		var resp *http.Response
		var err error
		verdict, resp, err = p.attempt(in, t, k, more)
		if verdict == finished {
			return resp, err
		}
		lastErr = err
	}
	return p.exhausted(lastErr)
}

// direct sends a passthrough request to its one target as it is: the
// preset path with the client's own key, and generic mode. The header map
// is filtered in place (nothing reads the client's headers afterwards).
func (p *Plan) direct(in *http.Request) (*http.Response, error) {
	t := p.targets[0]
	u, err := p.url(t, in)
	if err != nil {
		return nil, err
	}
	in.URL = u
	in.Header = t.provider.policy.Filter(in.Header)
	addDefaults(in.Header, t.provider.defaults)
	p.report.Provider, p.report.Attempts = t.provider.Name, 1
	p.result.Provider = t.provider.Name
	resp, err := t.provider.transport.RoundTrip(in)
	if err != nil {
		return nil, err
	}
	delete(resp.Header, "X-Proxy-Error") // the marker means llmproxy, not an upstream
	p.result.Answered = resp.StatusCode < 400
	return resp, nil
}

// DropMarker wraps a transport so that an upstream's own X-Proxy-Error
// header never reaches the client: the marker means llmproxy. (The plan
// drops it itself; this is for transports stacked beneath others, such as
// the Responses translation, whose own refusals carry the marker.)
func DropMarker(next http.RoundTripper) http.RoundTripper { return dropMarker{next} }

type dropMarker struct{ next http.RoundTripper }

func (d dropMarker) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil {
		delete(resp.Header, "X-Proxy-Error")
	}
	return resp, err
}

// outcome is what an attempt's result means for the loop.
type outcome uint8

const (
	finished outcome = iota // hand this answer (or error) to the client
	moveOn                  // the provider failed: the next target (or key)
	nextKey                 // the key failed: another key, else the next target
)

// pick chooses the next attempt: after a key failure another key of the
// same target; else the next target not tried yet (with a key in turn);
// when every target was tried, further untried keys of any of them. Only
// what is usable now counts at first — a key not cooling down, a provider
// whose breaker is closed (or the one probe of a half-open one) — and
// only when nothing is left does a cooling key or a cooled provider get
// its turn, as a last resort.
func (p *Plan) pick(cur *target, verdict outcome) (t *target, k *Key, probe, ok bool) {
	now := time.Now()
	if verdict == nextKey && cur != nil && p.wantsKey(cur) {
		if k := cur.provider.pickKey(now, p.excluded(cur), false); k != nil {
			// The failed key's verdict gave a probe back: the next key
			// claims it again, as any turn does. Taken meanwhile, the
			// provider waits for its turn as a last resort.
			if usable, probe := cur.provider.breaker.usable(now); usable {
				return cur, k, probe, true
			}
		}
	}
	for _, lastResort := range [...]bool{false, true} {
		for _, untried := range [...]bool{true, false} {
			for _, t := range p.targets {
				if untried && p.triedTarget(t) || !untried && !p.wantsKey(t) {
					continue // a keyless target is tried once
				}
				var k *Key
				if p.wantsKey(t) {
					if k = t.provider.pickKey(now, p.excluded(t), lastResort); k == nil {
						continue
					}
				}
				// usable claims a half-open breaker's probe: asked last.
				probe := false
				if !lastResort {
					var usable bool
					if usable, probe = t.provider.breaker.usable(now); !usable {
						continue
					}
				}
				return t, k, probe, true
			}
		}
	}
	return nil, nil, false, false
}

// another reports whether some attempt could follow this one.
func (p *Plan) another(t *target, k *Key) bool {
	for _, o := range p.targets {
		if o != t && !p.triedTarget(o) {
			return true
		}
	}
	for _, o := range p.targets {
		if !p.wantsKey(o) {
			continue
		}
		for _, ok := range o.provider.keys {
			if ok != k && !p.badKey(ok) && !p.triedPair(o, ok) {
				if state, _, _ := ok.health.State(time.Now()); state != KeyDisabled {
					return true
				}
			}
		}
	}
	return false
}

func (p *Plan) wantsKey(t *target) bool { return p.inject && t.provider.Keyed() }

func (p *Plan) triedTarget(t *target) bool {
	for _, o := range p.tried {
		if o == t {
			return true
		}
	}
	return false
}

// keys tried are recorded per target; a key that failed as a key (429,
// 401, quota) is excluded everywhere.
func (p *Plan) triedPair(t *target, k *Key) bool {
	for i, o := range p.keys {
		if o == k && p.keyTargets[i] == t {
			return true
		}
	}
	return false
}

func (p *Plan) badKey(k *Key) bool {
	for _, o := range p.bad {
		if o == k {
			return true
		}
	}
	return false
}

func (p *Plan) excluded(t *target) func(*Key) bool {
	if len(p.keys) == 0 {
		return nil
	}
	return func(k *Key) bool { return p.badKey(k) || p.triedPair(t, k) }
}

// attempt sends the request to one target with one key and judges what
// came back.
func (p *Plan) attempt(in *http.Request, t *target, k *Key, more bool) (outcome, *http.Response, error) {
	now := time.Now()
	if p.tried == nil {
		p.tried, p.keys, p.keyTargets = p.triedBuf[:0], p.keysBuf[:0], p.keyTgtBuf[:0]
	}
	p.tried = append(p.tried, t)
	if k != nil {
		p.keys = append(p.keys, k)
		p.keyTargets = append(p.keyTargets, t)
		k.health.Requests.Add(1)
	}
	p.report.Attempts++
	p.report.Provider, p.report.Key, p.report.Model = t.provider.Name, keyName(k), t.model
	out, err := p.request(in, t, k, more)
	if err != nil {
		t.provider.breaker.release(p.probe)
		return finished, nil, err
	}
	t.bal.Used.Add(1)
	t.bal.Inflight.Add(1)
	rt := t.provider.transport
	translated := p.call.Responses() && !t.provider.native && !p.passthrough
	if translated {
		rt = t.provider.translated
	}
	resp, err := rt.RoundTrip(out)
	if err == nil && !translated {
		delete(resp.Header, "X-Proxy-Error") // the marker means llmproxy, not an upstream
	}
	verdict, why := p.judge(in.Context(), t, k, resp, err)
	if verdict != finished {
		t.bal.Inflight.Add(-1)
		p.report.Failovers = append(p.report.Failovers, t.provider.Name+"/"+keyName(k)+": "+why)
		if resp != nil {
			p.keep(resp, k)
		}
		return verdict, nil, err
	}
	if err != nil {
		t.bal.Inflight.Add(-1)
		return finished, nil, err
	}
	if resp.StatusCode >= 300 {
		resp.Body = p.track(resp, t, k, now, nil) // frees the in-flight slot when closed
		return finished, resp, nil                // judge settled the breaker
	}
	// A success. When another attempt could still follow, wait for the
	// first body byte before committing: a 200 that breaks before its
	// first byte has shown the client nothing and may go elsewhere.
	var first *[]byte
	if more {
		first = getFirst()
		n, rerr := readFirst(resp, *first)
		*first = (*first)[:n]
		if n == 0 && rerr == io.EOF && (isEventStream(resp.Header.Get("Content-Type")) ||
			p.gateway && in.Method == http.MethodPost && resp.StatusCode == http.StatusOK) {
			// A stream that ended before it began was cut too, and a 200
			// without a body answers no model call. (A preset passes any
			// call through, a HEAD's 200 among them: its own.)
			rerr = io.ErrUnexpectedEOF
		}
		if rerr != nil && rerr != io.EOF && n == 0 {
			firstBuffers.Put(first)
			resp.Body.Close()
			t.bal.Inflight.Add(-1)
			if in.Context().Err() != nil {
				// The client left: no verdict on the provider, as in judge.
				t.provider.breaker.release(p.probe)
				return finished, nil, rerr
			}
			t.provider.breaker.failed(time.Now(), p.probe)
			p.report.Failovers = append(p.report.Failovers, t.provider.Name+"/"+keyName(k)+": broke before the first byte")
			return moveOn, nil, rerr
		}
		if rerr == io.EOF {
			resp.Body.Close()
			resp.Body = endedBody{}
		}
	}
	t.bal.observe(time.Since(now))
	t.provider.breaker.succeeded()
	if k != nil {
		k.health.succeeded()
	}
	p.result.Answered = true
	resp.Body = p.track(resp, t, k, now, first)
	return finished, resp, nil
}

var firstBuffers = sync.Pool{New: func() any { b := make([]byte, 2<<10); return &b }}

// getFirst returns a buffer for an answer's first bytes, whole: one goes
// back to the pool cut to the bytes it held, and a read into none would
// return nothing, which is no failure — the attempt would commit before
// the provider's first byte.
func getFirst() *[]byte {
	b := firstBuffers.Get().(*[]byte)
	*b = (*b)[:cap(*b)]
	return b
}

// readFirst reads an answer's first bytes. The body of an event stream that
// relays itself (the socket transport's) is read through its Relay, which
// the server's relay can then go on with: a Read would begin net/http's
// decoder, and the stream would cost a read more per event. Other answers
// are read: a stream that announces trailers is not relayed (the server
// forwards them, which net/http's decoder collects).
func readFirst(resp *http.Response, p []byte) (int, error) {
	if r, ok := resp.Body.(relay.Relayer); ok && len(resp.Trailer) == 0 && isEventStream(resp.Header.Get("Content-Type")) {
		return relay.Read(r, p)
	}
	return resp.Body.Read(p)
}

func keyName(k *Key) string {
	if k == nil {
		return "-"
	}
	return k.Name
}

// judge classifies an attempt's result and updates the health of the key
// and the provider. why says, for the log, why the loop moves on.
func (p *Plan) judge(ctx context.Context, t *target, k *Key, resp *http.Response, err error) (outcome, string) {
	if err != nil {
		var se *socket.Error
		var tooLarge *http.MaxBytesError
		switch {
		case ctx.Err() != nil: // the client left
		case netguard.IsBlocked(err):
		case errors.As(err, &tooLarge), errors.As(err, &se) && se.Op == socket.OpBody:
			// The client's own body failed: nobody else would do better.
		default:
			t.provider.breaker.failed(time.Now(), p.probe)
			return moveOn, "no answer (" + shortReason(err) + ")"
		}
		t.provider.breaker.release(p.probe)
		return finished, ""
	}
	status := resp.StatusCode
	if status < 300 {
		return finished, "" // attempt records the success
	}
	now := time.Now() // a success, above, reads no clock
	switch {
	case status < 400:
		t.provider.breaker.release(p.probe) // a redirect: it answered, but not with an answer
		return finished, ""
	case status == http.StatusTooManyRequests || status == http.StatusPaymentRequired:
		snippet := peekBody(resp)
		if k == nil {
			// The client's own key on a preset's upstream: that upstream is
			// busy; another may not be.
			t.provider.breaker.release(p.probe)
			return moveOn, strconv.Itoa(status)
		}
		t.provider.breaker.release(p.probe)
		if status == http.StatusPaymentRequired || quotaExhausted(snippet) {
			k.health.QuotaExhausted(now)
			p.markBad(k)
			return nextKey, "quota exhausted"
		}
		k.health.RateLimited(now, retryAfter(resp.Header, now))
		p.markBad(k)
		return nextKey, "429"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		t.provider.breaker.release(p.probe)
		if k == nil || !p.inject {
			return finished, "" // the client's own key was refused
		}
		k.health.Disable("the provider refused the key (HTTP " + strconv.Itoa(status) + ")")
		p.markBad(k)
		return nextKey, strconv.Itoa(status) + ": key disabled"
	case status == http.StatusBadRequest && k != nil && p.inject:
		// Anthropic answers a spent balance with 400.
		if snippet := peekBody(resp); bytes.Contains(snippet, []byte("credit balance is too low")) {
			t.provider.breaker.release(p.probe)
			k.health.QuotaExhausted(now)
			p.markBad(k)
			return nextKey, "quota exhausted"
		}
	case status == http.StatusRequestTimeout || status >= 500 && status != http.StatusNotImplemented && status != http.StatusHTTPVersionNotSupported:
		t.provider.breaker.failed(now, p.probe)
		return moveOn, strconv.Itoa(status)
	}
	t.provider.breaker.release(p.probe)
	return finished, ""
}

func (p *Plan) markBad(k *Key) { p.bad = append(p.bad, k) }

// shortReason names a transport failure for the log without its text
// (which may hold a URL).
func shortReason(err error) string {
	var se *socket.Error
	switch {
	case errors.As(err, &se):
		return string(se.Op)
	case isTimeout(err):
		return "timeout"
	}
	return "transport"
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// quotaExhausted recognises the providers' "out of credit" answers.
func quotaExhausted(body []byte) bool {
	return bytes.Contains(body, []byte("insufficient_quota")) || bytes.Contains(body, []byte("credit balance is too low"))
}

// retryAfter reads Retry-After (seconds or an HTTP date) and OpenAI's
// retry-after-ms; 0 when absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v > 0 {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxKept bounds the failed answer kept for the client.
const maxKept = 64 << 10

// peekBody reads a failed answer's body (up to maxKept) so that it can be
// inspected and still handed on.
func peekBody(resp *http.Response) []byte {
	if kb, ok := resp.Body.(*keptBody); ok {
		return kb.data
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxKept))
	resp.Body.Close()
	resp.Body = &keptBody{Reader: bytes.NewReader(data), data: data}
	resp.ContentLength = int64(len(data))
	resp.Header.Del("Content-Length")
	return data
}

// endedBody is a body whose bytes were all read ahead.
type endedBody struct{}

func (endedBody) Read([]byte) (int, error) { return 0, io.EOF }
func (endedBody) Close() error             { return nil }

type keptBody struct {
	*bytes.Reader
	data []byte
}

func (*keptBody) Close() error { return nil }

// lastResponse is the latest failed answer, kept (its body read) in case
// nothing better comes.
type lastResponse struct {
	status   int
	header   http.Header
	body     []byte
	injected bool // llmproxy's key was sent with it: its words about that key are not the client's
}

func (p *Plan) keep(resp *http.Response, k *Key) {
	data := peekBody(resp)
	p.last = &lastResponse{status: resp.StatusCode, header: resp.Header, body: data, injected: k != nil && p.inject}
}

// exhausted answers when no attempt succeeded. The last provider answer
// goes back as it is, except where it speaks of llmproxy's own key (a
// refusal, a rate limit, a quota): the client did not send that key, so it
// gets llmproxy's own account in its own format, which never quotes the
// provider's message (it may name the key, masked, or the operator's
// organisation).
func (p *Plan) exhausted(lastErr error) (*http.Response, error) {
	if p.last != nil {
		status := p.last.status
		injected := p.last.injected
		switch {
		case injected && (status == http.StatusUnauthorized || status == http.StatusForbidden):
			return nil, &Error{Status: http.StatusBadGateway, Code: "provider_key_rejected",
				Message: "the provider refused llmproxy's key for this request; the operator has been told (see the log and /stats)"}
		case injected && (status == http.StatusTooManyRequests || status == http.StatusPaymentRequired) || injected && quotaExhausted(p.last.body):
			e := &Error{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded",
				Message: "every provider key that serves this request is rate limited; try again later", RetryAfter: p.soonest()}
			if status == http.StatusPaymentRequired || quotaExhausted(p.last.body) {
				e.Code, e.Message = "insufficient_quota", "every provider key that serves this request is out of quota or rate limited"
			}
			return nil, e
		}
		return &http.Response{
			StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: p.last.header, Body: &keptBody{Reader: bytes.NewReader(p.last.body), data: p.last.body},
			ContentLength: int64(len(p.last.body)),
		}, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if p.report.Attempts == 0 && p.onlyUnusable() {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "no_provider_key",
			Message: "the provider keys for this request cannot be used on this server (saved in the admin panel, they do not decrypt with its LLMPROXY_SECRET_KEY); the operator has been told"}
	}
	return nil, &Error{Status: http.StatusServiceUnavailable, Code: "no_provider_key",
		Message: "no provider key is usable for this request (all are disabled); the operator has been told"}
}

// onlyUnusable reports whether every target's provider holds keys that
// cannot be used here and no other.
func (p *Plan) onlyUnusable() bool {
	for _, t := range p.targets {
		if len(t.provider.keys) > 0 || t.provider.unusable == 0 {
			return false
		}
	}
	return len(p.targets) > 0
}

// soonest returns how long until the first of the plan's keys cools down.
func (p *Plan) soonest() time.Duration {
	now := time.Now()
	var best time.Duration
	for _, t := range p.targets {
		for _, k := range t.provider.keys {
			if state, until, _ := k.health.State(now); state == KeyCooling {
				if d := until.Sub(now); best == 0 || d < best {
					best = d
				}
			}
		}
	}
	return cmp.Or(best, time.Second)
}

// request builds the attempt's request: the target URL, the provider's
// header policy, the credential, and the body for this target.
func (p *Plan) request(in *http.Request, t *target, k *Key, more bool) (*http.Request, error) {
	u, err := p.url(t, in)
	if err != nil {
		return nil, err
	}
	out := *in
	out.URL = u
	prov := t.provider
	// Each attempt starts from the client's headers under its provider's
	// policy; the last one may filter them in place, as the preset path
	// does: nothing reads them afterwards.
	var h http.Header
	if more {
		h = prov.policy.Outbound(in.Header)
	} else {
		h = prov.policy.Filter(in.Header)
	}
	if p.gateway || p.inject {
		// The client's credential never goes upstream; nor does a choice of
		// organisation or project billed on the operator's key.
		for _, name := range access.CredentialHeaders {
			delete(h, name)
		}
		if ah := p.s.keys.AuthHeader(); ah != "" {
			delete(h, ah)
		}
		// Nor the WebSocket subprotocol that may carry it
		// (openai-insecure-api-key.<key>), which means nothing outside a
		// handshake: a WebSocket's own is offered through its dialer.
		delete(h, "Sec-Websocket-Protocol")
		delete(h, "Openai-Organization")
		delete(h, "Openai-Project")
	}
	for name, values := range prov.headers {
		h[name] = values
	}
	addDefaults(h, prov.defaults)
	if k != nil {
		prov.inject(h, k)
	}
	out.Header = h
	if p.body != nil {
		data, err := p.bodyFor(t)
		if err != nil {
			return nil, err
		}
		replay.Set(&out, data)
	}
	return &out, nil
}

// injectUsage reports whether llmproxy adds stream_options.include_usage
// (and strips the extra chunk): a Chat Completions stream the client did
// not ask usage for. The plan read stream_options (readOptions) for every
// such stream; without that it could not know where to add the member.
func (p *Plan) injectUsage(t *target) bool {
	return p.metered && p.stream && !p.clientUsage && p.call.Chat() && p.optionsRead
}

// bodyFor returns the body for a target: the client's bytes, with the
// model renamed and stream_options.include_usage added where needed —
// edits spliced in where the plan's pass over the body found their places,
// in one copy, nothing else re-encoded.
func (p *Plan) bodyFor(t *target) ([]byte, error) {
	rename := t.model != "" && t.model != p.model && p.modelAt.Kind == jsonscan.KindString
	if !p.injectUsage(t) {
		if rename {
			return jsonscan.ReplaceString(p.body, p.modelAt, t.model), nil
		}
		return p.body, nil
	}
	usage, err := jsonscan.SetMember(p.body, p.optionsAt, []byte("true"), "stream_options", "include_usage")
	if err != nil {
		return nil, usageError(err)
	}
	if !rename {
		return jsonscan.Apply(p.body, usage), nil
	}
	model := jsonscan.StringEdit(p.modelAt, t.model)
	if usage.Start < model.Start {
		return jsonscan.Apply(p.body, usage, model), nil
	}
	return jsonscan.Apply(p.body, model, usage), nil
}

// usageError is the client's error for a body stream_options.include_usage
// could not be added to.
func usageError(err error) error {
	if errors.Is(err, jsonscan.ErrNotObject) {
		return fieldNotObject("stream_options")
	}
	return errBadJSON
}

// url returns the upstream URL of the request for a target.
func (p *Plan) url(t *target, in *http.Request) (*url.URL, error) {
	if p.fixed != nil {
		return p.fixed, nil
	}
	base := t.provider.bases[t.base]
	if p.passthrough {
		u, err := preset.Join(base, p.rest, p.query)
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_path", Message: err.Error()}
		}
		return u, nil
	}
	q := stripQueryParam(in.URL.RawQuery, "key")
	model := ""
	if p.call.API == Gemini {
		model = cmp.Or(t.model, p.model)
	}
	plain := q == "" && t.provider.apiVersion == ""
	if plain {
		if c := t.lastURL.Load(); c != nil && c.call.API == p.call.API && c.call.Endpoint == p.call.Endpoint &&
			c.call.Version == p.call.Version && c.model == model {
			return c.u, nil
		}
	}
	u := &url.URL{Scheme: base.Scheme, Host: base.Host}
	path := strings.TrimSuffix(base.Path, "/")
	switch p.call.API {
	case OpenAI:
		path += p.call.Endpoint
	case Anthropic:
		if !strings.HasSuffix(path, "/v1") {
			path += "/v1"
		}
		path += p.call.Endpoint
	case Gemini:
		if !strings.HasSuffix(path, "/v1beta") && !strings.HasSuffix(path, "/v1") {
			path += "/" + p.call.Version
		}
		path += "/models/" + model + ":" + p.call.Endpoint
	}
	u.Path = path
	if plain {
		t.lastURL.Store(&targetURL{call: Call{API: p.call.API, Endpoint: p.call.Endpoint, Version: p.call.Version}, model: model, u: u})
		return u, nil
	}
	if v := t.provider.apiVersion; v != "" && !strings.Contains(q, "api-version=") {
		if q != "" {
			q += "&"
		}
		q += "api-version=" + url.QueryEscape(v)
	}
	u.RawQuery = q
	return u, nil
}

func addDefaults(h http.Header, defaults map[string]string) {
	for name, value := range defaults {
		if _, ok := h[name]; !ok {
			h[name] = []string{value}
		}
	}
}

// track wraps a committed answer's body: it returns the first-read bytes
// first, counts usage on the way (when metered) and, when the body ends,
// records the result and frees the target's in-flight slot.
func (p *Plan) track(resp *http.Response, t *target, k *Key, start time.Time, first *[]byte) io.ReadCloser {
	p.result.Provider, p.result.Key = t.provider.Name, keyName(k)
	p.ans = answer{body: resp.Body, plan: p, t: t, first: first}
	a := &p.ans // a plan commits one answer
	if first != nil {
		a.prefix = *first
	}
	if resp.StatusCode >= 300 || !p.metered || resp.Header.Get("Content-Encoding") != "" || resp.Body == http.NoBody {
		a.unmetered = true
		return a
	}
	stream, strip := isEventStream(resp.Header.Get("Content-Type")), p.injectUsage(t)
	if stream && strip && resp.ContentLength >= 0 {
		// The usage chunk llmproxy asked for is taken out: the answer is
		// no longer as long as the upstream said (a short stream sent
		// with a Content-Length).
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	return meter.Wrap(a, meter.Options{
		Format:          p.format,
		Stream:          stream,
		StripUsageChunk: strip,
		RequireEnd:      p.requiresEnd(),
		Done:            p.usageDone,
	})
}

// requiresEnd says whether the answer is a generated one, which must end
// with its format's last event: a Gemini method other than generating
// (countTokens, embedContent, batchEmbedContents) answers one object with
// no finishReason, whole as it is. (A keyed preset meters Gemini's
// generating methods only.)
func (p *Plan) requiresEnd() bool {
	if p.format != meter.Gemini || !p.gateway {
		return true
	}
	return p.call.Endpoint == "generateContent" || p.call.Endpoint == "streamGenerateContent"
}

// usageDone records the usage of the answer and its cost.
func (p *Plan) usageDone(u meter.Usage, complete bool) {
	r := &p.result
	r.Usage, r.Complete, r.Caller, r.Model = u, complete, p.caller, p.model
	if p.route != nil && p.route.pricing != nil {
		r.Currency = p.route.pricing.Currency
		r.Cost = p.route.pricing.Cost(u.Input, u.CachedInput, u.CacheWrite, u.Output)
	}
}

// answer is a committed response body.
type answer struct {
	body      io.ReadCloser
	plan      *Plan
	t         *target
	prefix    []byte
	first     *[]byte
	unmetered bool
	once      sync.Once
	pending   error // Relay over Reads (relay.Reads)
}

func (a *answer) Read(b []byte) (int, error) {
	if err := a.pending; err != nil { // see Relay
		a.pending = nil
		return 0, err
	}
	if len(a.prefix) > 0 {
		return a.takePrefix(b), nil
	}
	return a.body.Read(b)
}

// takePrefix copies the first-read bytes into b, as many as fit, and gives
// their buffer back once they are all out.
func (a *answer) takePrefix(b []byte) int {
	n := copy(b, a.prefix)
	a.prefix = a.prefix[n:]
	if len(a.prefix) == 0 {
		firstBuffers.Put(a.first)
		a.first = nil
	}
	return n
}

// Relay is Read for the relay (relay.Relayer): the first-read bytes, then
// the body's own Relay, or its Reads when it does not relay.
func (a *answer) Relay(next func() []byte, put func(n int) bool) error {
	for len(a.prefix) > 0 {
		if !put(a.takePrefix(next())) {
			return relay.ErrPaused
		}
	}
	if r, ok := a.body.(relay.Relayer); ok {
		return r.Relay(next, put)
	}
	return relay.Reads(a.body, &a.pending, next, put)
}

// Ready reports whether Relay would hand over bytes without waiting: the
// first-read bytes, or the body's ready ones (relay.Readier).
func (a *answer) Ready() bool {
	if a.pending != nil {
		return false
	}
	return len(a.prefix) > 0 || relay.Ready(a.body)
}

func (a *answer) Close() error {
	err := a.body.Close()
	a.once.Do(func() {
		a.t.bal.Inflight.Add(-1)
		if a.unmetered {
			a.plan.result.Caller, a.plan.result.Model = a.plan.caller, a.plan.model
		}
		if a.first != nil {
			firstBuffers.Put(a.first)
			a.first = nil
		}
	})
	return err
}

// isEventStream reports whether a Content-Type is text/event-stream.
func isEventStream(ct string) bool {
	const sse = "text/event-stream"
	ct = strings.TrimLeft(ct, " \t")
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse)
}

// WebSocket returns how to dial a WebSocket for the plan: the target
// (ws or wss), the handshake headers (the provider's policy applied, the
// client's credentials replaced by the provider's key where it has one)
// and the transport that carries the handshake. WebSockets take the first
// target only: a realtime session cannot be replayed elsewhere.
func (p *Plan) WebSocket(in *http.Request) (*url.URL, http.Header, http.RoundTripper, error) {
	t := p.targets[0]
	u, err := p.url(t, in)
	if err != nil {
		return nil, nil, nil, err
	}
	ws := *u
	ws.Scheme = "wss"
	if u.Scheme == "http" || u.Scheme == "ws" {
		ws.Scheme = "ws"
	}
	var k *Key
	if p.wantsKey(t) {
		if k = t.provider.pickKey(time.Now(), nil, true); k == nil {
			return nil, nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: "no_provider_key",
				Message: "no provider key is usable for this request (all are disabled); the operator has been told"}
		}
	}
	out, err := p.request(in, t, k, true) // the handshake reads the client's headers again
	if err != nil {
		return nil, nil, nil, err
	}
	h := out.Header
	delete(h, "Sec-Websocket-Protocol") // offered through the dialer
	p.report.Provider, p.report.Key, p.report.Attempts = t.provider.Name, keyName(k), 1
	return &ws, h, t.provider.raw, nil
}
