package meter

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"

	"github.com/llmproxy/llmproxy/jsonscan"
	"github.com/llmproxy/llmproxy/sse"
)

// usageState is what the meter learnt so far.
type usageState struct {
	u     Usage
	known bool // a usage object was seen

	anth anthropicUsage // Anthropic: the latest non-zero value of each field

	// Gemini: the latest chunk holding usageMetadata (its counts are
	// cumulative, the last one wins), decoded once at the end.
	last      []byte
	lastFinal bool // it is an SSE event without its blank line

	sr *sse.Reader // parses the few SSE events that may hold usage
	fd feed
}

// The keys whose value holds usage, without their opening quote: searching
// for a '"' first would stop at every string of the JSON.
var (
	keyUsage         = []byte(`usage"`)
	keyUsageMetadata = []byte(`usageMetadata"`)
)

// unit looks at one unit of the body: an SSE event (its raw bytes), a Gemini
// JSON chunk, or a whole non-streaming body. final says the body ended
// without closing it. It reports whether the unit is the usage-only chunk
// that strip drops.
func (m *meter) unit(raw []byte, final bool) (usageOnly bool) {
	if m.requireEnd && !m.sawEnd {
		m.sawEnd = endsStream(m.f, raw)
	}
	if m.f == Gemini {
		if hasObject(raw, keyUsageMetadata) {
			m.last, m.lastFinal = append(m.last[:0], raw...), final
		}
		return false
	}
	if !m.stream {
		m.decode(raw)
		return false
	}
	// Cheap test first: OpenAI sends "usage": null in every chunk when
	// include_usage is set, and only one chunk with an object.
	if !hasObject(raw, keyUsage) {
		return false
	}
	data := m.eventData(raw, final)
	if data == nil {
		return false
	}
	return m.decode(data)
}

// finishGemini decodes the last Gemini chunk that had usage.
func (m *meter) finishGemini() {
	if m.f != Gemini || m.last == nil {
		return
	}
	data := m.last
	if m.stream {
		data = m.eventData(data, m.lastFinal)
	}
	if data != nil {
		m.decode(data)
	}
	m.last = nil
}

var (
	lf  = []byte("\n")
	lf2 = []byte("\n\n")
)

// eventData returns the data of one whole SSE event, parsed by sse.Reader.
// final adds the blank line a body cut after the event's last line lacks.
// The slice is valid until the next call.
func (m *meter) eventData(raw []byte, final bool) []byte {
	var term []byte
	if final {
		if isBlank(raw) {
			return nil
		}
		term = lf2
		if raw[len(raw)-1] == '\n' {
			term = lf
		}
	}
	m.fd.a, m.fd.b = raw, term
	if m.sr == nil {
		m.sr = sse.NewReader(&m.fd)
		m.sr.MaxEvent = m.max + len(lf2) + 1
	}
	ev, err := m.sr.Next()
	if err != nil || len(ev.Raw) != len(raw)+len(term) {
		// sse saw another event boundary than sseSplit (the fuzzer says it
		// does not): start afresh rather than misread what follows.
		m.sr = nil
		return nil
	}
	return ev.Data
}

// feed is the source of the meter's sse.Reader: one event at a time, so
// that Next never waits for bytes that are not there.
type feed struct{ a, b []byte }

func (f *feed) Read(p []byte) (int, error) {
	if len(f.a) == 0 {
		f.a, f.b = f.b, nil
	}
	if len(f.a) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.a)
	f.a = f.a[n:]
	return n, nil
}

// hasObject reports whether b holds the key (given without its opening
// quote) followed by an object value. Inside a JSON string the key's quotes
// would be escaped, so text rarely matches, and a match only costs a decode
// that finds nothing.
func hasObject(b, key []byte) bool {
	for off := 0; ; {
		i := bytes.Index(b[off:], key)
		if i < 0 {
			return false
		}
		i += off
		off = i + len(key)
		if i == 0 || b[i-1] != '"' {
			continue
		}
		j := skipSpace(b, off)
		if j < len(b) && b[j] == ':' {
			if j = skipSpace(b, j+1); j < len(b) && b[j] == '{' {
				return true
			}
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// decode reads usage from one JSON value: a chunk, an event's data, a whole
// body. Malformed JSON or unexpected shapes leave usage as it was. For
// OpenAI it reports whether the value is the usage-only chunk.
func (m *meter) decode(data []byte) (usageOnly bool) {
	if usageOnly, ok := m.decodeFast(data); ok {
		return usageOnly
	}
	return m.decodeSlow(data)
}

// decodeSlow is decode by encoding/json alone.
func (m *meter) decodeSlow(data []byte) (usageOnly bool) {
	switch m.f {
	case OpenAI:
		var v struct {
			Choices json.RawMessage     `json:"choices"`
			Usage   object[openAIUsage] `json:"usage"`
			// Groq has sent usage in its own x_groq object on the last chunk.
			XGroq *struct {
				Usage object[openAIUsage] `json:"usage"`
			} `json:"x_groq"`
		}
		_ = json.Unmarshal(data, &v) // on a type error the fields that fit are kept
		switch {
		case v.Usage.p != nil:
			m.u, m.known = v.Usage.p.usage(), true
			return isEmptyArray(v.Choices)
		case v.XGroq != nil && v.XGroq.Usage.p != nil:
			m.u, m.known = v.XGroq.Usage.p.usage(), true
		}
	case OpenAIResponses:
		var v struct {
			Response *struct {
				Usage object[responsesUsage] `json:"usage"`
			} `json:"response"` // streaming: response.completed, .incomplete, .failed
			Usage object[responsesUsage] `json:"usage"` // the response object itself
		}
		_ = json.Unmarshal(data, &v)
		u := v.Usage.p
		if v.Response != nil && v.Response.Usage.p != nil {
			u = v.Response.Usage.p
		}
		if u != nil {
			m.u, m.known = u.usage(), true
		}
	case Anthropic:
		var v struct {
			Message *struct {
				Usage object[anthropicUsage] `json:"usage"`
			} `json:"message"` // message_start
			Usage object[anthropicUsage] `json:"usage"` // message_delta, or a whole message
		}
		_ = json.Unmarshal(data, &v)
		if v.Message != nil && v.Message.Usage.p != nil {
			m.anth.merge(v.Message.Usage.p)
			m.known = true
		}
		if v.Usage.p != nil {
			m.anth.merge(v.Usage.p)
			m.known = true
		}
		m.u = m.anth.usage()
	case Gemini:
		var v struct {
			UsageMetadata object[geminiUsage] `json:"usageMetadata"`
		}
		_ = json.Unmarshal(data, &v)
		if v.UsageMetadata.p != nil {
			m.u, m.known = v.UsageMetadata.p.usage(), true
		}
	}
	return false
}

// decodeFast is decode for the usual document: jsonscan finds the few
// values usage lives in with one pass over the bytes, and only those small
// objects go through encoding/json, instead of a validating pass and a
// decoding pass over a whole answer. ok is false when jsonscan refuses the
// document (invalid, or a looked-up key twice or in another case): decode
// then reads it as it always has, with encoding/json's rules.
func (m *meter) decodeFast(data []byte) (usageOnly, ok bool) {
	// Each usage struct is filled on the stack, by a direct call of its
	// fill: a generic helper returning one would move it to the heap.
	switch m.f {
	case OpenAI:
		raw, ok := objectAt(data, "usage")
		if !ok {
			return false, false
		}
		if raw != nil {
			var u openAIUsage
			u.fill(raw)
			m.u, m.known = u.usage(), true
			if !m.stream {
				return false, true
			}
			v, found, err := jsonscan.Get(data, "choices")
			if err != nil {
				return false, false
			}
			return found && isEmptyArray(v.Raw(data)), true
		}
		if raw, ok = objectAt(data, "x_groq", "usage"); raw != nil {
			var u openAIUsage
			u.fill(raw)
			m.u, m.known = u.usage(), true
		}
		return false, ok
	case OpenAIResponses:
		// response.usage (a stream's last event) wins over usage (a whole
		// answer).
		inner, outer, ok := nestedUsage(data, "response")
		if !ok {
			return false, false
		}
		raw := inner
		if raw == nil {
			raw = outer
		}
		if raw != nil {
			var u responsesUsage
			u.fill(raw)
			m.u, m.known = u.usage(), true
		}
		return false, true
	case Anthropic:
		// message.usage (message_start) and usage (message_delta, a whole
		// answer) both count.
		inner, outer, ok := nestedUsage(data, "message")
		if !ok {
			return false, false
		}
		for _, raw := range [...][]byte{inner, outer} {
			if raw != nil {
				var u anthropicUsage
				u.fill(raw)
				m.anth.merge(&u)
				m.known = true
			}
		}
		m.u = m.anth.usage()
		return false, true
	case Gemini:
		raw, ok := objectAt(data, "usageMetadata")
		if raw != nil {
			var u geminiUsage
			u.fill(raw)
			m.u, m.known = u.usage(), true
		}
		return false, ok
	}
	return false, false
}

// objectAt finds the object at path for a usage struct's fill, which reads
// the fields encoding/json would read, without its reflection. raw is nil
// when the path is absent or holds something else than an object; ok is
// false when jsonscan refuses the document.
func objectAt(data []byte, path ...string) (raw []byte, ok bool) {
	v, found, err := jsonscan.Get(data, path...)
	if err != nil {
		return nil, false
	}
	if !found || v.Kind != jsonscan.KindObject {
		return nil, true
	}
	return v.Raw(data), true
}

// nestedUsage finds the usage object inside the top-level member parent
// and the top-level usage object in one pass over data, and the first in
// a short pass over parent's value, which that pass validated (nil when
// absent or not an object); ok is false when jsonscan refuses the
// document.
func nestedUsage(data []byte, parent string) (inner, outer []byte, ok bool) {
	var top [2]jsonscan.Value
	if jsonscan.FieldsInto(top[:], data, parent, "usage") != nil {
		return nil, nil, false
	}
	if p := top[0]; p.Kind == jsonscan.KindObject {
		if inner, ok = objectAt(p.Raw(data), "usage"); !ok {
			return nil, nil, false
		}
	}
	if top[1].Kind == jsonscan.KindObject {
		outer = top[1].Raw(data)
	}
	return inner, outer, true
}

// filler is a usage struct that reads itself from a JSON object, as
// encoding/json would decode that object into it (FuzzDecodeFast compares
// the two).
type filler[T any] interface {
	*T
	fill(obj []byte)
}

// field reads raw into *p as encoding/json decodes a value into a field of
// type *T: null sets nil; anything else allocates a T if there is none, and
// an object's members are read into it by fill (a later duplicate key merges
// into what an earlier one read); a value of another type changes nothing
// more (to encoding/json, a type error that keeps the fields that fit).
func field[T any, P filler[T]](p **T, raw []byte) {
	if raw[0] == 'n' {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	if raw[0] == '{' {
		P(*p).fill(raw)
	}
}

// object holds a JSON object decoded into T; any other value (null, a
// string, a number) leaves p nil without failing the decode around it.
type object[T any] struct{ p *T }

func (o *object[T]) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var v T
	_ = json.Unmarshal(b, &v) // on a type error the fields that fit are kept
	o.p = &v
	return nil
}

// isEmptyArray reports whether raw is the JSON array [] (spaces allowed).
func isEmptyArray(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}

// count is a token count as providers write it: a JSON integer, tolerated
// as a float or a quoted number (some OpenAI-compatible servers), clamped to
// [0, MaxCount]. Anything else (null, garbage) counts as zero without
// failing the decode of the fields around it.
type count int64

func (c *count) UnmarshalJSON(b []byte) error {
	c.set(b)
	return nil
}

// set reads any JSON value's bytes as UnmarshalJSON does: encoding/json hands
// a count every value, null included.
func (c *count) set(b []byte) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	s := string(b)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			*c = 0
			return
		}
		n = int64(min(max(f, 0), MaxCount))
	}
	*c = count(min(max(n, 0), MaxCount))
}

// part returns a part no larger than its whole.
func part(p, whole count) int64 { return int64(min(p, whole)) }

// openAIUsage is Chat Completions' CompletionUsage (also legacy
// Completions; Embeddings send prompt_tokens and total_tokens only).
// prompt_tokens includes cached_tokens and completion_tokens includes
// reasoning_tokens, as Usage wants.
type openAIUsage struct {
	PromptTokens            count             `json:"prompt_tokens"`
	CompletionTokens        count             `json:"completion_tokens"`
	PromptTokensDetails     *cachedDetails    `json:"prompt_tokens_details"`
	CompletionTokensDetails *reasoningDetails `json:"completion_tokens_details"`
	// DeepSeek reports its context cache as prompt_cache_hit_tokens (of
	// prompt_tokens) instead of prompt_tokens_details.
	PromptCacheHitTokens count `json:"prompt_cache_hit_tokens"`
}

func (o *openAIUsage) fill(obj []byte) {
	for k, v := range jsonscan.Members(obj) {
		raw := v.Raw(obj)
		switch {
		case k.Is("prompt_tokens"):
			o.PromptTokens.set(raw)
		case k.Is("completion_tokens"):
			o.CompletionTokens.set(raw)
		case k.Is("prompt_tokens_details"):
			field(&o.PromptTokensDetails, raw)
		case k.Is("completion_tokens_details"):
			field(&o.CompletionTokensDetails, raw)
		case k.Is("prompt_cache_hit_tokens"):
			o.PromptCacheHitTokens.set(raw)
		}
	}
}

// fillCount reads the member name of obj into c, as encoding/json decodes a
// struct of that one count field: the details objects.
func fillCount(obj []byte, name string, c *count) {
	for k, v := range jsonscan.Members(obj) {
		if k.Is(name) {
			c.set(v.Raw(obj))
		}
	}
}

type cachedDetails struct {
	CachedTokens count `json:"cached_tokens"`
}

func (d *cachedDetails) fill(obj []byte) { fillCount(obj, "cached_tokens", &d.CachedTokens) }

type reasoningDetails struct {
	ReasoningTokens count `json:"reasoning_tokens"`
}

func (d *reasoningDetails) fill(obj []byte) { fillCount(obj, "reasoning_tokens", &d.ReasoningTokens) }

func (o *openAIUsage) usage() Usage {
	cached := o.PromptCacheHitTokens
	if d := o.PromptTokensDetails; d != nil && d.CachedTokens > 0 {
		cached = d.CachedTokens
	}
	var reasoning count
	if d := o.CompletionTokensDetails; d != nil {
		reasoning = d.ReasoningTokens
	}
	return Usage{
		Input:       int64(o.PromptTokens),
		CachedInput: part(cached, o.PromptTokens),
		Output:      int64(o.CompletionTokens),
		Reasoning:   part(reasoning, o.CompletionTokens),
	}
}

// responsesUsage is the Responses API's ResponseUsage: input_tokens includes
// cached_tokens, output_tokens includes reasoning_tokens.
type responsesUsage struct {
	InputTokens         count             `json:"input_tokens"`
	InputTokensDetails  *cachedDetails    `json:"input_tokens_details"`
	OutputTokens        count             `json:"output_tokens"`
	OutputTokensDetails *reasoningDetails `json:"output_tokens_details"`
}

func (r *responsesUsage) fill(obj []byte) {
	for k, v := range jsonscan.Members(obj) {
		raw := v.Raw(obj)
		switch {
		case k.Is("input_tokens"):
			r.InputTokens.set(raw)
		case k.Is("input_tokens_details"):
			field(&r.InputTokensDetails, raw)
		case k.Is("output_tokens"):
			r.OutputTokens.set(raw)
		case k.Is("output_tokens_details"):
			field(&r.OutputTokensDetails, raw)
		}
	}
}

func (r *responsesUsage) usage() Usage {
	var cached, reasoning count
	if d := r.InputTokensDetails; d != nil {
		cached = d.CachedTokens
	}
	if d := r.OutputTokensDetails; d != nil {
		reasoning = d.ReasoningTokens
	}
	return Usage{
		Input:       int64(r.InputTokens),
		CachedInput: part(cached, r.InputTokens),
		Output:      int64(r.OutputTokens),
		Reasoning:   part(reasoning, r.OutputTokens),
	}
}

// anthropicUsage is the Messages API's Usage (and MessageDeltaUsage).
// Anthropic's input_tokens counts only the tokens after the last cache
// breakpoint: cache reads and cache writes come on top of it, so Usage.Input
// is the sum of the three.
type anthropicUsage struct {
	InputTokens   count `json:"input_tokens"`
	CacheRead     count `json:"cache_read_input_tokens"`
	CacheCreation count `json:"cache_creation_input_tokens"`
	OutputTokens  count `json:"output_tokens"`
	// output_tokens_details.thinking_tokens: of output_tokens, sent by
	// newer API versions.
	OutputTokensDetails *thinkingDetails `json:"output_tokens_details"`
}

type thinkingDetails struct {
	ThinkingTokens count `json:"thinking_tokens"`
}

func (a *anthropicUsage) fill(obj []byte) {
	for k, v := range jsonscan.Members(obj) {
		raw := v.Raw(obj)
		switch {
		case k.Is("input_tokens"):
			a.InputTokens.set(raw)
		case k.Is("cache_read_input_tokens"):
			a.CacheRead.set(raw)
		case k.Is("cache_creation_input_tokens"):
			a.CacheCreation.set(raw)
		case k.Is("output_tokens"):
			a.OutputTokens.set(raw)
		case k.Is("output_tokens_details"):
			field(&a.OutputTokensDetails, raw)
		}
	}
}

func (d *thinkingDetails) fill(obj []byte) { fillCount(obj, "thinking_tokens", &d.ThinkingTokens) }

// merge takes o's non-zero fields. In a stream, message_start carries the
// input side and a first output count; message_delta carries the
// cumulative output_tokens and, in newer API versions, the input fields
// again (zero when they did not change meaning, so zero never overwrites).
func (a *anthropicUsage) merge(o *anthropicUsage) {
	take := func(dst *count, v count) {
		if v != 0 {
			*dst = v
		}
	}
	take(&a.InputTokens, o.InputTokens)
	take(&a.CacheRead, o.CacheRead)
	take(&a.CacheCreation, o.CacheCreation)
	take(&a.OutputTokens, o.OutputTokens)
	if d := o.OutputTokensDetails; d != nil && d.ThinkingTokens != 0 {
		if a.OutputTokensDetails == nil {
			a.OutputTokensDetails = &thinkingDetails{}
		}
		a.OutputTokensDetails.ThinkingTokens = d.ThinkingTokens
	}
}

func (a *anthropicUsage) usage() Usage {
	var thinking count
	if d := a.OutputTokensDetails; d != nil {
		thinking = d.ThinkingTokens
	}
	return Usage{
		Input:       int64(a.InputTokens + a.CacheRead + a.CacheCreation),
		CachedInput: int64(a.CacheRead),
		CacheWrite:  int64(a.CacheCreation),
		Output:      int64(a.OutputTokens),
		Reasoning:   part(thinking, a.OutputTokens),
	}
}

// geminiUsage is GenerateContentResponse.usageMetadata. promptTokenCount
// includes cachedContentTokenCount; candidatesTokenCount excludes
// thoughtsTokenCount; toolUsePromptTokenCount (tool results fed back to the
// model as input) is billed as input and counted in totalTokenCount, so it
// joins Input.
type geminiUsage struct {
	PromptTokenCount        count `json:"promptTokenCount"`
	CachedContentTokenCount count `json:"cachedContentTokenCount"`
	CandidatesTokenCount    count `json:"candidatesTokenCount"`
	ThoughtsTokenCount      count `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount count `json:"toolUsePromptTokenCount"`
}

func (g *geminiUsage) fill(obj []byte) {
	for k, v := range jsonscan.Members(obj) {
		raw := v.Raw(obj)
		switch {
		case k.Is("promptTokenCount"):
			g.PromptTokenCount.set(raw)
		case k.Is("cachedContentTokenCount"):
			g.CachedContentTokenCount.set(raw)
		case k.Is("candidatesTokenCount"):
			g.CandidatesTokenCount.set(raw)
		case k.Is("thoughtsTokenCount"):
			g.ThoughtsTokenCount.set(raw)
		case k.Is("toolUsePromptTokenCount"):
			g.ToolUsePromptTokenCount.set(raw)
		}
	}
}

func (g *geminiUsage) usage() Usage {
	return Usage{
		Input:       int64(g.PromptTokenCount + g.ToolUsePromptTokenCount),
		CachedInput: part(g.CachedContentTokenCount, g.PromptTokenCount),
		Output:      int64(g.CandidatesTokenCount + g.ThoughtsTokenCount),
		Reasoning:   int64(g.ThoughtsTokenCount),
	}
}

// endsStream reports whether a unit of a stream is its format's last event
// (or an error event, which ends a stream honestly). It reads the event's
// structure — its event: and data: lines, quoted JSON keys — never words
// that the model's text may hold: inside a JSON string a newline and a
// quote are escaped, so an answer that says "data: [DONE]" or
// "message_stop" ends nothing.
func endsStream(f Format, raw []byte) bool {
	switch f {
	case OpenAI:
		if stringValue(raw, keyFinishReason) {
			return true
		}
		d, ok := sseField(raw, "data")
		return ok && string(bytes.TrimSpace(d)) == "[DONE]" // as the SDKs read it
	case OpenAIResponses:
		switch string(eventType(raw)) {
		case "response.completed", "response.incomplete", "response.failed", "error":
			return true
		}
		return false
	case Anthropic:
		switch string(eventType(raw)) {
		case "message_stop", "error":
			return true
		}
		return false
	case Gemini:
		// A finishReason ends a candidate's answer; a blockReason (a
		// refused prompt, answered without candidates) or an error the
		// whole answer.
		return bytes.Contains(raw, keyFinishReasonGemini) || stringValue(raw, keyBlockReason) ||
			bytes.Contains(raw, []byte(`{"error"`))
	}
	return true
}

var (
	keyFinishReason       = []byte(`"finish_reason"`)
	keyFinishReasonGemini = []byte(`"finishReason"`)
	keyBlockReason        = []byte(`"blockReason"`)
)

// eventType is an SSE event's type: its event: line, or, without one (a
// provider that sends data: lines alone), its data's top-level "type".
func eventType(raw []byte) []byte {
	if ev, ok := sseField(raw, "event"); ok {
		return ev
	}
	d, ok := sseField(raw, "data")
	if !ok {
		return nil
	}
	t, _, _ := jsonscan.String(d, "type")
	return []byte(t)
}

// sseField returns the value of the first line of the SSE event raw whose
// field is name, as the SSE rules read it: the name, a colon, one optional
// space, the rest of the line without its CR.
func sseField(raw []byte, name string) ([]byte, bool) {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && string(line[:len(name)]) == name {
			v := bytes.TrimSuffix(line[len(name)+1:], []byte("\r"))
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			return v, true
		}
	}
	return nil, false
}

// stringValue reports whether key appears in raw with a string value
// (`"finish_reason": "stop"`, not `"finish_reason":null`).
func stringValue(raw, key []byte) bool {
	for {
		i := bytes.Index(raw, key)
		if i < 0 {
			return false
		}
		rest := bytes.TrimLeft(raw[i+len(key):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if rest = bytes.TrimLeft(rest[1:], " \t\r\n"); len(rest) > 0 && rest[0] == '"' {
				return true
			}
		}
		raw = raw[i+len(key):]
	}
}
