package gateway

import (
	"net/http"
	"strings"
	"time"
)

// Error is a request the gateway refuses or cannot serve. The server
// writes it in the caller's own error format (OpenAI, Anthropic or Google),
// so SDKs raise their usual exceptions. Messages never hold a key, a token
// or a URL.
type Error struct {
	Status  int
	Code    string // e.g. model_not_found, rate_limit_exceeded
	Message string
	// Param names the request field at fault, when there is one.
	Param string
	// RetryAfter, when set, becomes the Retry-After header.
	RetryAfter time.Duration
	// Allow, when set, becomes the Allow header (a 405's methods).
	Allow string
}

func (e *Error) Error() string { return e.Message }

var (
	errBadPath      = &Error{Status: http.StatusBadRequest, Code: "invalid_path", Message: "the request path has invalid escaping or a control character"}
	errMethod       = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "this endpoint takes GET", Allow: "GET, HEAD"}
	errMethodStored = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "a stored response is read with GET and deleted with DELETE", Allow: "GET, HEAD, DELETE"}
	errNoModelRoute = &Error{Status: http.StatusNotFound, Code: "unknown_endpoint",
		Message: "the gateway routes requests that name a model (POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages, /v1beta/models/{model}:generateContent, …); for other endpoints use a preset path such as /openai/v1/…, /claude/v1/… or /gemini/v1beta/…"}
	errNoModel = &Error{Status: http.StatusBadRequest, Code: "missing_model", Param: "model",
		Message: "the request body must be a JSON object with a \"model\""}
	errBadJSON = &Error{Status: http.StatusBadRequest, Code: "invalid_json",
		Message: "the request body is not valid JSON"}
	errDuplicateModel = fieldTwice("model")
	// ErrGatewayOff answers /v1/… when no provider is configured.
	ErrGatewayOff = &Error{Status: http.StatusNotFound, Code: "gateway_off",
		Message: "the gateway is off: it needs providers (providers: and models: in the config file, or ROUTES_CONFIG); presets answer under /<preset>/…, e.g. /openai/v1/chat/completions"}
)

// fieldTwice refuses a body that names a field llmproxy routes or edits
// by more than once (or in another letter case): parsers disagree on which
// one counts, so a client could pass llmproxy's checks with one value and
// reach the provider with another.
func fieldTwice(field string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Param: field,
		Message: "the request body names \"" + field + "\" more than once (or also in another letter case)"}
}

func fieldNotObject(field string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Param: field,
		Message: "\"" + field + "\" must be a JSON object"}
}

func modelNotFound(model string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "model_not_found", Param: "model",
		Message: "The model `" + printable(model) + "` does not exist or you do not have access to it."}
}

func modelNotAllowed(model string) *Error {
	msg := "this key may not use the model `" + printable(model) + "`"
	if model == "" {
		msg = "this key may use only some models, and the request names none where llmproxy reads it (the body's model, a session's ?model=)"
	}
	return &Error{Status: http.StatusForbidden, Code: "model_not_allowed", Param: "model", Message: msg}
}

func wrongFormat(model string, api API, kinds string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "unsupported_api", Param: "model",
		Message: "the model `" + printable(model) + "` is served in the " + kinds + " format only, not in " + api.String() + "'s: " + hintFor(kinds)}
}

func hintFor(kinds string) string {
	var hints []string
	for kind := range strings.SplitSeq(kinds, " and ") {
		switch kind {
		case "anthropic":
			hints = append(hints, "/v1/messages")
		case "gemini":
			hints = append(hints, "/v1beta/models/{model}:generateContent")
		default:
			hints = append(hints, "/v1/chat/completions")
		}
	}
	return "call " + strings.Join(hints, " or ")
}

// printable shortens a client-chosen name for an error message and keeps
// only printable ASCII.
func printable(s string) string {
	long := len(s) > 128
	if long {
		s = s[:128]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if long {
		b = append(b, "..."...)
	}
	return string(b)
}

// StoredNotFound answers GET or DELETE /v1/responses/{id} for a response
// llmproxy does not hold for this caller: never stored, expired, deleted,
// or stored by another caller — which of these is not told. kept says
// whether the memory store is on (responses.store: memory).
func StoredNotFound(id string, kept bool) *Error {
	msg := "llmproxy keeps no responses (responses.store is off)"
	if kept {
		msg = "Response with id '" + printable(id) + "' not found: llmproxy keeps the responses it translated in memory for a limited time, for the caller that made them"
	}
	return &Error{Status: http.StatusNotFound, Code: "response_not_found",
		Message: msg + "; a response answered by a provider with the Responses API is stored by that provider: read it through the preset path, /openai/v1/responses/{id}"}
}
