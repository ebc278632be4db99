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

// OpenAI configures a fake OpenAI-compatible provider. It serves, under
// BasePath: POST /chat/completions (stream and not), POST /embeddings,
// GET /models and /models/{id}, and POST /responses when NativeResponses is
// set. The zero value is a keyless provider that answers every model with
// "Hello from openai".
type OpenAI struct {
	// Name appears in the default answer ("Hello from <Name>") and as
	// owned_by in the model list. Default "openai".
	Name string
	// BasePath prefixes every endpoint, e.g. "/api/paas/v4" for Zhipu.
	// Default "/v1", or "/openai" in Azure mode.
	BasePath string
	// Keys, when set, are the only API keys accepted (Authorization: Bearer,
	// or api-key in Azure mode); other requests get OpenAI's 401, whose
	// message never repeats the key. Default: no check.
	Keys []string
	// Azure reads the key from the api-key header and also serves
	// {BasePath}/deployments/{deployment}/…, where the deployment names
	// the model, as Azure OpenAI does. The api-version query is not checked.
	Azure bool
	// Models lists what GET /models returns and the only models the other
	// endpoints accept (others get 404 model_not_found). Default: every
	// model is accepted and the list is gpt-4o-mini, text-embedding-3-small.
	Models []string

	// Reply is the answer; each Delta is one stream chunk, and a
	// non-streaming answer gathers them into one message. Default
	// "Hello from <Name>" in three chunks.
	Reply []Delta
	// FinishReason ends the answer: FinishStop, FinishLength,
	// FinishToolCalls, FinishContentFilter or any other string. Default
	// tool_calls when Reply calls a tool, else stop.
	FinishReason string
	// Respond, when set, answers instead of Reply and FinishReason, so the
	// answer can depend on the request (r.Body holds it). A nil reply
	// means the default; an empty finish reason the default.
	Respond func(r FaultRequest) (reply []Delta, finishReason string)
	// Fault, when set, is asked about every request before anything else
	// (the key check included); a zero Fault answers normally.
	Fault func(r FaultRequest) Fault
	// ChunkDelay passes between stream chunks. Default none.
	ChunkDelay time.Duration

	// UsageOnLastChunk puts usage on the chunk that carries finish_reason,
	// in every stream whether stream_options.include_usage asked or not,
	// and sends no usage-only chunk, as several compatible providers do
	// (Zhipu, some vLLM builds). Default: OpenAI's way, a last chunk with
	// "choices": [] when include_usage is true and "usage": null on the
	// others.
	UsageOnLastChunk bool
	// NoUsage never reports usage, streaming or not. Default false.
	NoUsage bool
	// CachedTokens is reported as prompt_tokens_details.cached_tokens.
	// Token counts are those of CountTokens.
	CachedTokens int
	// NativeResponses serves POST /responses, a minimal Responses API
	// (text, reasoning summary and function calls). Default off: 404 like
	// providers that only have Chat Completions.
	NativeResponses bool
}

// OpenAIServer is a running fake OpenAI provider.
type OpenAIServer struct {
	*Server
	h *openAIHandler
}

// NewOpenAI starts a fake OpenAI-compatible provider over TLS (see
// NewServer). It copies o, so later changes to o have no effect; nil
// means the zero OpenAI.
func NewOpenAI(t testing.TB, o *OpenAI, opts *Options) *OpenAIServer {
	t.Helper()
	h := newOpenAIHandler(o)
	s := &OpenAIServer{Server: NewServer(t, h, opts), h: h}
	t.Cleanup(func() { close(h.core.done) }) // runs before the server closes: hung handlers return
	return s
}

// BaseURL is the URL of BasePath with a trailing slash, as the OpenAI SDK's
// option.WithBaseURL wants it.
func (s *OpenAIServer) BaseURL() string { return s.URL + s.h.base + "/" }

// KeyRequests is how many requests carried key (in Authorization: Bearer, or
// api-key in Azure mode), whatever the answer; "" counts those without one.
func (s *OpenAIServer) KeyRequests(key string) int { return s.h.core.keyRequests(key) }

type openAIHandler struct {
	cfg  OpenAI
	base string
	core *core
}

func newOpenAIHandler(o *OpenAI) *openAIHandler {
	var cfg OpenAI
	if o != nil {
		cfg = *o
	}
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	base := cfg.BasePath
	if base == "" {
		base = "/v1"
		if cfg.Azure {
			base = "/openai"
		}
	}
	base = "/" + strings.Trim(base, "/")
	return &openAIHandler{cfg: cfg, base: base, core: newCore(cfg.Fault, cfg.ChunkDelay)}
}

// openAIRequest is the part of a request body the fake reads.
type openAIRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages json.RawMessage `json:"messages"`
	Input    json.RawMessage `json:"input"`
}

func (h *openAIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	var req openAIRequest
	jsonErr := error(nil)
	if r.Method == http.MethodPost {
		jsonErr = json.Unmarshal(body, &req)
	}
	endpoint, deployment := h.route(r.URL.Path)
	if deployment != "" {
		req.Model = deployment // Azure routes by deployment, whatever the body says
	}
	key := bearer(r.Header.Get("Authorization"))
	if h.cfg.Azure {
		key = r.Header.Get("api-key")
	}
	fr, f := h.core.begin(r, body, key, req.Model, req.Stream)
	w.Header().Set("x-request-id", fmt.Sprintf("req_fake%06d", fr.N))
	a := h.core.answer(w, r, f)
	if a.early() {
		return
	}
	if f.isError() {
		h.writeFault(w, f, fr)
		return
	}
	if len(h.cfg.Keys) > 0 && !slices.Contains(h.cfg.Keys, key) {
		h.writeAuthError(w, key)
		return
	}
	switch {
	case endpoint == "/models" && r.Method == http.MethodGet:
		h.models(a)
		return
	case strings.HasPrefix(endpoint, "/models/") && r.Method == http.MethodGet:
		h.model(w, a, strings.TrimPrefix(endpoint, "/models/"))
		return
	case r.Method != http.MethodPost,
		endpoint != "/chat/completions" && endpoint != "/embeddings" &&
			(endpoint != "/responses" || !h.cfg.NativeResponses):
		h.writeError(w, http.StatusNotFound, "invalid_request_error", "", "",
			fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
		return
	case jsonErr != nil:
		h.writeError(w, http.StatusBadRequest, "invalid_request_error", "", "",
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.")
		return
	case req.Model == "":
		h.writeError(w, http.StatusBadRequest, "invalid_request_error", "", "", "you must provide a model parameter")
		return
	case len(h.cfg.Models) > 0 && !slices.Contains(h.cfg.Models, req.Model):
		h.writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))
		return
	}
	switch endpoint {
	case "/chat/completions":
		if msgs := strings.TrimSpace(string(req.Messages)); msgs == "" || msgs == "null" {
			h.writeError(w, http.StatusBadRequest, "invalid_request_error", "missing_required_parameter", "messages",
				"Missing required parameter: 'messages'.")
			return
		} else if msgs == "[]" {
			h.writeError(w, http.StatusBadRequest, "invalid_request_error", "empty_array", "messages",
				"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
			return
		}
		sc := makeScript(fr, h.cfg.Respond, h.cfg.Reply, h.cfg.FinishReason, h.cfg.Name)
		if req.Stream {
			h.chatStream(a, fr, req, sc)
		} else {
			h.chat(a, fr, req, sc)
		}
	case "/embeddings":
		h.embeddings(w, a, body)
	case "/responses":
		sc := makeScript(fr, h.cfg.Respond, h.cfg.Reply, h.cfg.FinishReason, h.cfg.Name)
		h.responses(a, fr, req, sc)
	}
}

// route strips the base path (and in Azure mode /deployments/{name}) from
// path.
func (h *openAIHandler) route(path string) (endpoint, deployment string) {
	rest, ok := strings.CutPrefix(path, h.base)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", ""
	}
	if h.cfg.Azure {
		if after, ok := strings.CutPrefix(rest, "/deployments/"); ok {
			name, tail, _ := strings.Cut(after, "/")
			return "/" + tail, name
		}
	}
	return rest, ""
}

// bearer is the token of an Authorization header using the Bearer scheme,
// whose name is case-insensitive (RFC 9110 §11.1).
func bearer(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError writes OpenAI's error object; empty code and param are null.
func (h *openAIHandler) writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	writeJSON(w, status, map[string]any{"error": openAIError{
		Message: msg, Type: typ, Param: nullable(param), Code: nullable(code),
	}})
}

func (h *openAIHandler) writeAuthError(w http.ResponseWriter, key string) {
	switch {
	case h.cfg.Azure:
		// Azure's own shape: code is the status as a string.
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
			"code":    "401",
			"message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
		}})
	case key == "":
		h.writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "",
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
	default:
		// OpenAI shows a masked key here; the fake shows none at all, so
		// that no test can leak one through an error message.
		h.writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "",
			"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
	}
}

func (h *openAIHandler) writeFault(w http.ResponseWriter, f Fault, fr FaultRequest) {
	status, typ, code, param, msg := f.status, "", "", "", ""
	switch f.kind {
	case faultRateLimited:
		typ, code = "requests", "rate_limit_exceeded"
		msg = fmt.Sprintf("Rate limit reached for %s on requests per min (RPM): Limit 3, Used 3, Requested 1.", fr.Model)
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
			if s := f.retryDelaySeconds(); s >= 0 {
				msg += fmt.Sprintf(" Please try again in %ds.", s)
			}
		}
	case faultQuota:
		status, typ, code = http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota"
		msg = "You exceeded your current quota, please check your plan and billing details."
	case faultContextLength:
		typ, code, param = "invalid_request_error", "context_length_exceeded", "messages"
		msg = "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."
	default:
		typ, code, msg = openAIStatus(status)
	}
	if f.code != "" {
		code = f.code
	}
	if f.message != "" {
		msg = f.message
	}
	h.writeError(w, status, typ, code, param, msg)
}

// openAIStatus is OpenAI's usual error for a status.
func openAIStatus(status int) (typ, code, msg string) {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error", "", "Invalid request."
	case http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
	case http.StatusPaymentRequired:
		// DeepSeek and other prepaid compatible providers.
		return "invalid_request_error", "insufficient_balance", "Insufficient Balance"
	case http.StatusForbidden:
		return "request_forbidden", "unsupported_country_region_territory", "Country, region, or territory not supported"
	case http.StatusNotFound:
		return "invalid_request_error", "", "The requested resource was not found."
	case http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded", "Rate limit reached for requests."
	case http.StatusInternalServerError:
		return "server_error", "", "The server had an error while processing your request. Sorry about that!"
	case http.StatusServiceUnavailable:
		return "server_error", "", "The engine is currently overloaded, please try again later."
	}
	if status >= 500 {
		return "server_error", "", http.StatusText(status)
	}
	return "invalid_request_error", "", http.StatusText(status)
}

func (h *openAIHandler) modelList() []string {
	if len(h.cfg.Models) > 0 {
		return h.cfg.Models
	}
	return []string{"gpt-4o-mini", "text-embedding-3-small"}
}

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (h *openAIHandler) models(a *answer) {
	data := []openAIModel{}
	for _, m := range h.modelList() {
		data = append(data, openAIModel{ID: m, Object: "model", Created: 1700000000, OwnedBy: h.cfg.Name})
	}
	a.body("application/json", mustJSON(map[string]any{"object": "list", "data": data}))
}

func (h *openAIHandler) model(w http.ResponseWriter, a *answer, id string) {
	if !slices.Contains(h.modelList(), id) {
		h.writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("The model '%s' does not exist", id))
		return
	}
	a.body("application/json", mustJSON(openAIModel{ID: id, Object: "model", Created: 1700000000, OwnedBy: h.cfg.Name}))
}

type openAIUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func (h *openAIHandler) usage(t Tokens) *openAIUsage {
	u := &openAIUsage{PromptTokens: t.Prompt, CompletionTokens: t.Completion, TotalTokens: t.Prompt + t.Completion}
	u.PromptTokensDetails.CachedTokens = h.cfg.CachedTokens
	u.CompletionTokensDetails.ReasoningTokens = t.Reasoning
	return u
}

type openAIToolCall struct {
	Index    *int   `json:"index,omitempty"` // in stream deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openAIMessage struct {
	Role             string           `json:"role,omitempty"`
	Content          *string          `json:"content,omitempty"`
	ReasoningContent *string          `json:"reasoning_content,omitempty"`
	ToolCalls        []openAIToolCall `json:"tool_calls,omitempty"`
}

type openAIChoice struct {
	Index        int            `json:"index"`
	Message      *openAIMessage `json:"message,omitempty"`
	Delta        *openAIMessage `json:"delta,omitempty"`
	Logprobs     *struct{}      `json:"logprobs"`
	FinishReason *string        `json:"finish_reason"`
}

type openAICompletion struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       string          `json:"service_tier"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []openAIChoice  `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

func (h *openAIHandler) chat(a *answer, fr FaultRequest, req openAIRequest, sc script) {
	msg := &openAIMessage{Role: "assistant"}
	var text, reasoning strings.Builder
	for _, d := range sc.deltas {
		text.WriteString(d.Text)
		reasoning.WriteString(d.Reasoning)
	}
	for _, b := range blocks(sc.deltas, "call_") {
		if b.kind != blockTool {
			continue
		}
		tc := openAIToolCall{ID: b.tool.ID, Type: "function"}
		tc.Function.Name, tc.Function.Arguments = b.tool.Name, b.tool.Arguments
		msg.ToolCalls = append(msg.ToolCalls, tc)
	}
	// OpenAI sends content null beside tool calls, "" for an empty answer.
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = nullable(text.String())
		if msg.Content == nil {
			msg.Content = new(string)
		}
	}
	if reasoning.Len() > 0 {
		msg.ReasoningContent = nullable(reasoning.String())
	}
	c := openAICompletion{
		ID: fmt.Sprintf("chatcmpl-fake%06d", fr.N), Object: "chat.completion", Created: time.Now().Unix(),
		Model: req.Model, ServiceTier: "default", SystemFingerprint: "fp_fake",
		Choices: []openAIChoice{{Message: msg, FinishReason: &sc.finish}},
	}
	if !h.cfg.NoUsage {
		c.Usage = mustJSON(h.usage(sc.tokens))
	}
	a.body("application/json", mustJSON(c))
}

func (h *openAIHandler) chatStream(a *answer, fr FaultRequest, req openAIRequest, sc script) {
	c := openAICompletion{
		ID: fmt.Sprintf("chatcmpl-fake%06d", fr.N), Object: "chat.completion.chunk", Created: time.Now().Unix(),
		Model: req.Model, ServiceTier: "default", SystemFingerprint: "fp_fake",
	}
	usageChunk := req.StreamOptions.IncludeUsage && !h.cfg.UsageOnLastChunk && !h.cfg.NoUsage
	if usageChunk {
		c.Usage = json.RawMessage("null")
	}
	var events [][]byte
	add := func(delta *openAIMessage, finish *string) {
		c.Choices = []openAIChoice{{Delta: delta, FinishReason: finish}}
		events = append(events, sse("", mustJSON(c)))
	}
	add(&openAIMessage{Role: "assistant", Content: new(string)}, nil)
	seen := map[int]bool{}
	for _, d := range sc.deltas {
		delta := &openAIMessage{Content: nullable(d.Text), ReasoningContent: nullable(d.Reasoning)}
		if d.Tool != nil {
			i := d.Tool.Index
			tc := openAIToolCall{Index: &i}
			tc.Function.Arguments = d.Tool.Arguments
			if !seen[i] {
				seen[i] = true
				tc.ID, tc.Type, tc.Function.Name = d.Tool.ID, "function", d.Tool.Name
				if tc.ID == "" {
					tc.ID = fmt.Sprintf("call_%d", i)
				}
			}
			delta.ToolCalls = []openAIToolCall{tc}
		}
		if delta.Content == nil && delta.ReasoningContent == nil && delta.ToolCalls == nil {
			delta.Content = new(string)
		}
		add(delta, nil)
	}
	end := len(events)
	if h.cfg.UsageOnLastChunk && !h.cfg.NoUsage {
		c.Usage = mustJSON(h.usage(sc.tokens))
	}
	add(&openAIMessage{}, &sc.finish)
	if usageChunk {
		c.Choices = []openAIChoice{}
		c.Usage = mustJSON(h.usage(sc.tokens))
		events = append(events, sse("", mustJSON(c)))
	}
	events = append(events, []byte("data: [DONE]\n\n"))
	a.stream("text/event-stream", events, end)
}

func (h *openAIHandler) embeddings(w http.ResponseWriter, a *answer, body []byte) {
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     int             `json:"dimensions"`
	}
	json.Unmarshal(body, &req)
	inputs := embeddingInputs(req.Input)
	if len(inputs) == 0 {
		h.writeError(w, http.StatusBadRequest, "invalid_request_error", "", "input",
			"'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
		return
	}
	dims := req.Dimensions
	if dims <= 0 || dims > 4096 {
		dims = defaultEmbeddingDims
	}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := []item{}
	tokens := 0
	for i, in := range inputs {
		v := embedVector(in, dims)
		var e any = v
		if req.EncodingFormat == "base64" {
			e = float32Base64(v)
		}
		data = append(data, item{Object: "embedding", Index: i, Embedding: e})
		tokens += (len(in) + 3) / 4
	}
	a.body("application/json", mustJSON(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	}))
}

// embeddingInputs are the texts to embed: input is a string, an array of
// strings, an array of token ids or an array of those; a token array is
// embedded as its JSON text.
func embeddingInputs(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return []string{string(raw)}
	}
	var out []string
	for _, el := range list {
		if json.Unmarshal(el, &s) == nil && s != "" {
			out = append(out, s)
			continue
		}
		if json.Unmarshal(el, &ids) == nil && len(ids) > 0 {
			out = append(out, string(el))
			continue
		}
		return nil
	}
	return out
}
