package server

import (
	"net/http"

	"github.com/llmproxy/llmproxy/config"
)

// newTranslator returns what wraps a Chat-Completions-only provider with
// the Responses API.
func (s *Server) newTranslator(cfg *config.Config) func(name string, next http.RoundTripper) http.RoundTripper {
	_ = cfg
	return nil // the translate package lands with issue 10
}
