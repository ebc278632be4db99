package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Anthropic configures a fake Anthropic Messages API. It serves
// POST /v1/messages (stream and not), POST /v1/messages/count_tokens and
// GET /v1/models[/{id}]; every request needs the anthropic-version header,
// as Anthropic's does. The zero value is a keyless provider that answers
// every model with "Hello from anthropic".
type Anthropic struct {
	// Name appears in the default answer ("Hello from <Name>"). Default
	// "anthropic".
	Name string
	// Keys, when set, are the only x-api-key values accepted; other
	// requests get Anthropic's 401 authentication_error. Default: no check.
	Keys []string
	// Models lists what GET /v1/models returns and the only models the
	// other endpoints accept (others get 404 not_found_error). Default:
	// every model is accepted and the list is claude-sonnet-4-5,
	// claude-haiku-4-5.
	Models []string

	// Reply is the answer: runs of Deltas of one kind become content
	// blocks (thinking, text, tool_use), and each Delta one
	// content_block_delta. Default "Hello from <Name>" in three deltas.
	Reply []Delta
	// FinishReason is the stop_reason, in OpenAI's words (stop → end_turn,
	// length → max_tokens, tool_calls → tool_use, content_filter → refusal)
	// or Anthropic's own. Default tool_use when Reply calls a tool, else
	// end_turn.
	FinishReason string
	// Respond, when set, answers instead of Reply and FinishReason.
	Respond func(r FaultRequest) (reply []Delta, finishReason string)
	// Fault, when set, is asked about every request before anything else.
	Fault func(r FaultRequest) Fault
	// ChunkDelay passes between stream events. Default none.
	ChunkDelay time.Duration

	// CachedTokens is usage.cache_read_input_tokens and
	// CacheCreationTokens usage.cache_creation_input_tokens; input_tokens
	// is what remains of CountTokens' Prompt.
	CachedTokens        int
	CacheCreationTokens int
}

// AnthropicServer is a running fake Anthropic provider.
type AnthropicServer struct {
	*Server
	h *anthropicHandler
}

// NewAnthropic starts a fake Anthropic provider over TLS (see NewServer).
// It copies a; nil means the zero Anthropic. Point the SDK at URL
// (option.WithBaseURL).
func NewAnthropic(t testing.TB, a *Anthropic, opts *Options) *AnthropicServer {
	t.Helper()
	h := newAnthropicHandler(a)
	s := &AnthropicServer{Server: NewServer(t, h, opts), h: h}
	t.Cleanup(func() { close(h.core.done) })
	return s
}

// KeyRequests is how many requests carried key in x-api-key, whatever the
// answer; "" counts those without one.
func (s *AnthropicServer) KeyRequests(key string) int { return s.h.core.keyRequests(key) }

type anthropicHandler struct {
	cfg  Anthropic
	core *core
}

func newAnthropicHandler(a *Anthropic) *anthropicHandler {
	var cfg Anthropic
	if a != nil {
		cfg = *a
	}
	if cfg.Name == "" {
		cfg.Name = "anthropic"
	}
	return &anthropicHandler{cfg: cfg, core: newCore(cfg.Fault, cfg.ChunkDelay)}
}

type anthropicRequest struct {
	Model     string          `json:"model"`
	Stream    bool            `json:"stream"`
	MaxTokens *int            `json:"max_tokens"`
	Messages  json.RawMessage `json:"messages"`
}

func (h *anthropicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	var req anthropicRequest
	jsonErr := error(nil)
	if r.Method == http.MethodPost {
		jsonErr = json.Unmarshal(body, &req)
	}
	key := r.Header.Get("x-api-key")
	fr, f := h.core.begin(r, body, key, req.Model, req.Stream)
	w.Header().Set("request-id", fmt.Sprintf("req_fake%06d", fr.N))
	a := h.core.answer(w, r, f)
	if a.early() {
		return
	}
	if f.isError() {
		h.writeFault(w, f, fr)
		return
	}
	path := r.URL.Path
	switch {
	case len(h.cfg.Keys) > 0 && key == "":
		h.writeError(w, fr, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return
	case len(h.cfg.Keys) > 0 && !slices.Contains(h.cfg.Keys, key):
		h.writeError(w, fr, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	case r.Header.Get("anthropic-version") == "":
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	case path == "/v1/models" && r.Method == http.MethodGet:
		h.models(a)
		return
	case strings.HasPrefix(path, "/v1/models/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(path, "/v1/models/")
		if !slices.Contains(h.modelList(), id) {
			h.writeError(w, fr, http.StatusNotFound, "not_found_error", "model: "+id)
			return
		}
		a.body("application/json", mustJSON(anthropicModel(id)))
		return
	case r.Method != http.MethodPost || (path != "/v1/messages" && path != "/v1/messages/count_tokens"):
		h.writeError(w, fr, http.StatusNotFound, "not_found_error", "Not Found")
		return
	case jsonErr != nil:
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "There was an error parsing the body of your request: invalid JSON")
		return
	case req.Model == "":
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "model: Field required")
		return
	case len(req.Messages) == 0 || string(req.Messages) == "null":
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "messages: Field required")
		return
	case strings.TrimSpace(string(req.Messages)) == "[]":
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "messages: at least one message is required")
		return
	case len(h.cfg.Models) > 0 && !slices.Contains(h.cfg.Models, req.Model):
		h.writeError(w, fr, http.StatusNotFound, "not_found_error", "model: "+req.Model)
		return
	case path == "/v1/messages/count_tokens":
		a.body("application/json", mustJSON(map[string]int{"input_tokens": CountTokens(body, nil).Prompt}))
		return
	case req.MaxTokens == nil:
		// Anthropic, unlike OpenAI, requires max_tokens: a translation
		// from Chat Completions must fill it in.
		h.writeError(w, fr, http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required")
		return
	}
	sc := makeScript(fr, h.cfg.Respond, h.cfg.Reply, h.cfg.FinishReason, h.cfg.Name)
	if req.Stream {
		h.stream(a, fr, req, sc)
	} else {
		h.message(a, fr, req, sc)
	}
}

// writeError writes Anthropic's error object.
func (h *anthropicHandler) writeError(w http.ResponseWriter, fr FaultRequest, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": typ, "message": msg},
		"request_id": fmt.Sprintf("req_fake%06d", fr.N),
	})
}

func (h *anthropicHandler) writeFault(w http.ResponseWriter, f Fault, fr FaultRequest) {
	status, typ, msg := f.status, "", ""
	switch f.kind {
	case faultRateLimited:
		typ = "rate_limit_error"
		msg = "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
	case faultQuota:
		// Anthropic says so with a 400, not a 429 or a 402.
		status, typ = http.StatusBadRequest, "invalid_request_error"
		msg = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."
	case faultContextLength:
		typ, msg = "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
	default:
		typ, msg = anthropicStatus(status)
	}
	if f.code != "" {
		typ = f.code
	}
	if f.message != "" {
		msg = f.message
	}
	h.writeError(w, fr, status, typ, msg)
}

// anthropicStatus is Anthropic's error type and message for a status, from
// its documented list of errors.
func anthropicStatus(status int) (typ, msg string) {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error", "Invalid request."
	case http.StatusUnauthorized:
		return "authentication_error", "invalid x-api-key"
	case http.StatusPaymentRequired:
		return "billing_error", "There is an issue with your account's billing."
	case http.StatusForbidden:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		return "not_found_error", "Not Found"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		return "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."
	case http.StatusGatewayTimeout:
		return "timeout_error", "Request timed out."
	case 529:
		return "overloaded_error", "Overloaded"
	}
	if status >= 500 {
		return "api_error", "Internal server error"
	}
	return "invalid_request_error", http.StatusText(status)
}

func (h *anthropicHandler) modelList() []string {
	if len(h.cfg.Models) > 0 {
		return h.cfg.Models
	}
	return []string{"claude-sonnet-4-5", "claude-haiku-4-5"}
}

func anthropicModel(id string) map[string]string {
	return map[string]string{"type": "model", "id": id, "display_name": id, "created_at": "2025-09-29T00:00:00Z"}
}

func (h *anthropicHandler) models(a *answer) {
	data := []map[string]string{}
	list := h.modelList()
	for _, m := range list {
		data = append(data, anthropicModel(m))
	}
	a.body("application/json", mustJSON(map[string]any{
		"data": data, "has_more": false, "first_id": list[0], "last_id": list[len(list)-1],
	}))
}

// stopReason is the finish reason in Anthropic's words.
func stopReason(finish string) string {
	switch finish {
	case FinishStop:
		return "end_turn"
	case FinishLength:
		return "max_tokens"
	case FinishToolCalls:
		return "tool_use"
	case FinishContentFilter:
		return "refusal"
	}
	return finish
}

// signature stands in for the signature Anthropic puts on a thinking block,
// which clients must send back unchanged.
func signature(msgID string, i int) string { return fmt.Sprintf("sig_%s_%d", msgID, i) }

func (h *anthropicHandler) usage(t Tokens) map[string]any {
	return map[string]any{
		"input_tokens":                max(t.Prompt-h.cfg.CachedTokens-h.cfg.CacheCreationTokens, 0),
		"cache_creation_input_tokens": h.cfg.CacheCreationTokens,
		"cache_read_input_tokens":     h.cfg.CachedTokens,
		"output_tokens":               t.Completion,
		"service_tier":                "standard",
	}
}

func (h *anthropicHandler) message(a *answer, fr FaultRequest, req anthropicRequest, sc script) {
	id := fmt.Sprintf("msg_fake%06d", fr.N)
	content := []any{}
	for i, b := range blocks(sc.deltas, "toolu_") {
		switch b.kind {
		case blockText:
			content = append(content, map[string]any{"type": "text", "text": b.text()})
		case blockReasoning:
			content = append(content, map[string]any{"type": "thinking", "thinking": b.text(), "signature": signature(id, i)})
		case blockTool:
			content = append(content, map[string]any{"type": "tool_use", "id": b.tool.ID, "name": b.tool.Name, "input": argsObject(b.tool.Arguments)})
		}
	}
	a.body("application/json", mustJSON(map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": content,
		"stop_reason": stopReason(sc.finish), "stop_sequence": nil, "usage": h.usage(sc.tokens),
	}))
}

func (h *anthropicHandler) stream(a *answer, fr FaultRequest, req anthropicRequest, sc script) {
	id := fmt.Sprintf("msg_fake%06d", fr.N)
	var events [][]byte
	ev := func(typ string, fields map[string]any) {
		fields["type"] = typ
		events = append(events, sse(typ, mustJSON(fields)))
	}
	start := h.usage(sc.tokens)
	start["output_tokens"] = 1 // Anthropic's message_start counts a token or so; message_delta has the total
	ev("message_start", map[string]any{"message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}})
	for i, b := range blocks(sc.deltas, "toolu_") {
		var cb, delta map[string]any
		var field string
		switch b.kind {
		case blockText:
			cb, delta, field = map[string]any{"type": "text", "text": ""}, map[string]any{"type": "text_delta"}, "text"
		case blockReasoning:
			cb, delta, field = map[string]any{"type": "thinking", "thinking": "", "signature": ""}, map[string]any{"type": "thinking_delta"}, "thinking"
		case blockTool:
			cb = map[string]any{"type": "tool_use", "id": b.tool.ID, "name": b.tool.Name, "input": map[string]any{}}
			delta, field = map[string]any{"type": "input_json_delta"}, "partial_json"
		}
		ev("content_block_start", map[string]any{"index": i, "content_block": cb})
		if i == 0 {
			ev("ping", map[string]any{})
		}
		for _, p := range b.pieces {
			d := map[string]any{"type": delta["type"], field: p}
			ev("content_block_delta", map[string]any{"index": i, "delta": d})
		}
		if b.kind == blockReasoning {
			ev("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "signature_delta", "signature": signature(id, i)}})
		}
		ev("content_block_stop", map[string]any{"index": i})
	}
	end := len(events)
	ev("message_delta", map[string]any{
		"delta": map[string]any{"stop_reason": stopReason(sc.finish), "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": sc.tokens.Completion},
	})
	ev("message_stop", map[string]any{})
	a.stream("text/event-stream", events, end)
}
