package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// API is a request format the gateway routes by model.
type API uint8

const (
	// OpenAI: /v1/chat/completions, /v1/responses, /v1/embeddings, … with
	// the model in the JSON body.
	OpenAI API = iota + 1
	// Anthropic: /v1/messages (and /v1/messages/count_tokens).
	Anthropic
	// Gemini: /v1beta/models/{model}:{method}, the model in the path.
	Gemini
)

func (a API) String() string {
	switch a {
	case Anthropic:
		return "anthropic"
	case Gemini:
		return "gemini"
	}
	return "openai"
}

// Call is what a gateway request asks for, read from its method and path.
type Call struct {
	API API
	// Endpoint is the path after the API version: "/chat/completions",
	// "/responses", "/messages"; for Gemini the method ("generateContent").
	Endpoint string
	// Version is the Gemini API version in the path (v1beta or v1).
	Version string
	// Model is the model named in the path (Gemini; the model retrieved by
	// GET /v1/models/{id}); "" when it is in the body.
	Model string
	// List: GET /v1/models, /models or /v1beta/models. Retrieve: GET one.
	List, Retrieve bool
	// Stored is the id of GET or DELETE /v1/responses/{id}: a response
	// llmproxy's memory store may hold (responses.store: memory).
	Stored string
}

// Responses reports whether the call is the OpenAI Responses API.
func (c Call) Responses() bool { return c.API == OpenAI && c.Endpoint == "/responses" }

// Chat reports whether the call is OpenAI's Chat Completions.
func (c Call) Chat() bool { return c.API == OpenAI && c.Endpoint == "/chat/completions" }

// IsGatewayPath reports whether a path belongs to the gateway: /v1/…,
// /v1beta/…, /models.
func IsGatewayPath(path string) bool {
	return path == "/models" || path == "/v1" || strings.HasPrefix(path, "/v1/") ||
		path == "/v1beta" || strings.HasPrefix(path, "/v1beta/")
}

// ParseCall reads the call from a gateway request's method, escaped path
// and headers. A path the gateway cannot route by model gets an *Error,
// with a Call that holds only the API whose format the error is written
// in: the path's family (refusedAPI).
func ParseCall(method, escapedPath string, h http.Header) (Call, error) {
	path, err := url.PathUnescape(escapedPath)
	if err != nil || strings.ContainsAny(path, "\x00\r\n") || !utf8.ValidString(path) {
		return Call{API: refusedAPI(escapedPath, h)}, errBadPath
	}
	get := method == http.MethodGet || method == http.MethodHead
	switch {
	case path == "/models" || path == "/v1/models":
		api := OpenAI
		if path == "/v1/models" && h.Get("Anthropic-Version") != "" {
			api = Anthropic // the Anthropic SDK lists models at the same path
		}
		if !get {
			return Call{API: api}, errMethod
		}
		return Call{API: api, List: true}, nil
	case path == "/v1beta/models":
		if !get {
			return Call{API: Gemini}, errMethod
		}
		return Call{API: Gemini, List: true, Version: "v1beta"}, nil
	}
	if rest, ok := strings.CutPrefix(path, "/v1beta/models/"); ok {
		return geminiCall("v1beta", rest, method, Gemini)
	}
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		// Gemini's v1 generates at POST /v1/models/{model}:{method}; a GET
		// is OpenAI's retrieve, whose fine-tuned ids hold colons too
		// (ft:gpt-4o-mini:acme::abc), and so do the ones a DELETE names:
		// only a POST's refusal is written in Google's format.
		api := OpenAI
		if h.Get("Anthropic-Version") != "" {
			api = Anthropic
		}
		if strings.Contains(rest, ":") && !get {
			refused := api
			if method == http.MethodPost {
				refused = Gemini
			}
			return geminiCall("v1", rest, method, refused)
		}
		if rest == "" {
			return Call{API: api}, errNoModelRoute
		}
		if !get {
			return Call{API: api}, errMethod
		}
		return Call{API: api, Retrieve: true, Model: rest}, nil
	}
	if id, ok := strings.CutPrefix(path, "/v1/responses/"); ok && id != "" && !strings.Contains(id, "/") && method != http.MethodPost {
		// A stored response, read or deleted; a POST is routed by its
		// model as before.
		if !get && method != http.MethodDelete {
			return Call{API: OpenAI}, errMethodStored
		}
		return Call{API: OpenAI, Stored: id}, nil
	}
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok || rest == "" || method != http.MethodPost {
		return Call{API: refusedAPI(path, h)}, errNoModelRoute
	}
	endpoint := path[len("/v1"):] // "/" + rest
	if endpoint == "/messages" || endpoint == "/messages/count_tokens" {
		return Call{API: Anthropic, Endpoint: endpoint}, nil
	}
	if strings.HasPrefix(endpoint, "/messages/") {
		// Anthropic's other endpoints under /v1/messages (batches) name no
		// model a route could follow.
		return Call{API: Anthropic}, errNoModelRoute
	}
	return Call{API: OpenAI, Endpoint: endpoint}, nil
}

// refusedAPI is the format of the error for a gateway path that cannot be
// routed: Google's under /v1beta, Anthropic's under /v1/messages (and on
// /v1/models… with an Anthropic-Version header, as for a list), OpenAI's
// otherwise.
func refusedAPI(path string, h http.Header) API {
	switch {
	case path == "/v1beta" || strings.HasPrefix(path, "/v1beta/"):
		return Gemini
	case path == "/v1/messages" || strings.HasPrefix(path, "/v1/messages/"):
		return Anthropic
	case (path == "/v1/models" || strings.HasPrefix(path, "/v1/models/")) && h.Get("Anthropic-Version") != "":
		return Anthropic
	}
	return OpenAI
}

// geminiCall reads /…/models/{rest}; a refusal's Call holds refused, the
// API whose format the error is written in.
func geminiCall(version, rest, httpMethod string, refused API) (Call, error) {
	model, method, ok := strings.Cut(rest, ":")
	if !ok {
		get := httpMethod == http.MethodGet || httpMethod == http.MethodHead
		if get && model != "" && !strings.Contains(model, "/") {
			return Call{API: Gemini, Retrieve: true, Model: model, Version: version}, nil
		}
		return Call{API: refused}, errNoModelRoute
	}
	if httpMethod != http.MethodPost || model == "" || method == "" || strings.ContainsAny(method, "/:") || strings.Contains(model, "/") {
		return Call{API: refused}, errNoModelRoute
	}
	return Call{API: Gemini, Version: version, Model: model, Endpoint: method}, nil
}

// GeminiStream reports whether a Gemini method streams.
func geminiStreams(method string) bool { return method == "streamGenerateContent" }
