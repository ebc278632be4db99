package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/jsonscan"
	"github.com/llmproxy/llmproxy/meter"
	"github.com/llmproxy/llmproxy/preset"
	"github.com/llmproxy/llmproxy/replay"
	"github.com/llmproxy/llmproxy/wsproxy"
)

// Plan is one request's way through the gateway: the targets to try, in
// order, and how to send it to each. It is the http.RoundTripper the
// server hands the request to; its RoundTrip is the attempt loop.
type Plan struct {
	s      *Snapshot
	caller *access.Caller
	call   Call
	model  string // the model the client asked for; "" for passthrough
	route  *Route

	targets []*target
	// body is the buffered request body, for a second attempt and for
	// edits (model, stream_options); nil streams the client's body once.
	body        []byte
	modelAt     jsonscan.Value // where body names the model; Kind 0 (Gemini, passthrough): the model is not renamed in it
	stream      bool           // the client asked for a stream
	clientUsage bool           // …and for stream_options.include_usage itself
	// optionsAt is where body holds stream_options (Kind 0: it does not),
	// when optionsRead: the plan's one pass read it for a Chat Completions
	// stream (readOptions).
	optionsAt   jsonscan.Value
	optionsRead bool

	// Passthrough (presets and generic mode): the path after the preset
	// and the query; fixed is generic mode's target.
	passthrough bool
	rest, query string
	fixed       *url.URL

	gateway    bool          // a /v1 request: client credentials never go upstream
	inject     bool          // send the provider's key
	metered    bool          // count usage
	format     meter.Format  // …in this format
	max        int           // attempts
	probe      bool          // the current attempt is its provider's half-open probe
	tried      []*target     // targets tried
	keys       []*Key        // keys tried, with the target each was tried on
	keyTargets []*target     //
	bad        []*Key        // keys that failed as keys: not tried again
	last       *lastResponse // the last failed answer, for the client when nothing else works

	report Report
	result Result

	// Room for the usual request's bookkeeping inside the Plan, one
	// allocation for all: the route's targets, a first attempt's target
	// and key, its answer.
	targetsBuf [2]*target
	triedBuf   [2]*target
	keysBuf    [2]*Key
	keyTgtBuf  [2]*target
	ans        answer
}

// Report is what the request's log line says about the gateway's work.
type Report struct {
	Provider  string // who answered (or was tried last)
	Key       string // with which key (its name)
	Model     string // the upstream model, when it differs from the requested one
	Attempts  int
	Failovers []string // "provider/key: why" for each attempt that moved on
}

// Result is what the request used, read when its answer has ended.
type Result struct {
	Caller        *access.Caller
	Model         string // the requested (public) model; "" for passthrough
	Provider, Key string
	Usage         meter.Usage
	Complete      bool   // the answer ended cleanly
	Cost          int64  // nanos of Currency
	Currency      string // "" when unpriced
	Answered      bool   // a provider answered with a success status
}

// Injects reports whether the plan sends the provider's own key (and
// removes every client credential).
func (p *Plan) Injects() bool { return p.inject || p.gateway }

// Report returns what the log line should say.
func (p *Plan) Report() *Report { return &p.report }

// Result returns the request's usage; valid once the answer has ended.
func (p *Plan) Result() Result { return p.result }

// Model returns the model the client asked for.
func (p *Plan) Model() string { return p.model }

// Call returns what the request asked for.
func (p *Plan) Call() Call { return p.call }

// ModelPlan prepares a gateway request (/v1/chat/completions,
// /v1/messages, /v1beta/models/…): it buffers the body (up to maxBody),
// reads the model, checks the caller may use it and finds the route.
// Errors are *Error, or the body's read error (e.g. *http.MaxBytesError).
func (s *Snapshot) ModelPlan(r *http.Request, call Call, caller *access.Caller, maxBody int64) (*Plan, error) {
	if !s.On() {
		return nil, ErrGatewayOff
	}
	p := &Plan{s: s, caller: caller, call: call, gateway: true, inject: true, metered: true, max: s.maxAttempts}
	ok, err := replay.Buffer(r, maxBody)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &http.MaxBytesError{Limit: maxBody}
	}
	p.body, _ = replay.Bytes(r)
	switch call.API {
	case Gemini:
		p.model = call.Model
		p.stream = geminiStreams(call.Endpoint)
		p.format = meter.Gemini
	default:
		f, err := readBody(p.body)
		switch {
		case err != nil:
			return nil, err
		case f.model.Kind != jsonscan.KindString || f.model.End-f.model.Start == 2:
			return nil, errNoModel
		}
		p.model = s.modelName(f.model.Raw(p.body))
		p.modelAt = f.model
		p.stream = f.stream.Kind == jsonscan.KindTrue
		p.format = meter.OpenAI
		switch {
		case call.API == Anthropic:
			p.format = meter.Anthropic
		case call.Responses():
			p.format = meter.OpenAIResponses
		case p.stream:
			if err := p.readOptions(f); err != nil {
				return nil, err
			}
		}
	}
	if !caller.AllowsModel(p.model) {
		return nil, modelNotAllowed(p.model)
	}
	route := s.resolve(p.model)
	if name, ok := r.Context().Value(providerKey{}).(string); ok {
		route = s.forcedRoute(name, route)
	}
	if route == nil {
		return nil, modelNotFound(p.model)
	}
	p.route = route
	now := time.Now()
	var kinds []string
	ts := route.order(now, p.targetsBuf[:0]) // a copy of the route's: filtered in place
	for _, t := range ts {
		if p.serves(t.provider) {
			p.targets = append(ts[:len(p.targets)], t)
		} else if !slices.Contains(kinds, string(t.provider.Kind)) {
			kinds = append(kinds, string(t.provider.Kind))
		}
	}
	if len(p.targets) == 0 {
		if call.Responses() {
			return nil, &Error{Status: http.StatusBadRequest, Code: "unsupported_api", Param: "model",
				Message: "no provider of the model `" + printable(p.model) + "` has the Responses API: use /v1/chat/completions"}
		}
		return nil, wrongFormat(p.model, call.API, strings.Join(kinds, " and "))
	}
	return p, nil
}

// bodyFields is what one pass over a JSON request body finds: the
// top-level members model, stream and stream_options (Kind 0 when absent).
type bodyFields struct {
	model, stream, options jsonscan.Value
	dupOptions             bool // stream_options twice: an error only where it is read
}

// readBody reads model, stream and stream_options in one pass over the body
// (a long prompt is most of its bytes), with the errors reading them one
// by one would give: a body that is not JSON, then model twice, then
// stream twice. stream_options twice is noted, not refused: only a Chat
// Completions stream reads it (readOptions).
func readBody(body []byte) (bodyFields, error) {
	var vals [3]jsonscan.Value
	err := jsonscan.FieldsInto(vals[:], body, "model", "stream", "stream_options")
	if err == nil {
		return bodyFields{model: vals[0], stream: vals[1], options: vals[2]}, nil
	}
	if errors.Is(err, jsonscan.ErrDuplicateKey) {
		if err = jsonscan.FieldsInto(vals[:2], body, "model", "stream"); err == nil {
			return bodyFields{model: vals[0], stream: vals[1], dupOptions: true}, nil
		}
	}
	if !errors.Is(err, jsonscan.ErrDuplicateKey) {
		return bodyFields{}, errBadJSON
	}
	// model or stream twice (a body that is not JSON is a syntax error
	// whatever it repeats).
	if _, _, err := jsonscan.Get(body, "model"); err != nil {
		return bodyFields{}, errDuplicateModel
	}
	return bodyFields{}, fieldTwice("stream")
}

// readOptions reads a Chat Completions stream's stream_options, which
// readBody found: whether the client asked for usage itself, and where
// include_usage is to be added when it did not. include_usage is looked
// for inside stream_options alone; readBody checked the document.
func (p *Plan) readOptions(f bodyFields) error {
	if f.dupOptions {
		return fieldTwice("stream_options.include_usage")
	}
	p.optionsAt, p.optionsRead = f.options, true
	if f.options.Kind == jsonscan.KindObject {
		var err error
		if p.clientUsage, _, err = jsonscan.Bool(f.options.Raw(p.body), "include_usage"); err != nil {
			return fieldTwice("stream_options.include_usage")
		}
	}
	return nil
}

type providerKey struct{}

// WithProvider returns a context whose gateway requests go to one provider
// only, whatever the model's route (the admin panel's test of a provider).
func WithProvider(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, providerKey{}, name)
}

// forcedRoute is a route to one provider, keeping the upstream model the
// model's own route gives that provider, if any.
func (s *Snapshot) forcedRoute(name string, route *Route) *Route {
	prov := s.providers[name]
	if prov == nil {
		return nil
	}
	r := &Route{Name: "(test " + name + ")", Origin: "test", Strategy: Fallback}
	if route != nil {
		r.pricing, r.Info = route.pricing, route.Info
		for _, t := range route.targets {
			if t.provider == prov {
				r.targets = append(r.targets, t)
			}
		}
	}
	if len(r.targets) == 0 {
		for b := range prov.bases {
			r.targets = append(r.targets, &target{provider: prov, base: b, weight: 1,
				bal: s.health.balance(prov.Name, prov.bases[b].String())})
		}
	}
	return r
}

// serves reports whether a provider can take the plan's call.
func (p *Plan) serves(prov *Provider) bool {
	if prov.Kind.api() != p.call.API {
		return false
	}
	if p.call.Responses() {
		return prov.native || prov.translated != nil
	}
	return true
}

// modelName returns the model a body's JSON string names. A configured
// model's name is the route's own string, found without a copy when the
// literal has no escapes; any other name is unquoted.
func (s *Snapshot) modelName(lit []byte) string {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 { // then it reads as it is (jsonscan's unquote)
		if r := s.routes[string(inner)]; r != nil {
			return r.Name
		}
	}
	name, _ := jsonscan.Unquote(lit)
	return name
}

// resolve finds a model's route: its own, then the most specific
// pattern, then an implicit route over every provider whose models match.
func (s *Snapshot) resolve(model string) *Route {
	if r := s.routes[model]; r != nil {
		return r
	}
	for _, r := range s.patterns {
		if r.pattern.Match(model) {
			return r
		}
	}
	var provs []*Provider
	for _, prov := range s.providerList {
		if prov.models.Match(model) {
			provs = append(provs, prov)
		}
	}
	if len(provs) == 0 {
		return nil
	}
	names := make([]string, len(provs))
	for i, prov := range provs {
		names[i] = prov.Name
	}
	key := strings.Join(names, "\x00")
	if r, ok := s.implicit.Load(key); ok {
		return r.(*Route)
	}
	r := &Route{Name: "(implicit)", Origin: "providers", Strategy: s.strategy}
	for _, prov := range provs {
		for b := range prov.bases {
			r.targets = append(r.targets, &target{provider: prov, base: b, weight: prov.weight,
				bal: s.health.balance(prov.Name, prov.bases[b].String())})
		}
	}
	actual, _ := s.implicit.LoadOrStore(key, r)
	return actual.(*Route)
}

// PresetPlan prepares a preset request: rest is the escaped path after
// the preset, and the request goes to the preset's upstreams in turn,
// with its server-side key when it has some. The caller was checked by
// the server (a keyed preset needs a client credential).
func (s *Snapshot) PresetPlan(r *http.Request, prov *Provider, rest string, caller *access.Caller, maxBody int64) (*Plan, error) {
	p := &Plan{s: s, caller: caller, passthrough: true, rest: rest, query: r.URL.RawQuery,
		inject: prov.Keyed(), max: s.maxAttempts}
	p.targets = prov.presetTargets()
	if len(p.targets) == 1 && !p.inject {
		// The common case, the client's own key to one upstream: one
		// attempt, the body streamed as it comes (a bad path is refused
		// when the URL is built).
		p.max = 1
		return p, nil
	}
	if p.inject {
		p.query = stripQueryParam(p.query, "key") // the client's credential, maybe
	}
	if _, err := preset.Join(prov.bases[0], rest, p.query); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_path", Message: err.Error()}
	}
	// Failover needs the body again; a body too large to keep is sent
	// once, without failover.
	if ok, err := replay.Buffer(r, maxBody); err != nil {
		return nil, err
	} else if ok {
		p.body, _ = replay.Bytes(r)
	} else {
		p.max = 1
	}
	if p.inject {
		p.metered, p.format = presetFormat(prov, rest)
		model, stream, f, err := presetModel(prov, rest, p.body)
		if err != nil && (p.metered || caller.RestrictsModels()) {
			return nil, err
		}
		p.model, p.stream = model, stream
		upgrade := wsproxy.IsUpgrade(r)
		if upgrade && p.model == "" {
			// A session's model: OpenAI's Realtime API names it in the
			// query; Gemini Live in its first message, which nothing
			// here reads (so a key limited to some models gets none).
			p.model = r.URL.Query().Get("model")
		}
		// A key limited to some models must name one: a body whose model
		// llmproxy cannot read could still name another to the provider,
		// and so could a session.
		if caller.RestrictsModels() && (p.model == "" && (p.body != nil || upgrade) || p.model != "" && !caller.AllowsModel(p.model)) {
			return nil, modelNotAllowed(p.model)
		}
		if p.format == meter.OpenAI && p.stream && strings.HasSuffix(rest, "/chat/completions") {
			if err := p.readOptions(f); err != nil {
				return nil, err
			}
			p.call = Call{API: OpenAI, Endpoint: "/chat/completions"}
		}
	}
	return p, nil
}

// presetTargets returns the preset's upstreams as targets, the next one
// in turn first. The slice is shared when there is one: read only.
func (prov *Provider) presetTargets() []*target {
	if len(prov.targets) == 1 {
		return prov.targets
	}
	first := prov.firstBase()
	return append(slices.Clone(prov.targets[first:]), prov.targets[:first]...)
}

// presetFormat says whether and how a keyed preset's answers are metered:
// the APIs whose answers carry usage.
func presetFormat(prov *Provider, rest string) (bool, meter.Format) {
	switch prov.Kind {
	case KindAnthropic:
		return strings.HasSuffix(rest, "/messages"), meter.Anthropic
	case KindGemini:
		return strings.Contains(rest, ":generateContent") || strings.Contains(rest, ":streamGenerateContent"), meter.Gemini
	}
	switch {
	case strings.HasSuffix(rest, "/responses"):
		return true, meter.OpenAIResponses
	case strings.HasSuffix(rest, "/chat/completions"), strings.HasSuffix(rest, "/completions"), strings.HasSuffix(rest, "/embeddings"):
		return true, meter.OpenAI
	}
	return false, meter.OpenAI
}

// presetModel reads the model of a preset request: from the path for
// Gemini, else from the JSON body (a body without one has none; a body
// that names it twice, or is not JSON, is an error), with what else the
// pass over the body found.
func presetModel(prov *Provider, rest string, body []byte) (model string, stream bool, f bodyFields, err error) {
	if prov.Kind == KindGemini {
		if i := strings.Index(rest, "/models/"); i >= 0 {
			m, method, _ := strings.Cut(rest[i+len("/models/"):], ":")
			if u, err := url.PathUnescape(m); err == nil {
				m = u
			}
			return m, method == "streamGenerateContent", f, nil
		}
		return "", false, f, nil
	}
	if len(body) == 0 {
		return "", false, f, nil
	}
	if f, err = readBody(body); err != nil {
		return "", false, f, err
	}
	if f.model.Kind == jsonscan.KindString {
		model, _ = jsonscan.Unquote(f.model.Raw(body))
	}
	return model, f.stream.Kind == jsonscan.KindTrue, f, nil
}

// GenericPlan prepares a generic-mode request to u: one attempt, behind
// the address guard, with the denylist header policy.
func (s *Snapshot) GenericPlan(u *url.URL) *Plan {
	return &Plan{s: s, caller: operator, passthrough: true, fixed: u, max: 1, targets: s.generic.targets}
}

var operator = access.OperatorCaller()

// stripQueryParam removes every name=… parameter from a raw query, keeping
// the others byte for byte. A name percent-encoded (%6Bey) is the name, as
// net/url and the providers decode it.
func stripQueryParam(raw, name string) string {
	if !strings.Contains(raw, name) && strings.IndexByte(raw, '%') < 0 {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, part := range parts {
		k, _, _ := strings.Cut(part, "=")
		if k == name {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil && dk == name {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}
