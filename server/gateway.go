package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/llmproxy/llmproxy/access"
	"github.com/llmproxy/llmproxy/gateway"
)

// serveGateway answers /v1/…, /v1beta/… and /models: who is calling →
// which model and route → limits → the attempt loop → the answer, counting
// usage on the way.
func (s *Server) serveGateway(w *logWriter, r *http.Request, snap *gateway.Snapshot, path string) {
	w.route = "gateway"
	call, err := gateway.ParseCall(r.Method, path, r.Header)
	w.api = kindOf(call.API) // a refused path's too: its family's format
	if err != nil {
		s.gatewayError(w, r, err)
		return
	}
	if !snap.On() {
		s.gatewayError(w, r, gateway.ErrGatewayOff)
		return
	}
	caller, inProcess := access.CallerFrom(r.Context())
	if !inProcess {
		var err error
		caller, err = snap.Keys().Authenticate(r, w.start)
		if err != nil && !(errors.Is(err, access.ErrMissing) && snap.Keys().Public()) {
			writeErrorCode(w, http.StatusUnauthorized, typeAuth, "invalid_api_key", err.Error())
			return
		}
	}
	w.caller = caller
	if call.Stored != "" {
		s.serveStored(w, r, call, caller)
		return
	}
	if call.List || call.Retrieve {
		w.route = "models"
		list, err := snap.ListModels(call, caller, s.started)
		if err != nil {
			s.gatewayError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	w.proxied("gateway", s.stats.Route("gateway"))
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.tooLarge(w)
		return
	}
	if s.responses != nil && call.Responses() {
		r = s.ownedBy(r, caller)
	}
	s.limitBody(w, r)
	plan, err := snap.ModelPlan(r, call, caller, s.cfg.MaxBodyBytes)
	if err != nil {
		s.gatewayError(w, r, err)
		return
	}
	w.plan = plan
	ticket, ok := s.admit(w, r, caller)
	if !ok {
		return
	}
	w.ticket = ticket // settled when the answer ends (endRequest)
	s.forward(w, r, plan)
}

// gatewayError answers a refused gateway request in the caller's format.
func (s *Server) gatewayError(w *logWriter, r *http.Request, err error) {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		w.reason = ge.Code
		if ge.RetryAfter > 0 {
			w.Header().Set("Retry-After", (&access.LimitError{RetryAfter: ge.RetryAfter}).RetryAfterSeconds())
		}
		if ge.Allow != "" {
			w.Header().Set("Allow", ge.Allow)
		}
		writeErrorParam(w, ge.Status, typeOf(ge.Status), ge.Code, ge.Param, ge.Message)
		return
	}
	s.proxyError(w, r, err) // the client's body could not be read, or was too large
}

// admit applies the caller's limits; a refusal is answered 429 with
// Retry-After.
func (s *Server) admit(w *logWriter, r *http.Request, caller *access.Caller) (access.Ticket, bool) {
	if caller == nil || caller.Kind != access.Client || caller.Key.Unlimited() {
		return access.NoTicket, true
	}
	ticket, err := s.limiter.Admit(r.Context(), caller.Key, time.Now())
	if err == nil {
		return ticket, true
	}
	var le *access.LimitError
	if errors.As(err, &le) {
		w.reason = "limit: " + le.Limit
		s.stats.Limited(caller.Key.Name, le.Limit)
		w.Header().Set("Retry-After", le.RetryAfterSeconds())
		writeErrorCode(w, http.StatusTooManyRequests, typeRateLimited, "rate_limit_exceeded", le.Error())
		return nil, false
	}
	// The shared limiter is unreachable and the operator chose to fail
	// closed.
	w.reason = "limiter unavailable"
	writeErrorCode(w, http.StatusServiceUnavailable, typeUnavailable, "limiter_unavailable", "the limiter is unavailable; try again shortly")
	return nil, false
}

// settle runs when a request's answer has ended (at now): it tells the
// limiter the tokens and cost, and counts usage per client key, model,
// provider and provider key.
func (s *Server) settle(w *logWriter, plan *gateway.Plan, ticket access.Ticket, now time.Time) {
	res := &w.usage // the log line reads it; kept in the writer, not allocated
	*res = plan.Result()
	tokens := res.Usage.Total()
	var cost int64
	if res.Caller != nil && res.Caller.Kind == access.Client {
		if b := res.Caller.Key.Budget; b != nil && b.Currency == res.Currency {
			cost = res.Cost
		}
	}
	ticket.Done(tokens, cost)
	if !res.Answered {
		*res = gateway.Result{}
		return
	}
	if s.onUsage != nil {
		s.onUsage(*res, now)
	}
	model := res.Model
	if model == "" {
		model = "-"
	}
	s.stats.Usage(callerName(res.Caller), model, res.Provider, res.Key, res.Usage, res.Cost, res.Currency)
}

func callerName(c *access.Caller) string {
	if c == nil {
		return "anonymous"
	}
	return c.Name()
}

// kindOf is the provider kind whose error format an API's clients parse.
func kindOf(api gateway.API) gateway.Kind {
	switch api {
	case gateway.Anthropic:
		return gateway.KindAnthropic
	case gateway.Gemini:
		return gateway.KindGemini
	}
	return gateway.KindOpenAI
}
