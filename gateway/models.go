package gateway

import (
	"time"

	"github.com/llmproxy/llmproxy/access"
)

// Models returns what a caller may use through an API, in configuration
// order: the routes with plain names, then the plain names providers list
// under models: that have no route of their own. Patterns cannot be
// listed.
func (s *Snapshot) Models(caller *access.Caller, api API) []ModelInfo {
	var out []ModelInfo
	seen := map[string]bool{}
	for _, r := range s.routeList {
		if !r.pattern.Literal() || !caller.AllowsModel(r.Name) || seen[r.Name] {
			continue
		}
		for _, t := range r.targets {
			if t.provider.Kind.api() == api {
				out = append(out, r.Info)
				seen[r.Name] = true
				break
			}
		}
	}
	for _, prov := range s.providerList {
		if prov.Kind.api() != api {
			continue
		}
		for _, pat := range prov.models {
			name := pat.String()
			if !pat.Literal() || seen[name] || !caller.AllowsModel(name) || s.resolve(name) == nil {
				continue
			}
			if r := s.resolve(name); r.Name != "(implicit)" {
				continue // a pattern route claims it: shown through that route's rules
			}
			out = append(out, ModelInfo{ID: name, OwnedBy: prov.Name})
			seen[name] = true
		}
	}
	return out
}

// ListModels answers GET /v1/models (or /models, /v1beta/models, or one
// model) in the API's own list format.
func (s *Snapshot) ListModels(call Call, caller *access.Caller, created time.Time) (any, error) {
	models := s.Models(caller, call.API)
	if call.Retrieve {
		for _, m := range models {
			if m.ID == call.Model {
				return formatModel(call.API, m, created), nil
			}
		}
		return nil, modelNotFound(call.Model)
	}
	switch call.API {
	case Anthropic:
		data := make([]any, len(models))
		for i, m := range models {
			data[i] = formatModel(Anthropic, m, created)
		}
		out := map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil}
		if len(models) > 0 {
			out["first_id"], out["last_id"] = models[0].ID, models[len(models)-1].ID
		}
		return out, nil
	case Gemini:
		data := make([]any, len(models))
		for i, m := range models {
			data[i] = formatModel(Gemini, m, created)
		}
		return map[string]any{"models": data}, nil
	}
	data := make([]any, len(models))
	for i, m := range models {
		data[i] = formatModel(OpenAI, m, created)
	}
	return map[string]any{"object": "list", "data": data}, nil
}

func formatModel(api API, m ModelInfo, created time.Time) any {
	switch api {
	case Anthropic:
		return map[string]any{"type": "model", "id": m.ID, "display_name": orID(m.DisplayName, m.ID),
			"created_at": created.UTC().Format(time.RFC3339)}
	case Gemini:
		out := map[string]any{"name": "models/" + m.ID, "baseModelId": m.ID, "version": "001",
			"displayName":                orID(m.DisplayName, m.ID),
			"supportedGenerationMethods": []string{"generateContent", "streamGenerateContent", "countTokens"}}
		if m.Description != "" {
			out["description"] = m.Description
		}
		if in := max(m.MaxInputTokens, m.ContextWindow); in > 0 {
			out["inputTokenLimit"] = in
		}
		if m.MaxOutputTokens > 0 {
			out["outputTokenLimit"] = m.MaxOutputTokens
		}
		return out
	}
	// OpenAI's list object plus the metadata seed 002 showed.
	out := map[string]any{"id": m.ID, "object": "model", "created": created.Unix(), "owned_by": m.OwnedBy}
	if m.DisplayName != "" {
		out["display_name"] = m.DisplayName
	}
	if m.Description != "" {
		out["description"] = m.Description
	}
	if m.ContextWindow > 0 {
		out["context_length"] = m.ContextWindow
	}
	if m.MaxInputTokens > 0 {
		out["max_input_tokens"] = m.MaxInputTokens
	}
	if m.MaxOutputTokens > 0 {
		out["max_output_tokens"] = m.MaxOutputTokens
	}
	if m.Pricing != nil {
		out["pricing"] = m.Pricing
	}
	if len(m.Flags) > 0 {
		out["flags"] = m.Flags
	}
	if len(m.Metadata) > 0 {
		out["metadata"] = m.Metadata
	}
	return out
}

func orID(name, id string) string {
	if name != "" {
		return name
	}
	return id
}
