package server

import (
	"net/http"

	"github.com/llmproxy/llmproxy/config"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/translate"
)

// newTranslator returns what wraps a Chat-Completions-only provider with
// the Responses API. With responses.store: memory, responses are kept in
// memory for previous_response_id and GET /v1/responses/{id} (never on
// disk), each for the caller that made it (serveGateway binds it).
func (s *Server) newTranslator(cfg *config.Config) func(name string, next http.RoundTripper) http.RoundTripper {
	var store *translate.Store
	if cfg.Responses.Store == "memory" {
		store = translate.NewStore(cfg.Responses.TTL, cfg.Responses.MaxEntries)
	}
	s.responses = store
	return func(_ string, next http.RoundTripper) http.RoundTripper {
		// Beneath the translation an upstream's own X-Proxy-Error is
		// dropped, so that the marker on what comes out means llmproxy.
		return &translate.Transport{Next: gateway.DropMarker(next), Options: translate.Options{Store: store, MaxBody: cfg.MaxBodyBytes}}
	}
}
