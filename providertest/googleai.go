package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GoogleAI configures a fake Gemini API (generativelanguage.googleapis.com)
// for the gateway; the Gemini fake beside it scripts resume instead. It
// serves, under /v1beta (and /v1): POST models/{model}:generateContent,
// :streamGenerateContent (SSE with alt=sse, a JSON array without),
// :countTokens, :embedContent, :batchEmbedContents, and GET models[/{model}].
// The zero value is a keyless provider that answers every model with
// "Hello from gemini".
type GoogleAI struct {
	// Name appears in the default answer ("Hello from <Name>"). Default
	// "gemini".
	Name string
	// Keys, when set, are the only keys accepted, from x-goog-api-key or
	// else ?key=. A wrong key gets what Google really answers, 400
	// INVALID_ARGUMENT with reason API_KEY_INVALID (not a 401); a missing
	// one 403 PERMISSION_DENIED. Default: no check.
	Keys []string
	// Models lists what GET models returns and the only models the other
	// endpoints accept (others get 404 NOT_FOUND). Default: every model is
	// accepted and the list is gemini-2.5-flash, gemini-2.5-pro,
	// gemini-embedding-001.
	Models []string

	// Reply is the answer; in a stream each Delta is one chunk, except
	// that a tool call goes out whole (functionCall with parsed args) in
	// the chunk of its first piece, since Gemini does not stream
	// arguments. Default "Hello from <Name>" in three chunks.
	Reply []Delta
	// FinishReason is the finishReason, in OpenAI's words (stop and
	// tool_calls → STOP, length → MAX_TOKENS, content_filter → SAFETY) or
	// Gemini's own. Default STOP.
	FinishReason string
	// Respond, when set, answers instead of Reply and FinishReason.
	Respond func(r FaultRequest) (reply []Delta, finishReason string)
	// Fault, when set, is asked about every request before anything else.
	Fault func(r FaultRequest) Fault
	// ChunkDelay passes between stream chunks. Default none.
	ChunkDelay time.Duration
	// CachedTokens is usageMetadata.cachedContentTokenCount (part of
	// promptTokenCount, as Gemini counts it).
	CachedTokens int
}

// GoogleAIServer is a running fake Gemini API.
type GoogleAIServer struct {
	*Server
	h *googleAIHandler
}

// NewGoogleAI starts a fake Gemini API over TLS (see NewServer). It copies
// g; nil means the zero GoogleAI. Point genai at URL
// (HTTPOptions.BaseURL).
func NewGoogleAI(t testing.TB, g *GoogleAI, opts *Options) *GoogleAIServer {
	t.Helper()
	h := newGoogleAIHandler(g)
	s := &GoogleAIServer{Server: NewServer(t, h, opts), h: h}
	t.Cleanup(func() { close(h.core.done) })
	return s
}

// KeyRequests is how many requests carried key (x-goog-api-key, or ?key=),
// whatever the answer; "" counts those without one.
func (s *GoogleAIServer) KeyRequests(key string) int { return s.h.core.keyRequests(key) }

type googleAIHandler struct {
	cfg  GoogleAI
	core *core
}

func newGoogleAIHandler(g *GoogleAI) *googleAIHandler {
	var cfg GoogleAI
	if g != nil {
		cfg = *g
	}
	if cfg.Name == "" {
		cfg.Name = "gemini"
	}
	return &googleAIHandler{cfg: cfg, core: newCore(cfg.Fault, cfg.ChunkDelay)}
}

// parseGooglePath splits /{version}/models[/{model}[:{method}]].
func parseGooglePath(path string) (model, method string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", "", false
	}
	version, rest, _ := strings.Cut(rest, "/")
	switch version {
	case "v1", "v1beta", "v1alpha":
	default:
		return "", "", false
	}
	if rest == "models" {
		return "", "", true
	}
	rest, ok = strings.CutPrefix(rest, "models/")
	if !ok {
		return "", "", false
	}
	model, method, _ = strings.Cut(rest, ":")
	if model == "" || strings.Contains(model, "/") || strings.Contains(method, "/") {
		return "", "", false
	}
	return model, method, true
}

func (h *googleAIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	model, method, pathOK := parseGooglePath(r.URL.Path)
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	stream := method == "streamGenerateContent"
	fr, f := h.core.begin(r, body, key, model, stream)
	a := h.core.answer(w, r, f)
	if a.early() {
		return
	}
	if f.isError() {
		h.writeFault(w, f, fr)
		return
	}
	if len(h.cfg.Keys) > 0 {
		switch {
		case key == "":
			h.writeError(w, http.StatusForbidden, "PERMISSION_DENIED",
				"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", nil)
			return
		case !slices.Contains(h.cfg.Keys, key):
			h.writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
				[]any{map[string]any{
					"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
					"metadata": map[string]string{"service": "generativelanguage.googleapis.com"},
				}})
			return
		}
	}
	notFound := func() {
		h.writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", nil)
	}
	if !pathOK {
		notFound()
		return
	}
	if r.Method == http.MethodGet && method == "" {
		if model == "" {
			h.models(a)
		} else if slices.Contains(h.modelList(), model) {
			a.body("application/json", mustJSON(googleModel(model)))
		} else {
			notFound()
		}
		return
	}
	if r.Method != http.MethodPost {
		notFound()
		return
	}
	if len(h.cfg.Models) > 0 && !slices.Contains(h.cfg.Models, model) {
		h.writeError(w, http.StatusNotFound, "NOT_FOUND",
			fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for %s. Call ListModels to see the list of available models and their supported methods.", model, method), nil)
		return
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil || req == nil {
		h.writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.", nil)
		return
	}
	switch method {
	case "generateContent", "streamGenerateContent":
		if _, ok := req["contents"]; !ok {
			h.writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified", nil)
			return
		}
		sc := makeScript(fr, h.cfg.Respond, h.cfg.Reply, h.cfg.FinishReason, h.cfg.Name)
		if stream {
			h.stream(a, fr, model, r.URL.Query().Get("alt") == "sse", sc)
		} else {
			h.generate(a, fr, model, sc)
		}
	case "countTokens":
		n := CountTokens(body, nil).Prompt
		a.body("application/json", mustJSON(map[string]any{
			"totalTokens": n, "promptTokensDetails": []any{map[string]any{"modality": "TEXT", "tokenCount": n}},
		}))
	case "embedContent":
		a.body("application/json", mustJSON(map[string]any{"embedding": googleEmbedding(req)}))
	case "batchEmbedContents":
		var list []map[string]json.RawMessage
		json.Unmarshal(req["requests"], &list)
		if len(list) == 0 {
			h.writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: requests is not specified", nil)
			return
		}
		embs := []any{}
		for _, one := range list {
			embs = append(embs, googleEmbedding(one))
		}
		a.body("application/json", mustJSON(map[string]any{"embeddings": embs}))
	default:
		notFound()
	}
}

// googleEmbedding embeds the text parts of an EmbedContentRequest.
func googleEmbedding(req map[string]json.RawMessage) map[string]any {
	var content struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	}
	json.Unmarshal(req["content"], &content)
	var text strings.Builder
	for _, p := range content.Parts {
		text.WriteString(p.Text)
	}
	dims := defaultEmbeddingDims
	if n, err := strconv.Atoi(string(req["outputDimensionality"])); err == nil && n > 0 && n <= 4096 {
		dims = n
	}
	return map[string]any{"values": embedVector(text.String(), dims)}
}

// writeError writes Google's error object (google.rpc.Status as JSON).
func (h *googleAIHandler) writeError(w http.ResponseWriter, status int, code, msg string, details []any) {
	e := map[string]any{"code": status, "message": msg, "status": code}
	if len(details) > 0 {
		e["details"] = details
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (h *googleAIHandler) writeFault(w http.ResponseWriter, f Fault, fr FaultRequest) {
	status, code, msg := f.status, "", ""
	var details []any
	switch f.kind {
	case faultRateLimited:
		code, msg = "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
		// Google puts the delay in a RetryInfo detail, not in Retry-After.
		if s := f.retryDelaySeconds(); s >= 0 {
			details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": fmt.Sprintf("%ds", s)})
		}
	case faultQuota:
		status, code = http.StatusTooManyRequests, "RESOURCE_EXHAUSTED"
		msg = "You exceeded your current quota, please check your plan and billing details."
		details = append(details, map[string]any{
			"@type": "type.googleapis.com/google.rpc.QuotaFailure",
			"violations": []any{map[string]string{
				"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
				"quotaId":     "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
			}},
		})
	case faultContextLength:
		code, msg = "INVALID_ARGUMENT", "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
	default:
		code, msg = googleStatus(status)
	}
	if f.code != "" {
		code = f.code
	}
	if f.message != "" {
		msg = f.message
	}
	h.writeError(w, status, code, msg, details)
}

// googleStatus is the google.rpc.Code name and a message for a status.
func googleStatus(status int) (code, msg string) {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT", "Request contains an invalid argument."
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED", "Request had invalid authentication credentials."
	case http.StatusForbidden:
		return "PERMISSION_DENIED", "The caller does not have permission."
	case http.StatusNotFound:
		return "NOT_FOUND", "Requested entity was not found."
	case http.StatusConflict:
		return "ABORTED", "The operation was aborted."
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
	case 499:
		return "CANCELLED", "The operation was cancelled."
	case http.StatusInternalServerError:
		return "INTERNAL", "An internal error has occurred."
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED", "Method not implemented."
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE", "The model is overloaded. Please try again later."
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED", "The request timed out."
	}
	if status >= 400 && status < 500 {
		return "FAILED_PRECONDITION", http.StatusText(status)
	}
	return "UNKNOWN", http.StatusText(status)
}

func (h *googleAIHandler) modelList() []string {
	if len(h.cfg.Models) > 0 {
		return h.cfg.Models
	}
	return []string{"gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"}
}

func googleModel(id string) map[string]any {
	methods := []string{"generateContent", "countTokens"}
	if strings.Contains(id, "embedding") {
		methods = []string{"embedContent", "countTokens"}
	}
	return map[string]any{
		"name": "models/" + id, "version": "001", "displayName": id,
		"inputTokenLimit": 1048576, "outputTokenLimit": 65536,
		"supportedGenerationMethods": methods,
	}
}

func (h *googleAIHandler) models(a *answer) {
	list := []any{}
	for _, m := range h.modelList() {
		list = append(list, googleModel(m))
	}
	a.body("application/json", mustJSON(map[string]any{"models": list}))
}

// finishReasonGoogle is the finish reason in Gemini's words.
func finishReasonGoogle(finish string) string {
	switch finish {
	case FinishStop, FinishToolCalls:
		return "STOP"
	case FinishLength:
		return "MAX_TOKENS"
	case FinishContentFilter:
		return "SAFETY"
	}
	return finish
}

func (h *googleAIHandler) usage(t Tokens) map[string]any {
	u := map[string]any{
		"promptTokenCount":     t.Prompt,
		"candidatesTokenCount": t.Completion - t.Reasoning,
		"totalTokenCount":      t.Prompt + t.Completion,
		"promptTokensDetails":  []any{map[string]any{"modality": "TEXT", "tokenCount": t.Prompt}},
	}
	if t.Reasoning > 0 {
		u["thoughtsTokenCount"] = t.Reasoning
	}
	if h.cfg.CachedTokens > 0 {
		u["cachedContentTokenCount"] = h.cfg.CachedTokens
	}
	return u
}

// googlePart is one Gemini part for a block (or, streaming, one Delta).
func googlePart(kind blockKind, text string, tool ToolCallDelta) map[string]any {
	switch kind {
	case blockReasoning:
		return map[string]any{"text": text, "thought": true}
	case blockTool:
		return map[string]any{"functionCall": map[string]any{"name": tool.Name, "args": argsObject(tool.Arguments)}}
	}
	return map[string]any{"text": text}
}

func (h *googleAIHandler) chunk(fr FaultRequest, model string, parts []any, finish string, t Tokens) []byte {
	cand := map[string]any{"content": map[string]any{"role": "model", "parts": parts}, "index": 0}
	if finish != "" {
		cand["finishReason"] = finishReasonGoogle(finish)
	}
	return mustJSON(map[string]any{
		"candidates": []any{cand}, "usageMetadata": h.usage(t),
		"modelVersion": model, "responseId": fmt.Sprintf("fake%06d", fr.N),
	})
}

func (h *googleAIHandler) generate(a *answer, fr FaultRequest, model string, sc script) {
	parts := []any{}
	for _, b := range blocks(sc.deltas, "") {
		parts = append(parts, googlePart(b.kind, b.text(), b.tool))
	}
	a.body("application/json", h.chunk(fr, model, parts, sc.finish, sc.tokens))
}

func (h *googleAIHandler) stream(a *answer, fr FaultRequest, model string, sseFraming bool, sc script) {
	calls := map[int]ToolCallDelta{}
	for _, b := range blocks(sc.deltas, "") {
		if b.kind == blockTool {
			calls[b.tool.Index] = b.tool
		}
	}
	// One chunk per Delta, each with the usage so far, as Gemini sends it;
	// the last carries the finishReason.
	type pending struct {
		parts  []any
		tokens Tokens
	}
	var chunks []pending
	for i, d := range sc.deltas {
		var part map[string]any
		switch {
		case d.Tool != nil:
			tc, ok := calls[d.Tool.Index]
			if !ok {
				continue
			}
			delete(calls, d.Tool.Index)
			part = googlePart(blockTool, "", tc)
		case d.Reasoning != "":
			part = googlePart(blockReasoning, d.Reasoning, ToolCallDelta{})
		default:
			part = googlePart(blockText, d.Text, ToolCallDelta{})
		}
		chunks = append(chunks, pending{[]any{part}, CountTokens(fr.Body, sc.deltas[:i+1])})
	}
	if len(chunks) == 0 {
		chunks = append(chunks, pending{[]any{map[string]any{"text": ""}}, sc.tokens})
	}
	var events [][]byte
	for i, c := range chunks {
		finish := ""
		if i == len(chunks)-1 {
			finish, c.tokens = sc.finish, sc.tokens
		}
		data := h.chunk(fr, model, c.parts, finish, c.tokens)
		switch {
		case sseFraming:
			// Gemini ends SSE lines with CRLF.
			events = append(events, append(append([]byte("data: "), data...), "\r\n\r\n"...))
		case i == 0:
			events = append(events, append([]byte("["), data...))
		default:
			events = append(events, append([]byte(",\r\n"), data...))
		}
	}
	end := len(events) - 1
	contentType := "text/event-stream"
	if !sseFraming {
		contentType = "application/json"
		events = append(events, []byte("]"))
	}
	a.stream(contentType, events, end)
}
