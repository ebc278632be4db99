package server

import (
	"net/http"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/gateway"
	"github.com/llmproxy/llmproxy/translate"
)

// serveStored answers GET and DELETE /v1/responses/{id} from the memory
// store (responses.store: memory): a response is there only for the caller
// that made it; to anyone else it is unknown, as one never stored is.
func (s *Server) serveStored(w *logWriter, r *http.Request, call gateway.Call, caller *access.Caller) {
	w.route = "responses"
	if s.responses == nil {
		s.gatewayError(w, r, gateway.StoredNotFound(call.Stored, false))
		return
	}
	owner := ownerOf(caller)
	if r.Method == http.MethodDelete {
		if !s.responses.Delete(call.Stored, owner) {
			s.gatewayError(w, r, gateway.StoredNotFound(call.Stored, true))
			return
		}
		writeJSON(w, http.StatusOK, struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Deleted bool   `json:"deleted"`
		}{call.Stored, "response", true})
		return
	}
	body, ok := s.responses.Get(call.Stored, owner)
	if !ok {
		s.gatewayError(w, r, gateway.StoredNotFound(call.Stored, true))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // it holds the answer's text
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// ownedBy binds r's Responses request to its caller: the answer it stores
// is the caller's, and previous_response_id finds only the caller's.
func (s *Server) ownedBy(r *http.Request, caller *access.Caller) *http.Request {
	return r.WithContext(translate.WithOwner(r.Context(), ownerOf(caller)))
}

// ownerOf is whose stored responses a caller may see: a client key's (by
// its id, which follows the secret, not the name), the operator's, or ""
// for every anonymous caller alike.
func ownerOf(c *access.Caller) string {
	if c == nil {
		return ""
	}
	switch c.Kind {
	case access.Client:
		return "key:" + c.Key.ID
	case access.Operator:
		return "operator"
	}
	return ""
}
